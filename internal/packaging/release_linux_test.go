package packaging_test

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestReleaseStatic runs scripts/release.sh for linux/amd64 only (make
// release adds arm64, which the same loop builds): each Linux binary is
// static (no program interpreter, no shared library needed), the Windows
// agent is a PE file, SHA256SUMS holds the hash of every file it built
// and of nothing else, and what else was in the directory stays.
func TestReleaseStatic(t *testing.T) {
	testenv.LookPath(t, "readelf")
	testenv.LookPath(t, "sha256sum")
	out := t.TempDir()
	// dist/ also holds make deb's packages: release.sh leaves them be.
	deb := filepath.Join(out, "imprint-agent_1_amd64.deb")
	if err := os.WriteFile(deb, []byte("a package"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("scripts/release.sh", out)
	cmd.Dir = "../.."
	// The tests run with CGO_ENABLED=1 (for -race): the script must not
	// depend on what it inherits.
	cmd.Env = append(os.Environ(), "PLATFORMS=linux/amd64", "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}

	sums := map[string]string{}
	f, err := os.Open(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not HASH  NAME", sc.Text())
		}
		sums[name] = sum
	}
	if _, err := os.Stat(deb); err != nil {
		t.Errorf("release.sh removed a package in its output directory: %v", err)
	}
	want := []string{"imprint-linux-amd64", "imprint-agent-linux-amd64", "imprint-agent.exe"}
	if len(sums) != len(want) {
		t.Errorf("SHA256SUMS lists %d files, want %d: %v", len(sums), len(want), sums)
	}
	for _, name := range want {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		if got := hex.EncodeToString(h[:]); sums[name] != got {
			t.Errorf("SHA256SUMS says %s is %q, it is %s", name, sums[name], got)
		}
		if strings.HasSuffix(name, ".exe") {
			if len(b) < 2 || string(b[:2]) != "MZ" {
				t.Errorf("%s is not a Windows executable", name)
			}
			continue
		}
		checkStatic(t, filepath.Join(out, name))
	}
}

// checkStatic fails t unless path is an ELF executable that needs no
// dynamic loader and no shared library.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is not static: it has a program interpreter", path)
		}
	}
	libs, err := ef.ImportedLibraries()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(libs) > 0 {
		t.Errorf("%s is not static: it needs %v", path, libs)
	}
}
