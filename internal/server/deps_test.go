package server_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// TestOnlyOpenNamesEmbeddedAdapters: the server runs on the Deps it is
// given; only open.go (the Open convenience) may name a store
// implementation or open the content directory (issue 14).
func TestOnlyOpenNamesEmbeddedAdapters(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") || n == "open.go" {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/imprint-osd/imprint/internal/store/") {
				t.Errorf("%s imports %s: take the store from Deps", n, p)
			}
		}
		ast.Inspect(f, func(x ast.Node) bool {
			if sel, ok := x.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "content" && sel.Sel.Name == "Open" {
					t.Errorf("%s: %s calls content.Open: take the blobs from Deps", n, fset.Position(sel.Pos()))
				}
			}
			return true
		})
	}
	if checked < 20 {
		t.Fatalf("checked only %d files", checked)
	}
}

// TestNewRunsOnTheGivenDeps: New uses the store and blobs it is handed and
// creates no embedded database of its own; without them it refuses.
func TestNewRunsOnTheGivenDeps(t *testing.T) {
	ctx := context.Background()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "127.0.0.1:0"
	if _, err := server.New(ctx, cfg, server.Deps{}); err == nil || !strings.Contains(err.Error(), "Store and Blobs") {
		t.Fatalf("New without adapters = %v, want a refusal naming them", err)
	}
	elsewhere := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(elsewhere, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := content.Open(filepath.Join(elsewhere, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(ctx, cfg, server.Deps{Store: st, Blobs: blobs})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	if s.Store() != st {
		t.Error("the server does not use the store it was given")
	}
	for _, name := range []string{"imprint.db", "content"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, name)); err == nil {
			t.Errorf("New created %s in the data directory although Deps gave a store and blobs", name)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
