package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/cli"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

// TestRemoteAdministration administers a running server over HTTPS from
// a "workstation" whose data directory is empty: the commands must reach
// the server through --server with an admin token, not through a socket.
func TestRemoteAdministration(t *testing.T) {
	srv := servertest.Start(t, nil)
	dir := srv.DataDir()
	_, port, _ := net.SplitHostPort(srv.APIAddr().String())
	url := "https://localhost:" + port
	ca := server.CACertPath(dir)

	r := imprint(t, dir, nil, "token", "create", "laptop")
	if r.code != 0 {
		t.Fatalf("token create: %s", r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	wantContains(t, "stderr", r.stderr, `Admin token "laptop"`, "shown this once")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	workstation := t.TempDir() // no socket here
	remote := func(args ...string) result {
		t.Helper()
		var out, errb bytes.Buffer
		all := append([]string{"--data", workstation, "--server", url, "--ca", ca, "--token-file", tokenFile}, args...)
		code := cli.Main(context.Background(), all, strings.NewReader(""), &out, &errb)
		return result{code, out.String(), errb.String()}
	}

	// Import and list a DeployR task sequence, upload and download content.
	if r := remote("ts", "import", filepath.Join(compatDir, "tasksequences", "module-os-configuration-b09560a1.json")); r.code != 0 {
		t.Fatalf("remote ts import: exit %d: %s", r.code, r.stderr)
	}
	r = remote("ts", "list")
	if r.code != 0 {
		t.Fatalf("remote ts list: %s", r.stderr)
	}
	wantContains(t, "remote ts list", r.stdout, "OS Configuration")
	wantContains(t, "local ts list", ok(t, dir, "ts", "list"), "OS Configuration")

	src := filepath.Join(t.TempDir(), "tool.zip")
	data := randomFile(t, src, 1<<20+5)
	var it item
	r = remote("content", "add", "--name", "Tool", "--type", "File", "--purpose", "Application", "--json")
	if r.code != 0 {
		t.Fatalf("remote content add: %s", r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &it); err != nil || it.ID == "" {
		t.Fatalf("content add output %q: %v", r.stdout, err)
	}
	if r := remote("content", "version", it.ID, src); r.code != 0 {
		t.Fatalf("remote upload: %s", r.stderr)
	}
	got := filepath.Join(t.TempDir(), "got.zip")
	if r := remote("content", "get", it.ID, "--version", "1", "-o", got); r.code != 0 {
		t.Fatalf("remote download: %s", r.stderr)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, data) {
		t.Error("remote download differs from the upload")
	}

	// Tokens are managed only on the server.
	r = remote("token", "create", "another")
	if r.code != 1 || !strings.Contains(r.stderr, "managed only on the server itself") {
		t.Errorf("token create with --server: exit %d, stderr %q", r.code, r.stderr)
	}
	wantContains(t, "token list", ok(t, dir, "token", "list"), "laptop")
	// Tokens expire after 90 days unless told otherwise.
	var toks []struct {
		Name      string
		ExpiresAt *time.Time
	}
	ok(t, dir, "token", "create", "pipeline", "--expires", "0")
	okJSON(t, dir, &toks, "token", "list")
	for _, tk := range toks {
		switch {
		case tk.Name == "laptop" && (tk.ExpiresAt == nil || time.Until(*tk.ExpiresAt) < 89*24*time.Hour || time.Until(*tk.ExpiresAt) > 90*24*time.Hour):
			t.Errorf("default expiry of %s = %v, want 90 days", tk.Name, tk.ExpiresAt)
		case tk.Name == "pipeline" && tk.ExpiresAt != nil:
			t.Errorf("--expires 0 gave an expiry %v", tk.ExpiresAt)
		}
	}

	// Bad remote settings: each a clear message, nothing done.
	t.Setenv("IMPRINT_TOKEN", "")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token", []string{"--data", workstation, "--server", url, "--ca", ca, "ts", "list"}, 2, "needs an admin token: set IMPRINT_TOKEN or pass --token-file"},
		{"wrong token", []string{"--data", workstation, "--server", url, "--ca", ca, "--token-file", writeTemp(t, "imprint_admin_"+strings.Repeat("B", 43)), "ts", "list"}, 1, "admin token is invalid, expired or revoked"},
		{"other CA", []string{"--data", workstation, "--server", url, "--ca", otherCA(t), "--token-file", tokenFile, "ts", "list"}, 1, "cannot trust the server at " + url},
		{"http URL", []string{"--data", workstation, "--server", "http://localhost:" + port, "--token-file", tokenFile, "ts", "list"}, 1, "must be https://"},
		{"nobody there", []string{"--data", workstation, "--server", "https://127.0.0.1:1", "--ca", ca, "--token-file", tokenFile, "ts", "list"}, 1, "cannot reach the imprint server at https://127.0.0.1:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli.Main(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}

	// The token in the environment works the same; revoked, it does not.
	t.Setenv("IMPRINT_TOKEN", tok)
	envArgs := []string{"--data", workstation, "--server", url, "--ca", ca, "passcode", "status"}
	if code := cli.Main(context.Background(), envArgs, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Errorf("passcode status with IMPRINT_TOKEN: exit %d", code)
	}
	ok(t, dir, "token", "revoke", "laptop")
	var errb bytes.Buffer
	if code := cli.Main(context.Background(), envArgs, strings.NewReader(""), &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "revoked") {
		t.Errorf("revoked token: exit %d, stderr %q", code, errb.String())
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCA is the CA certificate of another Imprint server.
func otherCA(t *testing.T) string {
	t.Helper()
	return server.CACertPath(servertest.Start(t, nil).DataDir())
}
