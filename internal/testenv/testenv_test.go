package testenv_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of
// ending the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

// TestMissing: with RequireEnv set (as under make test) a missing
// prerequisite fails the test; unset (by hand) it skips. Either way the
// message keeps what the caller said is missing and how to install it.
func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		env                 string
		wantFatal, wantSkip bool
	}{
		{env: "1", wantFatal: true},
		{env: "", wantSkip: true},
	} {
		t.Setenv(testenv.RequireEnv, tt.env)
		r := &recorder{TB: t}
		testenv.Missing(r, "%s is not installed: apt-get install %s", "cpio", "cpio")
		if (r.fatal != "") != tt.wantFatal || (r.skip != "") != tt.wantSkip {
			t.Errorf("%s=%q: fatal %q, skip %q; want fatal %v, skip %v", testenv.RequireEnv, tt.env, r.fatal, r.skip, tt.wantFatal, tt.wantSkip)
		}
		if msg := r.fatal + r.skip; !strings.Contains(msg, "cpio is not installed: apt-get install cpio") {
			t.Errorf("%s=%q: message %q does not say what is missing and what to install", testenv.RequireEnv, tt.env, msg)
		}
	}
}

// TestLookPath: a tool that is not on PATH fails under RequireEnv naming
// its Debian package; one that is returns its path and ends nothing.
func TestLookPath(t *testing.T) {
	t.Setenv(testenv.RequireEnv, "1")
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	testenv.LookPath(r, "sgdisk")
	if !strings.Contains(r.fatal, "apt-get install gdisk") || r.skip != "" {
		t.Errorf("sgdisk missing: fatal %q, skip %q; want a failure naming gdisk", r.fatal, r.skip)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, name := splitPath(exe)
	t.Setenv("PATH", dir)
	r = &recorder{TB: t}
	if p := testenv.LookPath(r, name); p == "" || r.fatal != "" || r.skip != "" {
		t.Errorf("LookPath(%s) with it on PATH = %q, fatal %q, skip %q; want its path", name, p, r.fatal, r.skip)
	}
}

func splitPath(p string) (dir, name string) {
	i := strings.LastIndexAny(p, `/\`)
	return p[:i], p[i+1:]
}

// TestPackageMatchesMakefile: every command the Makefile's TEST_NEEDS
// installs maps to the same package here, so a failure message never
// names a package other than the one `make deps` would install.
func TestPackageMatchesMakefile(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "TEST_NEEDS :=")
	if !ok {
		t.Fatal("no TEST_NEEDS in the Makefile")
	}
	var list strings.Builder
	for _, line := range strings.SplitAfter(rest, "\n") {
		list.WriteString(strings.TrimSuffix(strings.TrimSpace(line), `\`) + " ")
		if !strings.HasSuffix(strings.TrimSpace(line), `\`) {
			break
		}
	}
	n := 0
	for _, pair := range strings.Fields(list.String()) {
		need, pkg, ok := strings.Cut(pair, ":")
		if !ok {
			t.Errorf("TEST_NEEDS entry %q is not need:package", pair)
			continue
		}
		if strings.HasPrefix(need, "/") {
			continue // a file, not a command
		}
		n++
		if got := testenv.Package(need); got != pkg {
			t.Errorf("Package(%q) = %q; the Makefile installs %q", need, got, pkg)
		}
	}
	if n < 20 {
		t.Errorf("read %d commands from TEST_NEEDS; the parse is broken", n)
	}
}
