package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sources parses the non-test Go files of dir, by file name.
func sources(t *testing.T, dir string) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = f
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

// TestImportsOnlyDeploy keeps the package a leaf that the agent, the
// client and the server can all import: the standard library and
// internal/deploy only.
func TestImportsOnlyDeploy(t *testing.T) {
	for _, f := range sources(t, ".") {
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(p, ".") && p != "github.com/imprint-osd/imprint/internal/deploy" {
				t.Errorf("wire imports %s; it may import the standard library and internal/deploy only", p)
			}
		}
	}
}

// jsonKeys is the sorted set of JSON member names of a struct type's
// fields; nil when no field has a json tag.
func jsonKeys(st *ast.StructType) []string {
	var keys []string
	for _, f := range st.Fields.List {
		if f.Tag == nil {
			continue
		}
		tag, err := strconv.Unquote(f.Tag.Value)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}

// TestNoCopies fails when the server, the client or the CLI declares its
// own struct (named or anonymous) with the same JSON members as a type of
// this package: such a copy is how the two ends of a route drift apart
// (issue 14). Use the wire type instead.
func TestNoCopies(t *testing.T) {
	shapes := map[string]string{} // joined keys -> wire type
	for _, f := range sources(t, ".") {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, sp := range gd.Specs {
				ts := sp.(*ast.TypeSpec)
				if st, ok := ts.Type.(*ast.StructType); ok {
					if k := jsonKeys(st); len(k) > 0 {
						shapes[strings.Join(k, ",")] = ts.Name.Name
					}
				}
			}
		}
	}
	if len(shapes) < 10 {
		t.Fatalf("found only %d wire shapes; the parser missed some", len(shapes))
	}
	for _, dir := range []string{"../server", "../client", "../cli", "../agent"} {
		for name, f := range sources(t, dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				st, ok := n.(*ast.StructType)
				if !ok {
					return true
				}
				k := jsonKeys(st)
				if w, dup := shapes[strings.Join(k, ",")]; dup && len(k) > 0 {
					t.Errorf("%s/%s declares a copy of wire.%s (members %v): use the wire type", filepath.Base(dir), name, w, k)
				}
				return true
			})
		}
	}
}
