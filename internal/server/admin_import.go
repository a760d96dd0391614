package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/wire"
)

// importMode reads ?clone=1 (new ids) and ?newVersion=1 (append the file
// as the next versions of the stored document with the same id). Without
// either, importing an id that exists is refused: never a silent overwrite.
func importMode(r *http.Request) (clone, newVersion bool, err error) {
	q := r.URL.Query()
	clone, newVersion = q.Get("clone") == "1", q.Get("newVersion") == "1"
	if clone && newVersion {
		return false, false, deploy.Errorf(deploy.KindInvalid, "--clone and --new-version exclude each other")
	}
	return clone, newVersion, nil
}

func existsErr(what, id, name, cmd string) error {
	return deploy.Errorf(deploy.KindConflict,
		"%s %s (%q) already exists: import it with --new-version to add the file as its next version, or with --clone to import a copy with new ids (imprint %s import --new-version|--clone FILE)",
		what, id, name, cmd)
}

func (s *Server) importTS(w http.ResponseWriter, r *http.Request) error {
	ts, err := deployrjson.DecodeTaskSequence(r.Body, maxDocumentBytes)
	if err != nil {
		return err
	}
	clone, newVersion, err := importMode(r)
	if err != nil {
		return err
	}
	if clone {
		ts = deployrjson.CloneTaskSequence(ts)
	}
	if err := ts.NormalizeIDs(); err != nil {
		return err
	}
	ctx := r.Context()
	s.imports.Lock()
	defer s.imports.Unlock()
	old, err := s.store.TaskSequence(ctx, ts.ID)
	switch {
	case err == nil && newVersion:
		ts = deployrjson.AppendTaskSequenceVersions(old, ts)
	case err == nil:
		return existsErr("task sequence", ts.ID, old.Name, "ts")
	case !deploy.IsNotFound(err):
		return err
	}
	warnings, err := s.saveTS(ctx, ts)
	if err != nil {
		return err
	}
	s.log.Info("task sequence imported", "id", ts.ID, "name", ts.Name, "versions", len(ts.Versions), "warnings", len(warnings))
	writeJSON(w, http.StatusCreated, wire.SavedTaskSequence{TaskSequence: ts, Warnings: warnings})
	return nil
}

// importStepDef stores a DeployR step definition; an id that exists is
// refused unless newVersion (append) or clone (new ids).
func (s *Server) importStepDef(w http.ResponseWriter, r *http.Request) error {
	d, err := deployrjson.DecodeStepDefinition(r.Body, maxDocumentBytes)
	if err != nil {
		return err
	}
	clone, newVersion, err := importMode(r)
	if err != nil {
		return err
	}
	if clone {
		d = deployrjson.CloneStepDefinition(d)
	}
	if err := d.NormalizeIDs(); err != nil {
		return err
	}
	if _, ok := stepdefs.Builtin(d.ID); ok || strings.HasPrefix(d.ID, "00000001-0000-0000-0000-") {
		return deploy.Errorf(deploy.KindConflict, "step definition %s is in the built-in range and cannot be imported; import it with --clone to give it a new id", d.ID)
	}
	ctx := r.Context()
	s.imports.Lock()
	defer s.imports.Unlock()
	old, err := s.store.StepDefinition(ctx, d.ID)
	switch {
	case err == nil && old.ReadOnly:
		return deploy.Errorf(deploy.KindConflict, "step definition %s is read-only", d.ID)
	case err == nil && newVersion:
		d = deployrjson.AppendStepDefinitionVersions(old, d)
	case err == nil:
		return existsErr("step definition", d.ID, old.Name, "stepdef")
	case !deploy.IsNotFound(err):
		return err
	}
	if res := validate.StepDefinition(d); len(res.Errors) > 0 {
		return &deploy.Error{Kind: deploy.KindInvalid, Message: "step definition is invalid: " + res.Errors[0].String(), Fields: res.Errors}
	}
	if err := s.store.PutStepDefinition(ctx, d); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

func (s *Server) exportStepDef(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "step definition")
	if err != nil {
		return err
	}
	d, err := resolver{s.store}.StepDefinition(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+d.ID+`.json"`)
	return deployrjson.Encode(w, d)
}

func (s *Server) exportContent(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "content item")
	if err != nil {
		return err
	}
	c, err := s.store.ContentItem(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.ID+`.json"`)
	// Whether bytes were supplied is this server's state, not part of the
	// document: an import marks File and Folder versions awaiting anyway.
	out := *c
	out.Versions = append([]deploy.ContentVersion(nil), c.Versions...)
	for i := range out.Versions {
		out.Versions[i].AwaitingContent = false
	}
	return deployrjson.Encode(w, &out)
}

// checkItem applies the rules every stored content item meets.
func checkItem(c *deploy.ContentItem) error {
	c.Name = strings.TrimSpace(c.Name)
	switch {
	case c.Name == "":
		return deploy.Errorf(deploy.KindInvalid, "name: must not be empty")
	case !c.Type.Valid():
		return deploy.Errorf(deploy.KindInvalid, "contentItemType: %q is not URL, File or Folder", c.Type)
	case !c.Purpose.Valid():
		return deploy.Errorf(deploy.KindInvalid, "contentItemPurpose: %q is not Application, DriverPack, OperatingSystem, BootImage or Other", c.Purpose)
	}
	for i := range c.Versions {
		v := &c.Versions[i]
		if v.Status == "" {
			v.Status = deploy.StatusActive
		}
		if !v.Status.Valid() {
			return deploy.Errorf(deploy.KindInvalid, "versions[%d].status: %q is not In_Development, Active or Deprecated", i, v.Status)
		}
		// Bytes never come with the metadata: File and Folder versions
		// wait for `imprint content version ID PATH --version N`; a hash
		// in the document is the one those bytes must have.
		v.AwaitingContent = c.Type != deploy.ContentURL
	}
	return nil
}

// importContent stores a DeployR content-item export with every version's
// metadata; File and Folder versions await their bytes.
func (s *Server) importContent(w http.ResponseWriter, r *http.Request) error {
	c, err := deployrjson.DecodeContentItem(r.Body, maxDocumentBytes)
	if err != nil {
		return err
	}
	clone, newVersion, err := importMode(r)
	if err != nil {
		return err
	}
	if clone {
		c = deployrjson.CloneContentItem(c)
	}
	if err := c.NormalizeIDs(); err != nil {
		return err
	}
	if err := checkItem(c); err != nil {
		return err
	}
	ctx := r.Context()
	s.imports.Lock()
	defer s.imports.Unlock()
	old, err := s.store.ContentItem(ctx, c.ID)
	switch {
	case err == nil && newVersion:
		if old.Type != c.Type {
			return deploy.Errorf(deploy.KindConflict, "content item %s is %s content; the file is %s", old.ID, old.Type, c.Type)
		}
		if err := s.appendContentVersions(ctx, old, c); err != nil {
			return err
		}
	case err == nil:
		return existsErr("content item", c.ID, old.Name, "content")
	case !deploy.IsNotFound(err):
		return err
	default:
		if err := s.store.ImportContentItem(ctx, c); err != nil {
			return err
		}
	}
	stored, err := s.store.ContentItem(ctx, c.ID)
	if err != nil {
		return err
	}
	s.log.Info("content item imported", "id", stored.ID, "name", stored.Name, "versions", len(stored.Versions))
	writeJSON(w, http.StatusCreated, stored)
	return nil
}

func (s *Server) appendContentVersions(ctx context.Context, old, c *deploy.ContentItem) error {
	used := map[string]bool{}
	for _, v := range old.Versions {
		used[v.ID] = true
	}
	for _, v := range c.Versions {
		v.VersionNo = 0 // the next number
		if v.ID == "" || used[v.ID] {
			v.ID = uuid.NewString()
		}
		if _, err := s.store.AddContentVersion(ctx, old.ID, &v); err != nil {
			return err
		}
	}
	return nil
}

// fillContentVersion receives the bytes of a version awaiting content: a
// File's bytes or a Folder's tar stream, checked against the hash the
// export gave, if any.
func (s *Server) fillContentVersion(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.pathVersion(r)
	if err != nil {
		return err
	}
	if !v.AwaitingContent {
		return deploy.Errorf(deploy.KindConflict, "content version %s:%d already has its content; add a new version instead", item.ID, v.VersionNo)
	}
	ctx := r.Context()
	var (
		sum    string
		size   int64
		m      *deploy.Manifest
		hashes []string
	)
	switch item.Type {
	case deploy.ContentFile:
		blob, err := s.blobs.Put(ctx, r.Body, content.PutOptions{ExpectSHA256: v.SHA256})
		if err != nil {
			return err
		}
		sum, size, hashes = blob.SHA256, blob.Size, []string{blob.SHA256}
	case deploy.ContentFolder:
		man, total, err := content.PutTar(ctx, s.blobs, r.Body, content.PutOptions{ExpectSHA256: v.SHA256})
		if err != nil {
			return err
		}
		m, size, sum = man, total, content.ManifestHash(man)
		for _, f := range man.Files {
			hashes = append(hashes, f.SHA256)
		}
	default:
		return deploy.Errorf(deploy.KindInvalid, "%s content has no bytes to upload", item.Type)
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	for _, h := range hashes {
		if _, err := s.blobs.Stat(ctx, h); err != nil {
			return deploy.Wrap(deploy.KindConflict, err, "content changed during the upload; try again")
		}
	}
	stored, err := s.store.FillContentVersion(ctx, item.ID, v.VersionNo, sum, m, size)
	if err != nil {
		return err
	}
	s.log.Info("content version filled", "item", item.ID, "version", stored.VersionNo, "bytes", size, "sha256", sum)
	writeJSON(w, http.StatusOK, stored)
	return nil
}
