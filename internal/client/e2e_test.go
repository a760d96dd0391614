package client_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

// startServer runs the real server in-process on a fresh data directory
// and returns a client of its admin socket.
func startServer(t *testing.T) *client.Admin {
	t.Helper()
	return client.NewAdmin(servertest.Start(t, nil).Socket())
}

func TestContentVersionLifecycle(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	item, err := c.CreateContentItem(ctx, deploy.ContentItem{Name: "Tools", Type: deploy.ContentFile, Purpose: deploy.PurposeApplication})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("payload ", 10_000)
	v, err := c.AddContentVersion(ctx, item.ID, deploy.ContentVersion{
		Status:                  deploy.StatusInDevelopment,
		InstallationCommandLine: deploy.StrPtr("setup.exe /s"),
		DriverModel:             deploy.StrPtr("X1"),
	}, strings.NewReader(body), "")
	if err != nil {
		t.Fatal(err)
	}

	// A patch changes what it names and keeps everything else.
	active := deploy.StatusActive
	got, err := c.UpdateContentVersion(ctx, item.ID, v.VersionNo, client.VersionPatch{Status: &active, Description: deploy.StrPtr("ready")})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.ContentVersion(ctx, item.ID, v.VersionNo)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*deploy.ContentVersion{got, again} {
		if g.Status != deploy.StatusActive || deploy.Str(g.Description) != "ready" ||
			deploy.Str(g.InstallationCommandLine) != "setup.exe /s" || deploy.Str(g.DriverModel) != "X1" ||
			g.SHA256 != v.SHA256 || g.ContentSize != int64(len(body)) {
			t.Errorf("after patch: %+v", g)
		}
	}
	bad := deploy.Status("Live")
	_, err = c.UpdateContentVersion(ctx, item.ID, v.VersionNo, client.VersionPatch{Status: &bad})
	if deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("patch with a bad status: %v, want invalid", err)
	}

	var buf bytes.Buffer
	n, err := c.DownloadContentVersion(ctx, item.ID, v.VersionNo, &buf)
	if err != nil || n != int64(len(body)) || buf.String() != body {
		t.Errorf("download: %d bytes, %v", n, err)
	}

	if err := c.DeleteContentVersion(ctx, item.ID, v.VersionNo); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContentVersion(ctx, item.ID, v.VersionNo); !deploy.IsNotFound(err) {
		t.Errorf("deleted version: %v, want not found", err)
	}
	if err := c.DeleteContentItem(ctx, item.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContentItem(ctx, item.ID); !deploy.IsNotFound(err) {
		t.Errorf("deleted item: %v, want not found", err)
	}
}

func TestStepDefinitionsAndTaskSequences(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()

	defs, err := c.StepDefinitions(ctx)
	if err != nil || len(defs) == 0 {
		t.Fatalf("step definitions: %d, %v", len(defs), err)
	}
	if !defs[0].ReadOnly {
		t.Errorf("first step definition %s is not a built-in", defs[0].ID)
	}
	err = c.DeleteStepDefinition(ctx, defs[0].ID)
	if deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("delete a built-in: %v, want conflict", err)
	}

	f, err := os.Open("../../../shared/compat/deployr/stepdefinitions/sample-82fc6fd9.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := c.ImportStepDefinition(ctx, f, client.ImportNew)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.StepDefinition(ctx, d.ID); err != nil || got.Name != d.Name {
		t.Errorf("imported step definition: %v, %v", got, err)
	}
	if err := c.DeleteStepDefinition(ctx, d.ID); err != nil {
		t.Errorf("delete a custom step definition: %v", err)
	}

	tmpls, err := c.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hasTemplate(tmpls, "linux-bare-metal") {
		t.Errorf("templates %v lack linux-bare-metal", tmpls)
	}
	if _, _, err := c.NewTaskSequence(ctx, "linux-bare-metal", "Lab"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.NewTaskSequence(ctx, "no-such-template", "Lab")
	if k := deploy.ErrorKind(err); k != deploy.KindNotFound && k != deploy.KindInvalid {
		t.Errorf("unknown template: %v, want not found or invalid", err)
	}

	ts := importFile(t, c, "../../../shared/compat/deployr/tasksequences/module-app-installs-0b226848.json")
	ts.Name = "Apps renamed"
	put, _, err := c.PutTaskSequence(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.TaskSequence(ctx, ts.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Apps renamed" || put.Name != "Apps renamed" {
		t.Errorf("after put: %q / %q", put.Name, got.Name)
	}
	got.LastModifiedDate = ts.LastModifiedDate // the server stamps the save
	// Source is how each document was spelled when read; compare values.
	if diff := cmp.Diff(ts, got, cmpopts.IgnoreTypes(&deploy.DocSource{})); diff != "" {
		t.Errorf("put changed the sequence (-sent +stored):\n%s", diff)
	}

	var doc bytes.Buffer
	if err := c.ExportTaskSequence(ctx, ts.ID, &doc); err != nil {
		t.Fatal(err)
	}
	exported := doc.String()
	res, err := c.ValidateTaskSequence(ctx, strings.NewReader(exported))
	if err != nil || len(res.Errors) != 0 {
		t.Errorf("validate the export: %v, %v", res, err)
	}
	res, err = c.ValidateTaskSequence(ctx, strings.NewReader(strings.Replace(exported, `"typeId":"00000001-0000-0000-0000-000000000002"`, `"typeId":"not-a-type"`, 1)))
	if err != nil || len(res.Errors) == 0 {
		t.Errorf("validate with an unknown type id: %v, %v", res, err)
	}
	_, _, err = c.ImportTaskSequence(ctx, strings.NewReader(`{"id":"x","versions":"no"}`), client.ImportNew)
	var de *deploy.Error
	if !errors.As(err, &de) || de.Kind != deploy.KindInvalid {
		t.Errorf("malformed import: %v, want an invalid *deploy.Error", err)
	}
	clone, _, err := c.ImportTaskSequence(ctx, strings.NewReader(exported), client.ImportClone)
	if err != nil || clone.ID == ts.ID {
		t.Errorf("clone: %v, id %v", err, clone)
	}

	if err := c.DeleteTaskSequence(ctx, ts.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TaskSequence(ctx, ts.ID); !deploy.IsNotFound(err) {
		t.Errorf("deleted sequence: %v, want not found", err)
	}
	seqs, err := c.TaskSequences(ctx)
	if err != nil || len(seqs) != 2 { // the template's and the clone
		t.Errorf("sequences after delete: %d, %v", len(seqs), err)
	}
}

func hasTemplate(ts []client.Template, slug string) bool {
	for _, t := range ts {
		if t.Slug == slug {
			return true
		}
	}
	return false
}

func importFile(t *testing.T, c *client.Admin, path string) *deploy.TaskSequence {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ts, _, err := c.ImportTaskSequence(context.Background(), f, client.ImportNew)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
