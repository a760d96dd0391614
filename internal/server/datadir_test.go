//go:build unix

package server_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// modes lists every entry under dir (symlinks excluded) with its mode.
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// loosen gives group and others read access to everything under dir, as an
// old install or a careless copy (cp -r, a restore with umask 022) leaves it.
func loosen(t *testing.T, dir string) {
	t.Helper()
	for p, m := range modes(t, dir) {
		mode := fs.FileMode(0o644)
		if m.IsDir() {
			mode = 0o755
		}
		if m&fs.ModeSocket != 0 {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// wantOwnerOnly checks that no entry grants group or others anything and
// that directories are 0700.
func wantOwnerOnly(t *testing.T, got map[string]fs.FileMode) {
	t.Helper()
	for p, m := range got {
		switch {
		case m&fs.ModeSocket != 0:
			if m.Perm()&0o077 != 0 {
				t.Errorf("%s: socket mode %v, want owner-only", p, m.Perm())
			}
		case m.IsDir():
			if m.Perm() != 0o700 {
				t.Errorf("%s: directory mode %v, want 0700", p, m.Perm())
			}
		case m.Perm()&0o077 != 0:
			t.Errorf("%s: file mode %v, want no group or other access", p, m.Perm())
		}
	}
}

// Issue 9 item 6: on an existing data directory with 0755 directories and
// 0644 files (database, keys, blobs, logs, scripts) the server takes all
// access from group and others at start, and the database's -wal and -shm
// are created owner-only whatever the umask.
func TestDataDirModesForcedAtStart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	item := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	data := []byte("some content")
	if _, resp := upload(t, ts, item.ID, bytes.NewReader(data), ""); resp.StatusCode != 201 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	wantOwnerOnly(t, modes(t, dir)) // a fresh directory, -wal and -shm included
	ts.stop()
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "hello.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	blob := blobPath(dir, sha(data))
	loosen(t, dir)
	os.Chmod(blob, 0o444)
	os.Chmod(filepath.Join(dir, "scripts", "hello.sh"), 0o755)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	old := syscall.Umask(0o022)
	ts = startServer(t, dir)
	syscall.Umask(old)
	createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication) // the -wal exists while the server runs
	got := modes(t, dir)
	for _, want := range []string{".", "imprint.db", "imprint.db-wal", "imprint.db-shm", "tls", "tls/ca.key", "tls/ca.crt",
		"tls/server.key", "content", "content/sha256", "scripts/hello.sh"} {
		if _, ok := got[want]; !ok {
			t.Errorf("%s missing from the data directory", want)
		}
	}
	wantOwnerOnly(t, got)
	for p, want := range map[string]fs.FileMode{"imprint.db": 0o600, "tls/ca.key": 0o600, "tls/ca.crt": 0o600,
		filepath.Join("content", "sha256", sha(data)[:2], sha(data)): 0o400, "scripts/hello.sh": 0o700} {
		if got[p].Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, got[p].Perm(), want)
		}
	}
	if fi, err := os.Stat("/etc/hostname"); err == nil && fi.Mode().Perm()&0o044 == 0 {
		t.Errorf("the symlink's target outside the data directory was changed: %v", fi.Mode().Perm())
	}
}

// A data directory, or anything in it, owned by another user is refused
// with a message that says what to do: that user could loosen or swap it.
func TestDataDirOwnedByAnotherUserIsRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "imprint.db"), nil, 0o600)
	other := os.Geteuid() + 1
	_, err := server.PrepareDataDir(dir, other)
	if err == nil || !strings.Contains(err.Error(), "owned by uid") || !strings.Contains(err.Error(), "chown") {
		t.Fatalf("PrepareDataDir as another uid = %v, want a refusal naming the owner", err)
	}
	if _, err := server.PrepareDataDir(dir, os.Geteuid()); err != nil {
		t.Fatalf("PrepareDataDir as the owner: %v", err)
	}
	// Through a link to the directory: the real one is walked.
	os.Chmod(filepath.Join(dir, "imprint.db"), 0o644)
	link := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := server.PrepareDataDir(link, other); err == nil {
		t.Error("PrepareDataDir through a link as another uid: no refusal")
	}
	if n, err := server.PrepareDataDir(link, os.Geteuid()); err != nil || n != 1 {
		t.Errorf("PrepareDataDir through a link = %d, %v; want the database fixed", n, err)
	}
	if n, err := server.PrepareDataDir(dir, os.Geteuid()); err != nil || n != 0 {
		t.Fatalf("PrepareDataDir again = %d, %v; want nothing left to change", n, err)
	}
	if os.Geteuid() != 0 {
		return // the end-to-end half needs a file of another user
	}
	if err := os.Chown(filepath.Join(dir, "imprint.db"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if s, err := server.Open(ctx, cfg, nil); err == nil {
		cancel()
		s.Serve(ctx)
		t.Fatal("server started on a database another user owns")
	} else if !strings.Contains(err.Error(), "imprint.db is owned by uid 65534") {
		t.Errorf("refusal = %v", err)
	}
}
