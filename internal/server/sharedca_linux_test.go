//go:build linux

package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
	"github.com/imprint-osd/imprint/internal/tlsca"
)

// TestReplicasShareTheCA starts servers on one PostgreSQL database as
// replicas: the first brings the CA its data directory already had (as
// after `imprint migrate`), the second, on an empty data directory, takes
// it, and one whose data directory holds another CA refuses to start,
// since machines pinned to either CA would be refused by the other.
func TestReplicasShareTheCA(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	open := func(dir string) (*server.Server, error) {
		st, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg := server.DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.BootListen = dir, "127.0.0.1:0", "127.0.0.1:0"
		return server.OpenWith(t.Context(), cfg, server.Deps{Store: st})
	}
	caOf := func(dir string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	dirA := t.TempDir()
	mine, err := tlsca.LoadOrCreate(filepath.Join(dirA, "tls"), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stA, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	a := startServerDeps(t, dirA, nil, server.Deps{Store: stA})
	if a.CAFingerprint() != mine.Fingerprint() {
		t.Fatalf("the first replica presents CA %s, not the one its data directory had (%s)", a.CAFingerprint(), mine.Fingerprint())
	}

	dirB := t.TempDir()
	b, err := open(dirB)
	if err != nil {
		t.Fatalf("second replica: %v", err)
	}
	fpB := b.CAFingerprint()
	shut(b)
	if fpB != a.CAFingerprint() || !bytes.Equal(caOf(dirB), caOf(dirA)) {
		t.Fatalf("second replica presents CA %s, want the shared %s", fpB, a.CAFingerprint())
	}
	// Its server certificate is its own, issued by the shared CA.
	if bytes.Equal(mustRead(t, filepath.Join(dirB, "tls", "server.key")), mustRead(t, filepath.Join(dirA, "tls", "server.key"))) {
		t.Error("the replicas share a server key: each should issue its own")
	}

	dirC := t.TempDir()
	if _, err := tlsca.LoadOrCreate(filepath.Join(dirC, "tls"), []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if c, err := open(dirC); err == nil {
		shut(c)
		t.Fatal("a replica with another CA in its data directory started")
	} else if !strings.Contains(err.Error(), "another CA") {
		t.Fatalf("a replica with another CA: %v, want an error saying so", err)
	}
}

// shut stops a server Open returned that never served.
func shut(s *server.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Serve(ctx)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
