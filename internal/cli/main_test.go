package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testApp runs the command line with captured streams and a fixed
// environment.
type testApp struct {
	t        *testing.T
	terminal bool // stdout is a terminal
	env      map[string]string
	stdin    io.Reader
	stdout   *bytes.Buffer
	stderr   *bytes.Buffer
}

func newTestApp(t *testing.T, env map[string]string) *testApp {
	t.Helper()
	return &testApp{t: t, env: env, stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}
}

func (r *testApp) run(args ...string) int {
	r.t.Helper()
	r.stdout.Reset()
	r.stderr.Reset()
	a := &app{
		stdin:      r.stdin,
		stdout:     r.stdout,
		stderr:     r.stderr,
		getenv:     func(k string) string { return r.env[k] },
		now:        time.Now,
		isTerminal: func(io.Writer) bool { return r.terminal },
	}
	return a.main(context.Background(), args)
}

// TestGlobalFlags checks --data and --json are accepted before the command,
// between group and subcommand, and after it; with no server listening the
// error must name the socket of the chosen data directory.
func TestGlobalFlags(t *testing.T) {
	dir := t.TempDir()
	envDir := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		sock string
	}{
		{"before", nil, []string{"--data", dir, "content", "list"}, dir},
		{"between", nil, []string{"content", "--data=" + dir, "list"}, dir},
		{"after", nil, []string{"content", "list", "--data", dir}, dir},
		{"after positional", nil, []string{"ts", "show", "some-id", "--json", "--data", dir}, dir},
		{"json before", nil, []string{"--json", "--data", dir, "stepdef", "list"}, dir},
		{"env", map[string]string{"IMPRINT_DATA": envDir}, []string{"ts", "list"}, envDir},
		{"flag beats env", map[string]string{"IMPRINT_DATA": envDir}, []string{"ts", "list", "--data", dir}, dir},
		{"default", nil, []string{"content", "list"}, "imprint-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestApp(t, tt.env)
			if code := r.run(tt.args...); code != exitError {
				t.Fatalf("exit = %d, want %d; stderr: %s", code, exitError, r.stderr)
			}
			sock := filepath.Join(tt.sock, "imprint.sock")
			wantMsg := "cannot reach the imprint server at " + sock + ": is `imprint server` running with this --data directory?"
			if !strings.Contains(r.stderr.String(), wantMsg) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, wantMsg)
			}
			if n := strings.Count(r.stderr.String(), "\n"); n != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", n, r.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"no command", nil, []string{"imprint: no command given", "imprint help"}},
		{"unknown command", []string{"frobnicate"}, []string{`imprint: unknown command "frobnicate"`, "Commands:", "server", "content", "stepdef", "ts"}},
		{"unknown flag", []string{"--bogus", "ts", "list"}, []string{"imprint: flag provided but not defined: -bogus"}},
		{"no subcommand", []string{"content"}, []string{"imprint: imprint content: no subcommand given", "Subcommands:"}},
		{"unknown subcommand", []string{"ts", "fly"}, []string{`unknown subcommand "fly" (one of: export, import, list, new, rm, show, status, templates, validate)`}},
		{"missing argument", []string{"ts", "show"}, []string{"imprint: imprint ts show: missing argument", "run 'imprint ts show -h' for usage"}},
		{"extra argument", []string{"ts", "show", "a", "b"}, []string{`imprint: imprint ts show: unexpected argument "b"`}},
		{"bad flag value", []string{"content", "show", "x", "--version", "two"}, []string{`invalid value "two" for flag -version`}},
		{"bad type", []string{"content", "add", "--name", "n", "--type", "Blob", "--purpose", "Other"}, []string{`--type "Blob" is not File, Folder or URL`}},
		{"bad purpose", []string{"content", "add", "--name", "n", "--type", "File", "--purpose", "Apps"}, []string{`--purpose "Apps" is not Application`}},
		{"bad depends", []string{"content", "version", "id", "f", "--depends", "nope"}, []string{`--depends: reference "nope" is not of the form guid:version`}},
		{"bad status", []string{"content", "version", "id", "f", "--status", "Live"}, []string{`--status "Live" is not In_Development, Active or Deprecated`}},
		{"bad success codes", []string{"content", "version", "id", "f", "--success-codes", "0,ok"}, []string{`--success-codes: success code "ok" is not a number`}},
		{"ts new without name", []string{"ts", "new", "--template", "linux-bare-metal"}, []string{"--template and --name are required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestApp(t, map[string]string{"IMPRINT_DATA": t.TempDir()})
			if code := r.run(tt.args...); code != exitUsage {
				t.Fatalf("exit = %d, want %d; stderr: %s", code, exitUsage, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr.String(), w) {
					t.Errorf("stderr = %q, want it to contain %q", r.stderr, w)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	r := newTestApp(t, nil)
	if code := r.run("help"); code != exitOK {
		t.Fatalf("exit = %d", code)
	}
	if !strings.Contains(r.stdout.String(), "usage: imprint [--data DIR | --server URL [--ca FILE] [--token-file FILE]] [--json] COMMAND") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if code := r.run("ts", "import", "-h"); code != exitOK {
		t.Fatalf("ts import -h: exit = %d", code)
	}
	if !strings.Contains(r.stderr.String(), "import FILE [--clone|--new-version]") {
		t.Errorf("stderr = %q", r.stderr)
	}
}
