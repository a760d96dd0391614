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

// TestNoCopies fails when the server (and its console), the client, the
// CLI or the agent declares its own struct (named or anonymous) with the
// JSON members of a type of this package, or with some of them (at least
// two): such a copy, whole or partial, is how the two ends of a route
// drift apart (issue 14). Use the wire type instead. (internal/auth is
// not searched: its Security is the stored setting, which the Security
// answer shows with more.)
func TestNoCopies(t *testing.T) {
	type shape struct {
		name string
		keys []string
	}
	var shapes []shape
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
						shapes = append(shapes, shape{ts.Name.Name, k})
					}
				}
			}
		}
	}
	if len(shapes) < 35 {
		t.Fatalf("found only %d wire shapes; the parser missed some", len(shapes))
	}
	// copyOf names the wire type whose members k are all or (at least two
	// of them) some of.
	copyOf := func(k []string) string {
		for _, s := range shapes {
			if slices.Equal(k, s.keys) {
				return s.name
			}
		}
		for _, s := range shapes {
			if len(k) >= 2 && subset(k, s.keys) {
				return s.name
			}
		}
		return ""
	}
	for _, dir := range []string{"../server", "../server/web", "../client", "../cli", "../agent"} {
		for name, f := range sources(t, dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				st, ok := n.(*ast.StructType)
				if !ok {
					return true
				}
				if k := jsonKeys(st); len(k) > 0 {
					if w := copyOf(k); w != "" {
						t.Errorf("%s/%s declares a copy of wire.%s (members %v): use the wire type", strings.TrimPrefix(dir, "../"), name, w, k)
					}
				}
				return true
			})
		}
	}
}

// subset reports whether every member of k (sorted) is in of (sorted).
func subset(k, of []string) bool {
	for _, x := range k {
		if _, ok := slices.BinarySearch(of, x); !ok {
			return false
		}
	}
	return true
}
