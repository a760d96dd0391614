package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestDebVersion: scripts/debversion.sh gives every commit of a history
// a valid Debian version that dpkg orders after the one before, through
// untagged commits, a release candidate, a release and commits after it.
func TestDebVersion(t *testing.T) {
	git := testenv.LookPath(t, "git")
	dpkg := testenv.LookPath(t, "dpkg")
	script, err := filepath.Abs("../../scripts/debversion.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func() string {
		t.Helper()
		run(git, "commit", "-q", "--allow-empty", "-m", "c")
		return run(git, "rev-parse", "--short=12", "HEAD")
	}
	run(git, "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(git, "add", "f")

	var prev string
	for i, step := range []struct {
		do   func() string // changes the repository, returns the hash to expect
		want string        // %h is the hash
	}{
		{do: commit, want: "0~git.1.%h"},
		{do: func() string { h := commit(); return h }, want: "0~git.2.%h"},
		{do: func() string {
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("2"), 0o644); err != nil {
				t.Fatal(err)
			}
			return run(git, "rev-parse", "--short=12", "HEAD")
		}, want: "0~git.2.%h.dirty"},
		{do: func() string { run(git, "commit", "-q", "-am", "c"); run(git, "tag", "v1.0.0-rc1"); return "" }, want: "1.0.0~rc1"},
		{do: func() string { h := commit(); return h }, want: "1.0.0~rc1+git.1.%h"},
		{do: func() string { run(git, "tag", "v1.0.0"); return "" }, want: "1.0.0"},
		{do: func() string { commit(); h := commit(); return h }, want: "1.0.0+git.2.%h"},
		{do: func() string { run(git, "tag", "v1.0.1"); return "" }, want: "1.0.1"},
	} {
		h := step.do()
		want := strings.ReplaceAll(step.want, "%h", h)
		got := run(script)
		if got != want {
			t.Fatalf("step %d: debversion.sh = %q, want %q", i, got, want)
		}
		run(dpkg, "--validate-version", got)
		if prev != "" {
			run(dpkg, "--compare-versions", got, "gt", prev)
		}
		prev = got
	}
}
