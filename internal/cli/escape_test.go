package cli_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// rawControls are the characters no command may write to a terminal as
// they are: ESC and BEL (C0), CSI (C1), a bidi override and a zero-width
// space.
var rawControls = []string{"\x1b", "\x07", "\u009b", "\u202e", "\u200b"}

func wantNoRawControls(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range rawControls {
		if strings.Contains(out, c) {
			t.Errorf("%s writes %q raw:\n%q", what, c, out)
		}
	}
}

// Issue 9 item 5: text a machine chose — step names, messages, an
// unauthenticated request's path, a device id stored before logins were
// validated — is printed with its control characters escaped by every
// command that shows it, as text and as JSON.
func TestUntrustedTextIsEscapedOnOutput(t *testing.T) {
	dir, m := startAuthServer(t)
	ctx := context.Background()
	ok(t, dir, "security", "set", "anonymous", "on")

	// Before login: an admin request with a hostile path, over HTTPS
	// without a token, is audited with that path.
	ca, err := os.ReadFile(server.CACertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", m.BaseURL()+"/admin/v1/%1B]0;pwned%07%C2%9B2J", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	if resp, err := hc.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 401 {
		t.Fatalf("bad admin token: %d, want 401", resp.StatusCode)
	}

	// A device id written before the server validated them.
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	sessions := &auth.Sessions{Store: db}
	if _, err := sessions.Mint(ctx, &deploy.Session{Method: auth.MethodAnonymous, DeviceID: "\x1b]0;pwned\x07\u202eevil", Source: "192.0.2.9"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// After login: a run whose events carry escapes.
	tok, err := m.Token(ctx, client.TokenRequest{Method: "anonymous", Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000009"}})
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken(tok.Token)
	const tsID = "61111111-2222-3333-4444-555555555559"
	doc := filepath.Join(t.TempDir(), "lab.json")
	if err := os.WriteFile(doc, []byte(`{"id":"`+tsID+`","name":"Lab","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"`+tsID+`","versionNo":1,"status":"Active","steps":[]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, dir, "ts", "import", doc)
	run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: tsID, VersionNo: 1})
	if err != nil {
		t.Fatal(err)
	}
	code := 1
	if err := m.SendEvents(ctx, run.ID, []client.AgentEvent{
		{Type: "step-start", Path: "Disk/\x1b[31mFormat\u200b", Name: "Format"},
		{Type: "step-end", Path: "Disk/\x1b[31mFormat\u200b", Name: "Format", Outcome: "failed", ExitCode: &code,
			Message: "\x1b]0;pwned\x07 bad\u202eevil\tcol\nrow", DurationSeconds: 1},
		{Type: "run-end", State: "failed", Message: "\u009b2J wiped"},
	}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"runs", "show", run.ID}, []string{`Disk/\x1b[31mFormat\u200b`, `\x1b]0;pwned\x07 bad\u202eevil`, `\u009b2J wiped`}},
		{[]string{"runs", "list"}, []string{run.ID}},
		{[]string{"runs", "events", run.ID}, []string{`Disk/\x1b[31mFormat\u200b`, `\u009b2J wiped`}},
		{[]string{"audit"}, []string{`path=/admin/v1/\x1b]0;pwned\x07\u009b2J`}},
		{[]string{"sessions", "list"}, []string{`\x1b]0;pwned\x07\u202eevil`}},
	} {
		name := strings.Join(c.args, " ")
		out := ok(t, dir, c.args...)
		wantNoRawControls(t, name, out)
		wantContains(t, name, out, c.want...)
		js := ok(t, dir, append(c.args, "--json")...)
		wantNoRawControls(t, name+" --json", js)
		if !(c.args[0] == "runs" && c.args[1] == "events") && !json.Valid([]byte(js)) {
			t.Errorf("%s --json is not JSON:\n%s", name, js)
		}
	}
	// The JSON still carries the very same text.
	var got deploy.Run
	okJSON(t, dir, &got, "runs", "show", run.ID)
	if len(got.Steps) != 1 || got.Steps[0].Message != "\x1b]0;pwned\x07 bad\u202eevil\tcol\nrow" {
		t.Errorf("runs show --json decodes to %+v", got.Steps)
	}
}
