package sqlstore

import (
	"context"
	"sort"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CreateContentItem stores c without its versions (add those with
// AddContentVersion). It fills an empty ID and zero dates on c.
func (db *DB) CreateContentItem(ctx context.Context, c *deploy.ContentItem) error {
	if c == nil {
		return deploy.Errorf(deploy.KindInvalid, "content item is missing")
	}
	if c.ID == "" {
		c.ID = newID()
	}
	now := db.now().Unix()
	if c.CreatedDate == 0 {
		c.CreatedDate = now
	}
	if c.LastModifiedDate == 0 {
		c.LastModifiedDate = now
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM content_items WHERE id = ?`, c.ID)
		if err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "content item %s already exists", c.ID)
		}
		stored := *c
		stored.Versions, stored.VersionsCount = nil, 0
		return putItem(ctx, tx, &stored)
	})
}

// UpdateContentItem replaces the metadata of an existing item: its versions,
// version count and creation date stay as stored.
func (db *DB) UpdateContentItem(ctx context.Context, c *deploy.ContentItem) error {
	if c == nil {
		return deploy.Errorf(deploy.KindInvalid, "content item is missing")
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		old, err := getItem(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		stored := *c
		stored.Versions = nil
		stored.VersionsCount = old.VersionsCount
		stored.CreatedDate = old.CreatedDate
		stored.LastModifiedDate = db.now().Unix()
		if err := putItem(ctx, tx, &stored); err != nil {
			return err
		}
		c.VersionsCount, c.CreatedDate, c.LastModifiedDate = stored.VersionsCount, stored.CreatedDate, stored.LastModifiedDate
		return nil
	})
}

// ContentItem returns the item with its versions in VersionNo order.
func (db *DB) ContentItem(ctx context.Context, id string) (*deploy.ContentItem, error) {
	var c *deploy.ContentItem
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		if c, err = getItem(ctx, tx, id); err != nil {
			return err
		}
		vs, err := queryVersions(ctx, tx, `SELECT doc FROM content_versions WHERE item_id = ? ORDER BY version_no`, id)
		if err != nil {
			return err
		}
		c.Versions = vs[id]
		if c.Versions == nil {
			c.Versions = []deploy.ContentVersion{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ContentItems returns every item with its versions, by name then id.
func (db *DB) ContentItems(ctx context.Context) ([]*deploy.ContentItem, error) {
	var items []*deploy.ContentItem
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		if items, err = queryDocs[deploy.ContentItem](ctx, tx, `SELECT doc FROM content_items ORDER BY name, id`); err != nil {
			return err
		}
		vs, err := queryVersions(ctx, tx, `SELECT doc FROM content_versions ORDER BY item_id, version_no`)
		if err != nil {
			return err
		}
		for _, c := range items {
			c.Versions = vs[c.ID]
			if c.Versions == nil {
				c.Versions = []deploy.ContentVersion{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// DeleteContentItem removes the item and all its versions and returns the
// blob hashes no remaining version references, sorted.
func (db *DB) DeleteContentItem(ctx context.Context, id string) ([]string, error) {
	var orphans []string
	err := db.write(ctx, func(ctx context.Context, tx *Tx) error {
		if _, err := getItem(ctx, tx, id); err != nil {
			return err
		}
		hashes, err := blobHashes(ctx, tx, `SELECT DISTINCT sha256 FROM content_blobs WHERE item_id = ?`, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM content_items WHERE id = ?`, id); err != nil {
			return err
		}
		orphans, err = unreferenced(ctx, tx, hashes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return orphans, nil
}

// AddContentVersion stores v as a version of the item: VersionNo zero means
// the next number, an ID is generated when empty and zero dates are set to
// now. The item's version count and modification date follow.
func (db *DB) AddContentVersion(ctx context.Context, itemID string, v *deploy.ContentVersion) (*deploy.ContentVersion, error) {
	if v == nil {
		return nil, deploy.Errorf(deploy.KindInvalid, "content version is missing")
	}
	if v.VersionNo < 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "content version number %d is negative", v.VersionNo)
	}
	stored := *v
	stored.ContentItemID = itemID
	if stored.ID == "" {
		stored.ID = newID()
	}
	now := db.now().Unix()
	if stored.CreatedDate == 0 {
		stored.CreatedDate = now
	}
	if stored.LastModifiedDate == 0 {
		stored.LastModifiedDate = now
	}
	err := db.write(ctx, func(ctx context.Context, tx *Tx) error {
		item, err := getItem(ctx, tx, itemID)
		if err != nil {
			return err
		}
		hashes, err := versionBlobs(item.Type, &stored)
		if err != nil {
			return err
		}
		if stored.VersionNo == 0 {
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version_no), 0) + 1 FROM content_versions WHERE item_id = ?`,
				itemID).Scan(&stored.VersionNo); err != nil {
				return err
			}
		} else {
			found, err := exists(ctx, tx, `SELECT 1 FROM content_versions WHERE item_id = ? AND version_no = ?`, itemID, stored.VersionNo)
			if err != nil {
				return err
			}
			if found {
				return deploy.Errorf(deploy.KindConflict, "content item %s already has version %d", itemID, stored.VersionNo)
			}
		}
		found, err := exists(ctx, tx, `SELECT 1 FROM content_versions WHERE id = ?`, stored.ID)
		if err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "content version id %s already exists", stored.ID)
		}
		if err := putVersion(ctx, tx, &stored); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO content_blobs (item_id, version_no, sha256) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				itemID, stored.VersionNo, h); err != nil {
				return err
			}
		}
		return touchItem(ctx, tx, item, now)
	})
	if err != nil {
		return nil, err
	}
	out := stored
	return &out, nil
}

// UpdateContentVersion changes the mutable fields of a stored version:
// status, description, application and driver fields, tags and unknown
// fields. The version is found by ContentItemID and VersionNo. Its bytes
// (SHA256, Manifest) cannot change: a non-empty value that differs is an
// error. On success v holds the stored version.
func (db *DB) UpdateContentVersion(ctx context.Context, v *deploy.ContentVersion) error {
	if v == nil {
		return deploy.Errorf(deploy.KindInvalid, "content version is missing")
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		item, err := getItem(ctx, tx, v.ContentItemID)
		if err != nil {
			return err
		}
		old, err := getVersion(ctx, tx, v.ContentItemID, v.VersionNo)
		if err != nil {
			return err
		}
		if v.SHA256 != "" && v.SHA256 != old.SHA256 {
			return deploy.Errorf(deploy.KindInvalid, "content version %s:%d: sha256 cannot change; add a new version", v.ContentItemID, v.VersionNo)
		}
		if v.Manifest != nil && !sameManifest(v.Manifest, old.Manifest) {
			return deploy.Errorf(deploy.KindInvalid, "content version %s:%d: manifest cannot change; add a new version", v.ContentItemID, v.VersionNo)
		}
		now := db.now().Unix()
		s := *old
		s.Status = v.Status
		s.Description = v.Description
		s.InstallationCommandLine = v.InstallationCommandLine
		s.InstallationWorkingDirectory = v.InstallationWorkingDirectory
		s.InstallationSuccessCodes = v.InstallationSuccessCodes
		s.InstallationDependencies = v.InstallationDependencies
		s.DriverManufacturer = v.DriverManufacturer
		s.DriverModel = v.DriverModel
		s.Tags = v.Tags
		if v.Extra != nil {
			s.Extra = v.Extra
		}
		s.LastModifiedDate = now
		if err := putVersion(ctx, tx, &s); err != nil {
			return err
		}
		if err := touchItem(ctx, tx, item, now); err != nil {
			return err
		}
		*v = s
		return nil
	})
}

// DeleteContentVersion removes one version and returns the blob hashes it
// referenced that no remaining version references, sorted.
func (db *DB) DeleteContentVersion(ctx context.Context, itemID string, versionNo int) ([]string, error) {
	var orphans []string
	err := db.write(ctx, func(ctx context.Context, tx *Tx) error {
		item, err := getItem(ctx, tx, itemID)
		if err != nil {
			return err
		}
		if _, err := getVersion(ctx, tx, itemID, versionNo); err != nil {
			return err
		}
		hashes, err := blobHashes(ctx, tx, `SELECT DISTINCT sha256 FROM content_blobs WHERE item_id = ? AND version_no = ?`, itemID, versionNo)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM content_versions WHERE item_id = ? AND version_no = ?`, itemID, versionNo); err != nil {
			return err
		}
		if orphans, err = unreferenced(ctx, tx, hashes); err != nil {
			return err
		}
		return touchItem(ctx, tx, item, db.now().Unix())
	})
	if err != nil {
		return nil, err
	}
	return orphans, nil
}

// BlobInUse reports whether any version references the hash.
func (db *DB) BlobInUse(ctx context.Context, sha256 string) (bool, error) {
	var used bool
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		used, err = exists(ctx, tx, `SELECT 1 FROM content_blobs WHERE sha256 = ? LIMIT 1`, sha256)
		return err
	})
	return used, err
}

func getItem(ctx context.Context, tx *Tx, id string) (*deploy.ContentItem, error) {
	c := new(deploy.ContentItem)
	if err := getDoc(ctx, tx, c, func() error { return errNotFound("content item", id) },
		`SELECT doc FROM content_items WHERE id = ?`, id); err != nil {
		return nil, err
	}
	return c, nil
}

// putItem upserts the item row; c.Versions must be nil.
func putItem(ctx context.Context, tx *Tx, c *deploy.ContentItem) error {
	doc, err := encode(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO content_items (id, name, doc) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc`, c.ID, c.Name, doc)
	return err
}

// touchItem recounts the item's versions and sets its modification date.
func touchItem(ctx context.Context, tx *Tx, item *deploy.ContentItem, now int64) error {
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM content_versions WHERE item_id = ?`, item.ID).Scan(&item.VersionsCount); err != nil {
		return err
	}
	item.LastModifiedDate = now
	item.Versions = nil
	return putItem(ctx, tx, item)
}

func getVersion(ctx context.Context, tx *Tx, itemID string, no int) (*deploy.ContentVersion, error) {
	v := new(deploy.ContentVersion)
	missing := func() error { return deploy.Errorf(deploy.KindNotFound, "content version %s:%d not found", itemID, no) }
	if err := getDoc(ctx, tx, v, missing,
		`SELECT doc FROM content_versions WHERE item_id = ? AND version_no = ?`, itemID, no); err != nil {
		return nil, err
	}
	return v, nil
}

func putVersion(ctx context.Context, tx *Tx, v *deploy.ContentVersion) error {
	doc, err := encode(v)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO content_versions (item_id, version_no, id, doc) VALUES (?, ?, ?, ?)
		ON CONFLICT (item_id, version_no) DO UPDATE SET doc = excluded.doc`, v.ContentItemID, v.VersionNo, v.ID, doc)
	return err
}

// queryVersions runs a SELECT of version docs and groups them by item.
func queryVersions(ctx context.Context, tx *Tx, query string, args ...any) (map[string][]deploy.ContentVersion, error) {
	vs, err := queryDocs[deploy.ContentVersion](ctx, tx, query, args...)
	if err != nil {
		return nil, err
	}
	out := map[string][]deploy.ContentVersion{}
	for _, v := range vs {
		out[v.ContentItemID] = append(out[v.ContentItemID], *v)
	}
	return out, nil
}

func blobHashes(ctx context.Context, tx *Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hs []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	return hs, rows.Err()
}

// unreferenced returns the hashes no content_blobs row names any more, sorted.
func unreferenced(ctx context.Context, tx *Tx, hashes []string) ([]string, error) {
	orphans := []string{}
	for _, h := range hashes {
		used, err := exists(ctx, tx, `SELECT 1 FROM content_blobs WHERE sha256 = ? LIMIT 1`, h)
		if err != nil {
			return nil, err
		}
		if !used {
			orphans = append(orphans, h)
		}
	}
	sort.Strings(orphans)
	return orphans, nil
}

// versionBlobs returns the blob hashes v references: its SHA256 when the
// item is of type File, and the SHA256 of every manifest file. Each must be
// a lowercase hex SHA-256.
func versionBlobs(t deploy.ContentType, v *deploy.ContentVersion) ([]string, error) {
	var hs []string
	if v.AwaitingContent {
		// SHA256 is the hash the bytes must have; there is no blob yet.
		return nil, nil
	}
	if t == deploy.ContentFile && v.SHA256 != "" {
		if !validSHA256(v.SHA256) {
			return nil, deploy.Errorf(deploy.KindInvalid, "content version sha256 %q is not a lowercase hex SHA-256", v.SHA256)
		}
		hs = append(hs, v.SHA256)
	}
	if v.Manifest != nil {
		for i, f := range v.Manifest.Files {
			if !validSHA256(f.SHA256) {
				return nil, deploy.Errorf(deploy.KindInvalid, "manifest file %d (%q): sha256 %q is not a lowercase hex SHA-256", i, f.Path, f.SHA256)
			}
			hs = append(hs, f.SHA256)
		}
	}
	return hs, nil
}

func validSHA256(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, r := range h {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

func sameManifest(a, b *deploy.Manifest) bool {
	x, err1 := encode(a)
	y, err2 := encode(b)
	return err1 == nil && err2 == nil && x == y
}

// ImportContentItem stores c with its versions as given, in one
// transaction; see deploy.Store.
func (db *DB) ImportContentItem(ctx context.Context, c *deploy.ContentItem) error {
	if c == nil || c.ID == "" {
		return deploy.Errorf(deploy.KindInvalid, "content item id is missing")
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM content_items WHERE id = ?`, c.ID)
		if err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "content item %s already exists", c.ID)
		}
		item := *c
		item.Versions = nil
		if err := putItem(ctx, tx, &item); err != nil {
			return err
		}
		seen := map[int]bool{}
		for i := range c.Versions {
			v := c.Versions[i]
			v.ContentItemID = c.ID
			switch {
			case v.VersionNo < 1:
				return deploy.Errorf(deploy.KindInvalid, "versions[%d]: version number %d is not positive", i, v.VersionNo)
			case seen[v.VersionNo]:
				return deploy.Errorf(deploy.KindInvalid, "versions[%d]: version %d appears twice", i, v.VersionNo)
			case c.Type != deploy.ContentURL && !v.AwaitingContent:
				return deploy.Errorf(deploy.KindInvalid, "versions[%d]: a %s version without its bytes must be awaiting content", i, c.Type)
			}
			seen[v.VersionNo] = true
			if v.ID == "" {
				v.ID = newID()
			}
			found, err := exists(ctx, tx, `SELECT 1 FROM content_versions WHERE id = ?`, v.ID)
			if err != nil {
				return err
			}
			if found {
				return deploy.Errorf(deploy.KindConflict, "content version id %s already exists", v.ID)
			}
			if err := putVersion(ctx, tx, &v); err != nil {
				return err
			}
		}
		return nil
	})
}

// FillContentVersion gives a version awaiting content its bytes; see
// deploy.Store. The caller has stored the blobs.
func (db *DB) FillContentVersion(ctx context.Context, itemID string, versionNo int, sha256 string, m *deploy.Manifest, size int64) (*deploy.ContentVersion, error) {
	var out *deploy.ContentVersion
	err := db.write(ctx, func(ctx context.Context, tx *Tx) error {
		item, err := getItem(ctx, tx, itemID)
		if err != nil {
			return err
		}
		v, err := getVersion(ctx, tx, itemID, versionNo)
		if err != nil {
			return err
		}
		if !v.AwaitingContent {
			return deploy.Errorf(deploy.KindConflict, "content version %s:%d already has its content; add a new version instead", itemID, versionNo)
		}
		v.SHA256, v.Manifest, v.ContentSize, v.AwaitingContent = sha256, m, size, false
		hashes, err := versionBlobs(item.Type, v)
		if err != nil {
			return err
		}
		if err := putVersion(ctx, tx, v); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO content_blobs (item_id, version_no, sha256) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				itemID, versionNo, h); err != nil {
				return err
			}
		}
		out = v
		return nil
	})
	return out, err
}
