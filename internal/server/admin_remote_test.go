package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

type createdToken struct {
	Token string `json:"token"`
	ID    string `json:"id"`
	Name  string `json:"name"`
}

func createAdminToken(t *testing.T, ts *testServer, name string) createdToken {
	t.Helper()
	var c createdToken
	if resp := ts.adminJSON(t, "POST", "/admin/v1/tokens", map[string]string{"name": name}, &c); resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /admin/v1/tokens: %d %s", resp.StatusCode, b)
	}
	return c
}

// errorCode decodes the error code of a JSON error answer.
func errorCode(t *testing.T, resp *http.Response) deploy.Kind {
	t.Helper()
	var e struct {
		Error struct {
			Code deploy.Kind `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error answer %q: %v", b, err)
	}
	return e.Error.Code
}

func TestRemoteAdminNeedsALiveAdminToken(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	tok := createAdminToken(t, ts, "workstation")

	// With the token, the admin API answers over HTTPS.
	var seqs []json.RawMessage
	if resp := ts.machine(t, "GET", "/admin/v1/tasksequences", tok.Token, nil, &seqs); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/v1/tasksequences with an admin token: %d", resp.StatusCode)
	}

	// A machine session token, no token, a wrong one: 401, same code.
	_, session := login(t, ts, "Correct-Horse-Battery-42", "4c4c4544-0031-3010-8052-b4c04f4a3232")
	if session == "" {
		t.Fatal("no session")
	}
	for name, bearer := range map[string]string{
		"none":          "",
		"session token": session,
		"wrong token":   tok.Token[:len(tok.Token)-3] + "xyz",
	} {
		resp := ts.machine(t, "GET", "/admin/v1/tasksequences", bearer, nil, nil)
		if resp.StatusCode != http.StatusUnauthorized || errorCode(t, resp) != deploy.KindUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
	}
	// An admin token does not open the machine API either.
	if resp := ts.machine(t, "GET", "/v1/tasksequences", tok.Token, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("machine API with an admin token: %d, want 401", resp.StatusCode)
	}

	// Tokens cannot be minted, listed or revoked over HTTPS, even with one,
	// nor a backup taken.
	for _, m := range []struct{ method, path string }{
		{"POST", "/admin/v1/tokens"}, {"GET", "/admin/v1/tokens"}, {"DELETE", "/admin/v1/tokens/" + tok.ID},
		{"GET", "/admin/v1/backup"}, // the archive holds every secret: socket only
	} {
		resp := ts.machine(t, m.method, m.path, tok.Token, map[string]string{"name": "more"}, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s over HTTPS: %d, want 404", m.method, m.path, resp.StatusCode)
		}
	}

	// A remote change is audited under the token's name.
	if resp := ts.machine(t, "PUT", "/admin/v1/security/anonymous", tok.Token, map[string]bool{"on": true}, nil); resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT anonymous over HTTPS: %d %s", resp.StatusCode, b)
	}
	var events []deploy.AuditEvent
	ts.adminJSON(t, "GET", "/admin/v1/audit", nil, &events)
	seen := map[string]string{}
	for _, e := range events {
		seen[e.Action] = e.Actor + " " + e.Outcome
	}
	for action, want := range map[string]string{
		"admin.token.create":   "admin-socket success",
		"security.anonymous":   "admin-token:workstation success",
		"admin.request":        "admin-token:workstation success",
		"admin.token.rejected": " failure",
	} {
		if seen[action] != want {
			t.Errorf("audit %s = %q, want %q", action, seen[action], want)
		}
	}

	// Revoked over the socket: refused at once.
	if resp := ts.adminJSON(t, "DELETE", "/admin/v1/tokens/workstation", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp := ts.machine(t, "GET", "/admin/v1/tasksequences", tok.Token, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", resp.StatusCode)
	}
}

func TestRemoteAdminFailuresAreThrottled(t *testing.T) {
	ts := startAuthServer(t)
	var last *http.Response
	for range 60 {
		last = ts.machine(t, "GET", "/admin/v1/content", "imprint_admin_"+strings.Repeat("A", 43), nil, nil)
		if last.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("after repeated wrong admin tokens: %d (Retry-After %q), want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
}
