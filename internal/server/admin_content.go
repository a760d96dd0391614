package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

func (s *Server) listContent(w http.ResponseWriter, r *http.Request) error {
	items, err := s.store.ContentItems(r.Context())
	if err != nil {
		return err
	}
	if items == nil {
		items = []*deploy.ContentItem{}
	}
	writeJSON(w, http.StatusOK, items)
	return nil
}

func (s *Server) createContent(w http.ResponseWriter, r *http.Request) error {
	var c deploy.ContentItem
	if err := decodeJSON(w, r, &c); err != nil {
		return err
	}
	if err := c.NormalizeIDs(); err != nil {
		return err
	}
	if err := checkItem(&c); err != nil {
		return err
	}
	now := s.now().Unix()
	c.ReadOnly = false
	c.CreatedDate, c.LastModifiedDate = now, now
	if len(c.Versions) > 0 {
		// Versions given with the item are kept (awaiting their bytes),
		// never dropped.
		if c.ID == "" {
			c.ID = uuid.NewString()
		}
		c.VersionsCount = len(c.Versions)
		if err := s.store.ImportContentItem(r.Context(), &c); err != nil {
			return err
		}
		stored, err := s.store.ContentItem(r.Context(), c.ID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, stored)
		return nil
	}
	c.VersionsCount = 0
	if err := s.store.CreateContentItem(r.Context(), &c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &c)
	return nil
}

func (s *Server) getContent(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "content item")
	if err != nil {
		return err
	}
	c, err := s.store.ContentItem(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteContent(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "content item")
	if err != nil {
		return err
	}
	c, err := s.store.ContentItem(r.Context(), id)
	if err != nil {
		return err
	}
	if c.ReadOnly {
		return deploy.Errorf(deploy.KindConflict, "content item %s is read-only", c.ID)
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	orphans, err := s.store.DeleteContentItem(r.Context(), c.ID)
	if err != nil {
		return err
	}
	s.removeBlobs(r.Context(), orphans)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeBlobs deletes blobs the store says nothing references any more.
// Callers hold s.gc exclusively. In a content store other replicas share,
// a young blob is left for a later sweep (sweepLater): another replica may
// have just stored the same bytes for a version it is about to commit.
func (s *Server) removeBlobs(ctx context.Context, hashes []string) {
	for _, h := range hashes {
		if s.sharedBlobs() && !s.oldBlob(ctx, h) {
			continue
		}
		if err := s.blobs.Remove(ctx, h); err != nil {
			s.log.Warn("remove unreferenced blob", "sha256", h, "err", err)
		}
	}
}

// versionMeta reads the version metadata from the "meta" query parameter.
func versionMeta(r *http.Request) (deploy.ContentVersion, error) {
	var v deploy.ContentVersion
	if m := r.URL.Query().Get("meta"); m != "" {
		if err := json.Unmarshal([]byte(m), &v); err != nil {
			return v, deploy.Errorf(deploy.KindInvalid, "meta: not a valid content version JSON: %v", err)
		}
	}
	if v.Status == "" {
		v.Status = deploy.StatusActive
	}
	if !v.Status.Valid() {
		return v, deploy.Errorf(deploy.KindInvalid, "status: %q is not In_Development, Active or Deprecated", v.Status)
	}
	if _, err := v.SuccessCodes(); err != nil {
		return v, deploy.Errorf(deploy.KindInvalid, "installationSuccessCodes: %v", err)
	}
	for _, d := range v.InstallationDependencies {
		if _, err := deploy.ParseRef(d); err != nil {
			return v, deploy.Errorf(deploy.KindInvalid, "installationDependencies: %v", deploy.ErrorMessage(err))
		}
	}
	v.NormalizeIDs()
	return v, nil
}

func (s *Server) addContentVersion(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := pathID(r, "content item")
	if err != nil {
		return err
	}
	item, err := s.store.ContentItem(ctx, id)
	if err != nil {
		return err
	}
	if item.ReadOnly {
		return deploy.Errorf(deploy.KindConflict, "content item %s is read-only", item.ID)
	}
	v, err := versionMeta(r)
	if err != nil {
		return err
	}
	stored, err := s.storeVersion(r.Context(), item, &v, r.Body)
	if err != nil {
		return err
	}
	s.log.Info("content version added", "item", item.ID, "version", stored.VersionNo, "bytes", stored.ContentSize, "sha256", stored.SHA256)
	writeJSON(w, http.StatusCreated, stored)
	return nil
}

// storeVersion streams body into the blob store as the bytes of a new
// version of item and commits the version row.
func (s *Server) storeVersion(ctx context.Context, item *deploy.ContentItem, meta *deploy.ContentVersion, body io.Reader) (*deploy.ContentVersion, error) {
	v := *meta
	v.ID, v.VersionNo, v.Manifest = "", 0, nil
	now := s.now().Unix()
	v.CreatedDate, v.LastModifiedDate = now, now

	var hashes []string
	switch item.Type {
	case deploy.ContentFile:
		blob, err := s.blobs.Put(ctx, body, content.PutOptions{ExpectSHA256: v.SHA256})
		if err != nil {
			return nil, err
		}
		v.SHA256, v.ContentSize = blob.SHA256, blob.Size
		hashes = []string{blob.SHA256}
	case deploy.ContentFolder:
		m, total, err := content.PutTar(ctx, s.blobs, body, content.PutOptions{})
		if err != nil {
			return nil, err
		}
		v.Manifest, v.ContentSize, v.SHA256 = m, total, content.ManifestHash(m)
		for _, f := range m.Files {
			hashes = append(hashes, f.SHA256)
		}
	case deploy.ContentURL:
		u, err := url.Parse(deploy.Str(v.ExternalURL))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, deploy.Errorf(deploy.KindInvalid, "externalURL: %q is not an http or https URL", deploy.Str(v.ExternalURL))
		}
	}

	// Commit the row only while no deletion can remove the blobs under it.
	s.gc.RLock()
	defer s.gc.RUnlock()
	for _, h := range hashes {
		if _, err := s.blobs.Stat(ctx, h); err != nil {
			return nil, deploy.Wrap(deploy.KindConflict, err, "content changed during the upload; try again")
		}
	}
	stored, err := s.store.AddContentVersion(ctx, item.ID, &v)
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// pathVersion resolves {id} and {no} to an item and its version.
func (s *Server) pathVersion(r *http.Request) (*deploy.ContentItem, *deploy.ContentVersion, error) {
	no, err := strconv.Atoi(r.PathValue("no"))
	if err != nil || no < 1 {
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "version %q is not a positive number", r.PathValue("no"))
	}
	id, err := pathID(r, "content item")
	if err != nil {
		return nil, nil, err
	}
	item, err := s.store.ContentItem(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	v, ok := item.Version(no)
	if !ok {
		return nil, nil, deploy.Errorf(deploy.KindNotFound, "content item %s has no version %d", item.ID, no)
	}
	return item, v, nil
}

func (s *Server) getContentVersion(w http.ResponseWriter, r *http.Request) error {
	_, v, err := s.pathVersion(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// patchContentVersion changes the mutable fields of a version; its bytes
// never change (make a new version for that).
func (s *Server) patchContentVersion(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.pathVersion(r)
	if err != nil {
		return err
	}
	if item.ReadOnly {
		return deploy.Errorf(deploy.KindConflict, "content item %s is read-only", item.ID)
	}
	var patch map[string]json.RawMessage
	if err := decodeJSON(w, r, &patch); err != nil {
		return err
	}
	allowed := map[string]bool{
		"status": true, "description": true, "installationCommandLine": true,
		"installationWorkingDirectory": true, "installationSuccessCodes": true,
		"installationDependencies": true, "driverManufacturer": true, "driverModel": true, "tags": true,
	}
	for k := range patch {
		if !allowed[k] {
			return deploy.Errorf(deploy.KindInvalid, "%s: cannot be changed on an existing version", k)
		}
	}
	// Document types decode whole (lossless JSON), so merge at the JSON level.
	var doc map[string]json.RawMessage
	cur, _ := deploy.EncodeJSON(v)
	if err := json.Unmarshal(cur, &doc); err != nil {
		return err
	}
	for k, raw := range patch {
		doc[k] = raw
	}
	b, _ := deploy.EncodeJSON(doc)
	src := v.Source // the key order of the version as first read
	if err := json.Unmarshal(b, v); err != nil {
		return deploy.Errorf(deploy.KindInvalid, "patch: %v", err)
	}
	v.Source = src
	v.NormalizeIDs() // installationDependencies enter here too
	if !v.Status.Valid() {
		return deploy.Errorf(deploy.KindInvalid, "status: %q is not In_Development, Active or Deprecated", v.Status)
	}
	if _, err := v.SuccessCodes(); err != nil {
		return deploy.Errorf(deploy.KindInvalid, "installationSuccessCodes: %v", err)
	}
	v.LastModifiedDate = s.now().Unix()
	if err := s.store.UpdateContentVersion(r.Context(), v); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deleteContentVersion(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.pathVersion(r)
	if err != nil {
		return err
	}
	if item.ReadOnly {
		return deploy.Errorf(deploy.KindConflict, "content item %s is read-only", item.ID)
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	orphans, err := s.store.DeleteContentVersion(r.Context(), item.ID, v.VersionNo)
	if err != nil {
		return err
	}
	s.removeBlobs(r.Context(), orphans)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) downloadContentVersion(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.pathVersion(r)
	if err != nil {
		return err
	}
	return s.serveVersion(w, r, item, v)
}

// serveVersion sends a File version's bytes (Range, strong ETag) or a
// Folder version as a tar stream.
func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request, item *deploy.ContentItem, v *deploy.ContentVersion) error {
	switch item.Type {
	case deploy.ContentFile:
		f, err := s.blobs.Open(r.Context(), v.SHA256)
		if err != nil {
			return s.damagedBlob(r.Context(), err, item, v, v.SHA256)
		}
		defer f.Close()
		s.serveBlob(w, r, f, v.SHA256, item.Name)
		return nil
	case deploy.ContentFolder:
		if v.Manifest == nil {
			return deploy.Errorf(deploy.KindInternal, "folder version without a manifest")
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set("ETag", `"`+v.SHA256+`"`)
		cw := &countWriter{w: w}
		err := content.WriteTar(r.Context(), s.blobs, cw, v.Manifest)
		if ce, ok := content.AsCorrupt(err); ok {
			s.blobCorrupt(r.Context(), ce, "download")
			panic(http.ErrAbortHandler) // a short tar must not look like a whole one
		}
		if err != nil && cw.n > 0 {
			s.log.Error("folder download broken off", "item", item.ID, "version", v.VersionNo, "err", err)
			panic(http.ErrAbortHandler) // no error body inside a tar stream
		}
		return err
	}
	return deploy.Errorf(deploy.KindConflict, "content item %s is a URL item: its bytes are at %s", item.ID, deploy.Str(v.ExternalURL))
}
