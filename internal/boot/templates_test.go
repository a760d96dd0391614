package boot

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTemplatesDeclared keeps the embedded files and the tmpl* constants
// in step: a new file must be declared, a declared one must exist.
func TestTemplatesDeclared(t *testing.T) {
	files, err := fs.Glob(templateFS, "templates/*")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f[len("templates/"):])
	}
	declared := []string{tmplError, tmplStage1, tmplGrubBootstrap, tmplGrubMachine, tmplGrubError}
	slices.Sort(names)
	slices.Sort(declared)
	if diff := cmp.Diff(declared, names); diff != "" {
		t.Errorf("templates (-declared +embedded):\n%s", diff)
	}
	if _, err := parseTemplates(); err != nil {
		t.Error(err)
	}
}
