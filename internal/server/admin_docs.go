package server

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/wire"
)

// resolver answers validation look-ups: built-in step definitions from
// code, everything else from the store.
type resolver struct{ store deploy.Store }

// The ids it is given are references inside documents: canonical in every
// document imported or saved since ids were normalised on entry
// (deploy.NormalizeIDs), but possibly not in one stored before, so they
// go through deploy.CanonicalID once more.
func (r resolver) StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error) {
	if d, ok := stepdefs.Builtin(id); ok {
		return d, nil
	}
	return r.store.StepDefinition(ctx, deploy.CanonicalID(id))
}

func (r resolver) ContentItem(ctx context.Context, id string) (*deploy.ContentItem, error) {
	return r.store.ContentItem(ctx, deploy.CanonicalID(id))
}

func (r resolver) TaskSequence(ctx context.Context, id string) (*deploy.TaskSequence, error) {
	return r.store.TaskSequence(ctx, deploy.CanonicalID(id))
}

var _ validate.Resolver = resolver{}

func (s *Server) listStepDefs(w http.ResponseWriter, r *http.Request) error {
	custom, err := s.store.StepDefinitions(r.Context())
	if err != nil {
		return err
	}
	sort.Slice(custom, func(i, j int) bool { return custom[i].Name < custom[j].Name })
	writeJSON(w, http.StatusOK, append(stepdefs.Builtins(), custom...))
	return nil
}

func (s *Server) getStepDef(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "step definition")
	if err != nil {
		return err
	}
	d, err := resolver{s.store}.StepDefinition(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) deleteStepDef(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "step definition")
	if err != nil {
		return err
	}
	if _, ok := stepdefs.Builtin(id); ok {
		return deploy.Errorf(deploy.KindConflict, "step definition %s is a built-in and cannot be removed", id)
	}
	if err := s.store.DeleteStepDefinition(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTS(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.store.TaskSequences(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []*deploy.TaskSequence{}
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

func (s *Server) getTS(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "task sequence")
	if err != nil {
		return err
	}
	ts, err := s.store.TaskSequence(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

// saveTS validates ts and stores it; errors block the save, warnings
// (references this server cannot resolve yet) are returned with it.
func (s *Server) saveTS(ctx context.Context, ts *deploy.TaskSequence) ([]deploy.FieldError, error) {
	res, err := validate.TaskSequence(ctx, ts, resolver{s.store})
	if err != nil {
		return nil, err
	}
	if len(res.Errors) > 0 {
		return nil, &deploy.Error{
			Kind:    deploy.KindInvalid,
			Message: "task sequence is invalid: " + joinFieldErrors(res.Errors),
			Fields:  res.Errors,
		}
	}
	if err := s.store.PutTaskSequence(ctx, ts); err != nil {
		return nil, err
	}
	if res.Warnings == nil {
		res.Warnings = []deploy.FieldError{}
	}
	return res.Warnings, nil
}

func joinFieldErrors(fe []deploy.FieldError) string {
	var b strings.Builder
	for i, f := range fe {
		if i == 3 {
			b.WriteString("; and " + itoa(len(fe)-3) + " more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

func (s *Server) validateTS(w http.ResponseWriter, r *http.Request) error {
	ts, err := deployrjson.DecodeTaskSequence(r.Body, maxDocumentBytes)
	if err != nil {
		return err
	}
	res, err := validate.TaskSequence(r.Context(), ts, resolver{s.store})
	if err != nil {
		return err
	}
	if res.Errors == nil {
		res.Errors = []deploy.FieldError{}
	}
	if res.Warnings == nil {
		res.Warnings = []deploy.FieldError{}
	}
	if res.CannotRun == nil {
		res.CannotRun = []deploy.FieldError{}
	}
	writeJSON(w, http.StatusOK, wire.Validation{CannotRun: res.CannotRun, Errors: res.Errors, Warnings: res.Warnings})
	return nil
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) error {
	var out []wire.Template
	for _, t := range stepdefs.Templates() {
		out = append(out, wire.Template{Slug: t.Slug, Name: t.Name, Description: t.Description})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// newTS creates a task sequence from a template. Templates leave their
// content options empty, so the new sequence is stored without validation
// errors blocking it: the warnings say what to fill in.
func (s *Server) newTS(w http.ResponseWriter, r *http.Request) error {
	var req wire.NewTaskSequenceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	var ts *deploy.TaskSequence
	var names []string
	for _, t := range stepdefs.Templates() {
		names = append(names, t.Slug)
		if t.Slug == req.Template {
			ts = t.Build(s.now())
		}
	}
	if ts == nil {
		return deploy.Errorf(deploy.KindInvalid, "template: %q is not one of %s", req.Template, strings.Join(names, ", "))
	}
	if n := strings.TrimSpace(req.Name); n != "" {
		ts.Name = n
	}
	ctx := r.Context()
	res, err := validate.TaskSequence(ctx, ts, resolver{s.store})
	if err != nil {
		return err
	}
	// A fresh template may only lack content references; anything else is a bug.
	warnings := append([]deploy.FieldError{}, res.Warnings...)
	for _, e := range res.Errors {
		warnings = append(warnings, e)
	}
	if err := s.store.PutTaskSequence(ctx, ts); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.SavedTaskSequence{TaskSequence: ts, Warnings: warnings})
	return nil
}

// putTS replaces a task sequence. The body goes through the import's
// decoder, so a PUT meets the same size, depth and field-type limits as an
// import (a bare json.Decode had no depth limit: deeply nested groups cost
// time at every level).
func (s *Server) putTS(w http.ResponseWriter, r *http.Request) error {
	dec, err := deployrjson.DecodeTaskSequence(http.MaxBytesReader(w, r.Body, maxDocumentBytes), maxDocumentBytes)
	if err != nil {
		return err
	}
	ts := *dec
	id, err := pathID(r, "task sequence")
	if err != nil {
		return err
	}
	if err := ts.NormalizeIDs(); err != nil {
		return err
	}
	if ts.ID == "" {
		ts.ID = id
	}
	if ts.ID != id {
		return deploy.Errorf(deploy.KindInvalid, "id: body has %s but the path has %s", ts.ID, id)
	}
	ts.LastModifiedDate = s.now().Unix()
	warnings, err := s.saveTS(r.Context(), &ts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.SavedTaskSequence{TaskSequence: &ts, Warnings: warnings})
	return nil
}

func (s *Server) exportTS(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "task sequence")
	if err != nil {
		return err
	}
	ts, err := s.store.TaskSequence(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+ts.ID+`.json"`)
	return deployrjson.Encode(w, ts)
}

func (s *Server) deleteTS(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "task sequence")
	if err != nil {
		return err
	}
	if err := s.store.DeleteTaskSequence(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
