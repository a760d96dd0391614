package client

import (
	"context"
	"io"
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Template is a task-sequence template `imprint ts new` can start from.
type Template = wire.Template

// Validation is the answer of the validate call: the document's errors
// and warnings, and every enabled step that cannot run, with the reason.
type Validation = wire.Validation

// TaskSequences lists the task sequences.
func (a *Admin) TaskSequences(ctx context.Context) ([]deploy.TaskSequence, error) {
	var out []deploy.TaskSequence
	if err := a.get(ctx, "/admin/v1/tasksequences", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// TaskSequence returns one task sequence with its versions.
func (a *Admin) TaskSequence(ctx context.Context, id string) (*deploy.TaskSequence, error) {
	var out deploy.TaskSequence
	if err := a.get(ctx, "/admin/v1/tasksequences/"+esc(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportTaskSequence imports a DeployR task-sequence export read from r;
// mode says what to do when its id exists. It returns the stored sequence
// and the warnings (references the server cannot resolve yet). An invalid
// document is a KindInvalid *deploy.Error whose Fields name each problem.
func (a *Admin) ImportTaskSequence(ctx context.Context, r io.Reader, mode ImportMode) (*deploy.TaskSequence, []deploy.FieldError, error) {
	var out wire.SavedTaskSequence
	if err := a.importDoc(ctx, "/admin/v1/tasksequences/import", r, mode, &out); err != nil {
		return nil, nil, err
	}
	return out.TaskSequence, out.Warnings, nil
}

// ValidateTaskSequence checks a DeployR task-sequence document without
// storing it. err is only for failures of the call itself; problems of the
// document are in errs and warnings.
func (a *Admin) ValidateTaskSequence(ctx context.Context, r io.Reader) (*Validation, error) {
	req := request{method: http.MethodPost, path: "/admin/v1/tasksequences/validate", body: r, contentType: "application/json"}
	var out Validation
	if err := a.call(ctx, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// NewTaskSequence creates a task sequence named name from a template.
func (a *Admin) NewTaskSequence(ctx context.Context, template, name string) (*deploy.TaskSequence, []deploy.FieldError, error) {
	in := wire.NewTaskSequenceRequest{Template: template, Name: name}
	var out wire.SavedTaskSequence
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/tasksequences/new", in, &out); err != nil {
		return nil, nil, err
	}
	return out.TaskSequence, out.Warnings, nil
}

// Templates lists the task-sequence templates.
func (a *Admin) Templates(ctx context.Context) ([]Template, error) {
	var out []Template
	if err := a.get(ctx, "/admin/v1/tasksequences/templates", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PutTaskSequence replaces task sequence ts.ID after validating it.
func (a *Admin) PutTaskSequence(ctx context.Context, ts *deploy.TaskSequence) (*deploy.TaskSequence, []deploy.FieldError, error) {
	var out wire.SavedTaskSequence
	if err := a.sendJSON(ctx, http.MethodPut, "/admin/v1/tasksequences/"+esc(ts.ID), ts, &out); err != nil {
		return nil, nil, err
	}
	return out.TaskSequence, out.Warnings, nil
}

// ExportTaskSequence writes the DeployR JSON of a task sequence to w.
func (a *Admin) ExportTaskSequence(ctx context.Context, id string, w io.Writer) error {
	_, err := a.stream(ctx, "/admin/v1/tasksequences/"+esc(id)+"/export", w)
	return err
}

// DeleteTaskSequence deletes a task sequence.
func (a *Admin) DeleteTaskSequence(ctx context.Context, id string) error {
	return a.del(ctx, "/admin/v1/tasksequences/"+esc(id))
}
