package client

import (
	"context"
	"io"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// StepDefinitions lists the step definitions, built-ins first.
func (a *Admin) StepDefinitions(ctx context.Context) ([]deploy.StepDefinition, error) {
	var out []deploy.StepDefinition
	if err := a.get(ctx, "/admin/v1/stepdefs", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// StepDefinition returns one step definition with its versions.
func (a *Admin) StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error) {
	var out deploy.StepDefinition
	if err := a.get(ctx, "/admin/v1/stepdefs/"+esc(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportStepDefinition imports a DeployR step-definition export read from
// r; mode says what to do when its id exists.
func (a *Admin) ImportStepDefinition(ctx context.Context, r io.Reader, mode ImportMode) (*deploy.StepDefinition, error) {
	var out deploy.StepDefinition
	if err := a.importDoc(ctx, "/admin/v1/stepdefs/import", r, mode, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteStepDefinition deletes a custom step definition (built-ins are
// read-only: KindConflict).
func (a *Admin) DeleteStepDefinition(ctx context.Context, id string) error {
	return a.del(ctx, "/admin/v1/stepdefs/"+esc(id))
}
