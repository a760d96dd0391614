package server_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// caseFolds are the calls that fold an id's case by hand: the rule that
// ids are canonical lives in deploy.ParseID (read through pathID), and a
// handler that folds a path value itself has a second rule.
var caseFolds = map[string]bool{"ToLower": true, "ToUpper": true, "EqualFold": true}

// pathValueFolds returns "file:line: call" for every strings.ToLower,
// ToUpper or EqualFold in f whose argument holds a PathValue call, or a
// variable assigned from one in the same function (id := r.PathValue("id")
// … strings.ToLower(id)).
func pathValueFolds(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		// Names of the function's variables that hold a path value. By
		// name, not by object: a shadowing name is flagged too, which errs
		// on the strict side.
		fromPath := map[string]bool{}
		mark := func(lhs []ast.Expr, rhs []ast.Expr) {
			for i, e := range lhs {
				id, ok := e.(*ast.Ident)
				if !ok || id.Name == "_" {
					continue
				}
				// x, y := a, b pairs up; x, err := f(…) takes from the one call.
				src := rhs[0]
				if len(rhs) == len(lhs) {
					src = rhs[i]
				}
				if holdsPathValue(src, fromPath) {
					fromPath[id.Name] = true
				}
			}
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				mark(n.Lhs, n.Rhs)
			case *ast.ValueSpec:
				if len(n.Values) > 0 {
					lhs := make([]ast.Expr, len(n.Names))
					for i, id := range n.Names {
						lhs[i] = id
					}
					mark(lhs, n.Values)
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || !caseFolds[sel.Sel.Name] {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "strings" {
					return true
				}
				for _, a := range n.Args {
					if holdsPathValue(a, fromPath) {
						p := fset.Position(n.Pos())
						out = append(out, filepath.ToSlash(p.Filename)+":"+strconv.Itoa(p.Line)+": strings."+sel.Sel.Name)
						break
					}
				}
			}
			return true
		})
	}
	return out
}

// holdsPathValue reports whether e calls a PathValue method or uses a
// variable in fromPath anywhere inside it.
func holdsPathValue(e ast.Expr, fromPath map[string]bool) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "PathValue" {
				found = true
			}
		case *ast.Ident:
			if fromPath[n.Name] {
				found = true
			}
		}
		return !found
	})
	return found
}

// TestNoCaseFoldingOfPathValues keeps the id rule in one place: no
// handler of the admin API, the machine API or the console (this package
// and its subpackages) lowercases or case-compares a path value itself;
// they read ids with pathID/pathDeviceID (deploy.ParseID, ParseDeviceID).
func TestNoCaseFoldingOfPathValues(t *testing.T) {
	fset := token.NewFileSet()
	var bad []string
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		bad = append(bad, pathValueFolds(fset, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("parsed %d files: the walk did not find the handlers", files)
	}
	for _, b := range bad {
		t.Errorf("%s folds the case of a path value: read the id with pathID or pathDeviceID instead", b)
	}
}

// TestCaseFoldGuardCatches holds the guard to the forms the handlers used
// before ids were parsed at the edge, so that it cannot pass vacuously.
func TestCaseFoldGuardCatches(t *testing.T) {
	const src = `package x

import "strings"

func direct(r *http.Request) { s.store.Device(ctx, strings.ToLower(r.PathValue("id"))) }

func viaVar(r *http.Request) {
	id := r.PathValue("id")
	_ = strings.ToLower(id)
}

func compare(r *http.Request, ts *T) bool {
	var id = strings.TrimSpace(r.PathValue("id"))
	return strings.EqualFold(ts.ID, id)
}

func fine(r *http.Request, name string) {
	_ = strings.ToLower(name)
	id, err := pathID(r, "run")
	_ = strings.ToLower(id)
	_ = r.PathValue("no")
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "old.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"old.go:5: strings.ToLower", "old.go:9: strings.ToLower", "old.go:14: strings.EqualFold"}
	if diff := cmp.Diff(want, pathValueFolds(fset, f)); diff != "" {
		t.Errorf("guard findings (-want +got):\n%s", diff)
	}
}
