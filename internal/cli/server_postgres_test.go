//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/cli"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
)

// lockedBuffer is a bytes.Buffer safe to write from the server goroutine
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runServerDB runs `imprint server --db dsn` in a fresh data directory
// until the test ends and returns the directory once the admin socket is
// there.
func runServerDB(t *testing.T, dsn string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--data", dir, "server", "--db", dsn,
			"--listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0"}, strings.NewReader(""), &stderr, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("imprint server exit %d:\n%s", code, stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "imprint.sock")); err == nil {
			// The socket exists once bound; wait for the server to say it serves.
			if strings.Contains(stderr.String(), "caSHA256") || strings.Contains(stderr.String(), "ca_sha256") {
				return dir
			}
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("imprint server exited %d before serving:\n%s", code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("imprint server did not start within 60 s:\n%s", stderr.String())
		}
	}
}

// TestServerOnPostgres runs two servers, each with its own data directory,
// on one PostgreSQL database, as two replicas: a setting changed through
// one is what the other reports, and the audit chain both wrote verifies.
func TestServerOnPostgres(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	a, b := runServerDB(t, dsn), runServerDB(t, dsn)

	ok(t, a, "security", "set", "anonymous", "on")
	var sec struct {
		Anonymous bool `json:"anonymous"`
	}
	okJSON(t, b, &sec, "security", "show")
	if !sec.Anonymous {
		t.Errorf("security show on replica B: anonymous off after replica A turned it on: the state is not shared")
	}
	ok(t, b, "security", "set", "anonymous", "off")
	okJSON(t, a, &sec, "security", "show")
	if sec.Anonymous {
		t.Errorf("security show on replica A: anonymous still on after replica B turned it off")
	}

	var entries []json.RawMessage
	okJSON(t, a, &entries, "audit")
	if len(entries) < 2 {
		t.Errorf("audit on replica A lists %d entries, want both replicas' settings changes", len(entries))
	}
	ok(t, b, "audit", "verify")
}
