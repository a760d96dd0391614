package validate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
)

const scriptsItem = "a1b2c3d4-0000-4000-8000-000000000001"

// compatCases loads the hand-made DeployR files for what the shared corpus
// lacks: a step naming version 2 of a definition whose only version (same
// id) is numbered 1, a required option stored as "" with a "" default, a
// "[]" content list, DeployR built-ins 0003 and 0019 and unknown ones, and a
// content version imported without its bytes.
func compatCases(t *testing.T) (*deploy.TaskSequence, *memResolver) {
	t.Helper()
	open := func(name string) *os.File {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	d, err := deployrjson.DecodeStepDefinition(open("stepdef-mismatch.json"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := deployrjson.DecodeTaskSequence(open("ts-compat-cases.json"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver()
	r.defs[d.ID] = d
	r.content[scriptsItem] = &deploy.ContentItem{ID: scriptsItem, Name: "Scripts", Type: deploy.ContentFolder, Purpose: deploy.PurposeOther,
		Versions: []deploy.ContentVersion{{VersionNo: 1, SHA256: strings.Repeat("a", 64)}, {VersionNo: 2, AwaitingContent: true}}}
	return ts, r
}

func TestCompatCases(t *testing.T) {
	ts, r := compatCases(t)
	res, err := validate.TaskSequence(context.Background(), ts, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	wantWarnings := []deploy.FieldError{
		fe("Number says 2, id says 1", "Owner", "required option is empty; the step fails when it runs unless it gets a value"),
		fe("Two extras", "Extras", `content item "Scripts" version 2 is awaiting content; supply it with `+"`imprint content version "+scriptsItem+" PATH --version 2`"),
		fe("Command line variant", "typeId", "DeployR built-in step type 00000001-0000-0000-0000-000000000003 (Run command line (DeployR variant)) is not supported by this server yet"),
		fe("Autopilot", "typeId", "DeployR built-in step type 00000001-0000-0000-0000-000000000019 (Register with Autopilot) is not supported by this server yet"),
		fe("Unknown built-in", "typeId", "DeployR built-in step type 00000001-0000-0000-0000-00000000004f is not supported by this server"),
		fe("Disabled unknown", "typeId", "DeployR built-in step type 00000001-0000-0000-0000-00000000004e is not supported by this server"),
	}
	if d := cmp.Diff(wantWarnings, res.Warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	wantCannot := []deploy.FieldError{
		{Step: "Number says 2, id says 1", Message: "required option Owner is empty"},
		{Step: "Two extras", Message: `content item "Scripts" version 2 is awaiting content`},
		{Step: "Command line variant", Message: "DeployR built-in step type 00000001-0000-0000-0000-000000000003 (Run command line (DeployR variant)) is not supported by this server yet"},
		{Step: "Autopilot", Message: "DeployR built-in step type 00000001-0000-0000-0000-000000000019 (Register with Autopilot) is not supported by this server yet"},
		{Step: "Unknown built-in", Message: "DeployR built-in step type 00000001-0000-0000-0000-00000000004f is not supported by this server"},
	}
	if d := cmp.Diff(wantCannot, res.CannotRun); d != "" {
		t.Errorf("cannot run (-want +got):\n%s", d)
	}
	for _, w := range append(res.Warnings, res.CannotRun...) {
		if strings.Contains(strings.ToLower(w.Message), "import") {
			t.Errorf("a DeployR built-in cannot be imported, yet: %s", w)
		}
	}
}

func TestStepDefinitionVersionResolution(t *testing.T) {
	tests := []struct {
		name   string
		verID  *string
		verNo  int
		errors []deploy.FieldError
	}{
		{name: "id settles a wrong number", verID: deploy.StrPtr("D1E2F3A4-0000-4000-8000-0000000000F1"), verNo: 7},
		{name: "unknown id, number found", verID: deploy.StrPtr("d1e2f3a4-0000-4000-8000-0000000000ff"), verNo: 1},
		{name: "no id, number found", verNo: 1},
		{name: "neither", verID: deploy.StrPtr("d1e2f3a4-0000-4000-8000-0000000000ff"), verNo: 3,
			errors: []deploy.FieldError{fe("Number says 2, id says 1", "stepDefinitionVersionNo", `step definition "Mismatch Step" has no version 3`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, r := compatCases(t)
			v := &ts.Versions[0]
			v.Steps = v.Steps[:1]
			v.Steps[0].StepDefinitionVersionID = tc.verID
			v.Steps[0].StepDefinitionVersionNo = &tc.verNo
			res, err := validate.TaskSequence(context.Background(), ts, r)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.errors, res.Errors); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}

// TestInDevelopmentSaysHowToRun: a version refused to machines for its
// status says so and names the command that makes it runnable.
func TestInDevelopmentSaysHowToRun(t *testing.T) {
	ts, r := compatCases(t)
	ts.Versions[0].Status = deploy.StatusInDevelopment
	res, err := validate.TaskSequence(context.Background(), ts, r)
	if err != nil {
		t.Fatal(err)
	}
	want := fe("", "status", "version 1 is In_Development: machines are offered Active versions only; to run it for testing, set it Active with `imprint ts status "+ts.ID+" 1 Active`")
	if len(res.Warnings) == 0 || res.Warnings[0] != want {
		t.Errorf("first warning = %v, want %v", res.Warnings, want)
	}
}
