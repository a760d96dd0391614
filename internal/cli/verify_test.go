package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 9 item 7: after a byte of a stored file flips, `content get`
// fails and writes nothing, `content verify` names the file and the
// version using it and exits 1; uploading the file again repairs both.
func TestContentGetAndVerifyCatchCorruption(t *testing.T) {
	dir := startServer(t)
	src := t.TempDir()
	data := randomFile(t, filepath.Join(src, "setup.msi"), 700<<10)
	var it item
	okJSON(t, dir, &it, "content", "add", "--name", "Setup", "--type", "File", "--purpose", "Application")
	var v version
	okJSON(t, dir, &v, "content", "version", it.ID, filepath.Join(src, "setup.msi"))

	out := t.TempDir()
	wantContains(t, "content get", ok(t, dir, "content", "get", it.ID, "-o", filepath.Join(out, "good.msi")), "sha256 checked")
	if b, err := os.ReadFile(filepath.Join(out, "good.msi")); err != nil || string(b) != string(data) {
		t.Fatalf("intact download differs: %v", err)
	}
	wantContains(t, "content verify", ok(t, dir, "content", "verify"), "checked 1 stored file ")

	blob := filepath.Join(dir, "content", "sha256", v.SHA256[:2], v.SHA256)
	os.Chmod(blob, 0o600)
	b, _ := os.ReadFile(blob)
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(blob, b, 0o400); err != nil {
		t.Fatal(err)
	}

	r := imprint(t, dir, nil, "content", "get", it.ID, "-o", filepath.Join(out, "bad.msi"))
	if r.code != 1 {
		t.Fatalf("content get of a corrupt file: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "content get stderr", r.stderr, "bad.msi was not written", "broke off the transfer")
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("content get left files behind: %v", entries)
	}

	r = imprint(t, dir, nil, "content", "verify")
	if r.code != 1 {
		t.Fatalf("content verify with a corrupt file: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "content verify", r.stdout, "corrupt", v.SHA256, "Setup ("+it.ID+") version 1")
	wantContains(t, "content verify stderr", r.stderr, "1 stored file is corrupt or missing")

	// Upload the right bytes again: the version is whole and verify is clean.
	ok(t, dir, "content", "version", it.ID, filepath.Join(src, "setup.msi"))
	ok(t, dir, "content", "get", it.ID, "--version", "1", "-o", filepath.Join(out, "again.msi"))
	if out := ok(t, dir, "content", "verify"); strings.Contains(out, "corrupt") {
		t.Errorf("content verify after the repair:\n%s", out)
	}
}
