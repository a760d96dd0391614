package validate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

var compatDir = filepath.Join("..", "..", "..", "..", "shared", "compat", "deployr")

func loadDir[T any](t *testing.T, sub string) map[string]*T {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(compatDir, sub, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no compat files in %s: %v", sub, err)
	}
	out := map[string]*T{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = v
	}
	return out
}

// TestCompatTaskSequencesValidate: every real DeployR export validates with
// no errors given only the built-ins plus the compat step definitions and
// content item (missing children, DeployR's built-in content and the custom
// …0021 definition are warnings).
func TestCompatTaskSequencesValidate(t *testing.T) {
	r := newResolver()
	for _, d := range loadDir[deploy.StepDefinition](t, "stepdefinitions") {
		r.defs[strings.ToLower(d.ID)] = d
	}
	for _, c := range loadDir[deploy.ContentItem](t, "contentitems") {
		r.content[strings.ToLower(c.ID)] = c
	}
	seqs := loadDir[deploy.TaskSequence](t, "tasksequences")
	for name, ts := range seqs {
		t.Run(name, func(t *testing.T) {
			res, err := validate.TaskSequence(context.Background(), ts, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range res.Errors {
				t.Errorf("error: %s", e)
			}
			if len(res.Warnings) == 0 {
				t.Error("no warnings; the corpus refers to DeployR's built-in content items, which should warn")
			}
		})
	}
	// With the modules on the server too, the children resolve and the
	// "not on this server" warning for them goes away.
	for _, ts := range seqs {
		r.ts[strings.ToLower(ts.ID)] = ts
	}
	for name, ts := range seqs {
		res, err := validate.TaskSequence(context.Background(), ts, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Errors {
			t.Errorf("%s with modules stored: error: %s", name, e)
		}
		for _, w := range res.Warnings {
			if strings.Contains(w.Message, "child task sequence") {
				t.Errorf("%s: %s", name, w)
			}
		}
	}
}

// TestCompatStepDefinitionsValidate: DeployR's custom definitions pass
// StepDefinition as they are.
func TestCompatStepDefinitionsValidate(t *testing.T) {
	for name, d := range loadDir[deploy.StepDefinition](t, "stepdefinitions") {
		if res := validate.StepDefinition(d); len(res.Errors) > 0 {
			t.Errorf("%s: %v", name, res.Errors)
		}
	}
}

// TestTemplatesValidate: templates validate without errors. What the admin
// must still choose — the Image of Apply operating system, Apply ChromeOS
// Flex and Apply IGEL image — is a warning (required but empty), as are
// DeployR's built-in 00000000-… content items and the In_Development status.
func TestTemplatesValidate(t *testing.T) {
	for _, tp := range stepdefs.Templates() {
		t.Run(tp.Slug, func(t *testing.T) {
			ts := tp.Build(time.Unix(1760000000, 0))
			res, err := validate.TaskSequence(context.Background(), ts, newResolver())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) > 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			imageEmpty := false
			for _, w := range res.Warnings {
				switch {
				case w.Field == "Image" && strings.Contains(w.Message, "required content option is empty"):
					imageEmpty = true
				case strings.Contains(w.Message, "content item 00000000-0000-0000-0000-00000000000"),
					w.Field == "status" && strings.Contains(w.Message, "In_Development"):
				default:
					t.Errorf("unexpected warning %s", w)
				}
			}
			if wantEmpty := map[string]bool{"windows-bare-metal": true, "windows-build-capture": true, "chromeos-flex": true,
				"igel-12": true, "linux-bare-metal": true}[tp.Slug]; imageEmpty != wantEmpty {
				t.Errorf("warning for the empty Image: %v, want %v", imageEmpty, wantEmpty)
			}
		})
	}
}

func TestBuiltinsPassStepDefinitionRulesExceptID(t *testing.T) {
	for _, d := range stepdefs.Builtins() {
		res := validate.StepDefinition(d)
		if len(res.Errors) != 1 || res.Errors[0].Field != "id" {
			t.Errorf("%s: %v, want only the reserved-id error", d.Name, res.Errors)
		}
	}
}
