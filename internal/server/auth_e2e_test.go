package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/auth/entra/accesstoken"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

const (
	testTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	otherTenant  = "0badf00d-86f1-41af-91ab-2d7cd011db47"
	testClientID = "6d2c3a57-0b3e-4b7e-9a44-3b8f6c1d2e90"
	testAudience = "api://imprint-test"
	testRole     = "Imprint.Deploy"
)

// entraConfig is the admin's Entra settings pointing at the fake issuer
// (plain HTTP on 127.0.0.1, which entra.Config allows for Authority).
func entraConfig(iss *entratest.Issuer) entra.Config {
	return entra.Config{TenantID: testTenant, ClientID: testClientID, Audience: testAudience,
		RequiredRole: testRole, Authority: iss.Authority(), MinRefetch: time.Minute}
}

func setEntra(t *testing.T, ts *testServer, cfg entra.Config) {
	t.Helper()
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/security/entra", cfg, nil); resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT /admin/v1/security/entra: %d %s", resp.StatusCode, b)
	}
}

func entraLogin(t *testing.T, ts *testServer, token, uuid string) (int, []byte, string) {
	t.Helper()
	return entraLoginFrom(t, ts, token, uuid, "")
}

// entraLoginFrom logs in as if from source (X-Forwarded-For; the server
// must trust 127.0.0.1 as a proxy), so that many bad tokens in one test
// do not run into the throttle of one address.
func entraLoginFrom(t *testing.T, ts *testServer, token, uuid, source string) (int, []byte, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"method": "entra", "accessToken": token, "device": map[string]any{"uuid": devUUID(uuid)}})
	req, _ := http.NewRequest("POST", ts.apiURL("/v1/auth/token"), bytes.NewReader(b))
	if source != "" {
		req.Header.Set("X-Forwarded-For", source)
	}
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tok tokenAnswer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &tok); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, body, tok.Token
}

func TestEntraModeListedWithPrecedence(t *testing.T) {
	ts := startAuthServer(t)
	iss := entratest.NewIssuer(t, testTenant)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	setEntra(t, ts, entraConfig(iss))

	type hints struct {
		Authority, TenantID, ClientID, Scope string
	}
	var m struct {
		methodsAnswer
		Entra *hints `json:"entra"`
	}
	ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
	if d := cmp.Diff(methodsAnswer{Methods: []string{"entra"}, BootImageMethods: []string{"entra"}}, m.methodsAnswer); d != "" {
		t.Errorf("methods (-want +got):\n%s", d)
	}
	// GN-3: with Entra ID on, the passcode is refused exactly like a
	// wrong one, unless the admin allows it for installed OSes.
	refused, _ := login(t, ts, "Correct-Horse-Battery-42", "4c4c4544-0000-1000-8000-0000000000e1")
	wrong, _ := login(t, ts, "Wrong-Horse-Battery-42", "4c4c4544-0000-1000-8000-0000000000e2")
	rb, _ := io.ReadAll(refused.Body)
	wb, _ := io.ReadAll(wrong.Body)
	if refused.StatusCode != 401 || !bytes.Equal(rb, wb) {
		t.Errorf("right passcode with Entra on: %d %s; want the wrong passcode's %d %s", refused.StatusCode, rb, wrong.StatusCode, wb)
	}
	ts.adminJSON(t, "PUT", "/admin/v1/security/passcode-alongside", map[string]bool{"on": true}, nil)
	if r, tok := login(t, ts, "Correct-Horse-Battery-42", "4c4c4544-0000-1000-8000-0000000000e3"); r.StatusCode != 200 || tok == "" {
		t.Errorf("passcode alongside Entra, allowed: %d", r.StatusCode)
	}
	ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
	if d := cmp.Diff(methodsAnswer{Methods: []string{"entra", "passcode"}, BootImageMethods: []string{"entra"}}, m.methodsAnswer); d != "" {
		t.Errorf("methods with passcode-alongside (-want +got):\n%s", d)
	}
	if m.Entra == nil || m.Entra.TenantID != testTenant || m.Entra.ClientID != testClientID || m.Entra.Scope != testAudience+"/.default" {
		t.Errorf("entra hints = %+v", m.Entra)
	}

	// Entra ID without a required role lets the whole tenant deploy: the
	// security view says so.
	noRole := entraConfig(iss)
	noRole.RequiredRole = ""
	var view struct{ Missing []string }
	ts.adminJSON(t, "PUT", "/admin/v1/security/entra", noRole, &view)
	if !strings.Contains(strings.Join(view.Missing, "\n"), "no required app role") {
		t.Errorf("missing = %q, want a warning about the role", view.Missing)
	}
	setEntra(t, ts, entraConfig(iss))
	view.Missing = nil
	ts.adminJSON(t, "GET", "/admin/v1/security", nil, &view)
	if strings.Contains(strings.Join(view.Missing, "\n"), "app role") {
		t.Errorf("missing = %q with a role set", view.Missing)
	}

	// An Authority that is not an http(s) URL is refused by name.
	bad := entraConfig(iss)
	bad.Authority = "ftp://login.example"
	wantError(t, ts.adminJSON(t, "PUT", "/admin/v1/security/entra", bad, nil), 400, "invalid", "Authority")

	// Entra off again: the method goes, and a good token is refused.
	ts.do(t, "DELETE", "/admin/v1/security/entra", nil, nil)
	ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
	if d := cmp.Diff([]string{"passcode"}, m.BootImageMethods); d != "" {
		t.Errorf("boot-image methods with Entra off (-want +got):\n%s", d)
	}
	if status, _, _ := entraLogin(t, ts, iss.Mint(iss.Claims(testAudience, time.Now(), testRole)), "off"); status != 401 {
		t.Errorf("entra token while Entra is off: %d, want 401", status)
	}
}

func TestEntraTokenLoginAndAudit(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, dir, nil)
	iss := entratest.NewIssuer(t, testTenant)
	setEntra(t, ts, entraConfig(iss))

	good := iss.Mint(iss.Claims(testAudience, time.Now(), testRole))
	status, body, tok := entraLogin(t, ts, good, "entra-dev")
	if status != 200 || tok == "" {
		t.Fatalf("good token: %d %s", status, body)
	}
	if r := ts.machine(t, "GET", "/v1/tasksequences", tok, nil, nil); r.StatusCode != 200 {
		t.Fatalf("list with the Entra session: %d", r.StatusCode)
	}
	var sessions []deploy.Session
	ts.do(t, "GET", "/admin/v1/sessions", nil, &sessions)
	if len(sessions) != 1 || sessions[0].Method != auth.MethodEntra || sessions[0].Subject != "alice@contoso.example" {
		t.Fatalf("sessions = %+v, want one entra session of alice@contoso.example", sessions)
	}
	var events []deploy.AuditEvent
	ts.do(t, "GET", "/admin/v1/audit", nil, &events)
	var success *deploy.AuditEvent
	for i, e := range events {
		if e.Action == "auth.attempt" && e.Outcome == auth.OutcomeSuccess {
			success = &events[i]
		}
	}
	if success == nil || success.Details["method"] != "entra" || success.Details["entraUser"] != "alice@contoso.example" ||
		success.Details["entraObjectId"] != "11111111-2222-3333-4444-555555555555" || success.Actor != "alice@contoso.example" || success.DeviceID != devUUID("entra-dev") {
		t.Fatalf("audit success = %+v", success)
	}

	// EN-7: the Entra token itself is kept nowhere.
	ts.stop()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(good)) || bytes.Contains(b, []byte(good[len(good)-40:])) {
				t.Errorf("the Entra access token is stored in %s", p)
			}
		}
		return nil
	})
}

func TestEntraBadTokensAreRefusedAlike(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	iss := entratest.NewIssuer(t, testTenant)
	setEntra(t, ts, entraConfig(iss))
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := iss.Claims(testAudience, now, testRole)
		if edit != nil {
			edit(c)
		}
		return c
	}
	other := entratest.NewIssuer(t, otherTenant)
	tests := []struct {
		name, token, reason string
	}{
		{"other tenant's issuer", other.Mint(other.Claims(testAudience, now, testRole)), accesstoken.ReasonUnknownKey},
		{"other tenant, our key", iss.Mint(claims(func(c jwt.MapClaims) {
			c["iss"], c["tid"] = other.IssuerURL(), otherTenant
		})), accesstoken.ReasonIssuer},
		{"other tid under our issuer", iss.Mint(claims(func(c jwt.MapClaims) { c["tid"] = otherTenant })), accesstoken.ReasonTenant},
		{"v1 issuer", iss.Mint(claims(func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/" + testTenant + "/" })), accesstoken.ReasonIssuer},
		{"other audience", iss.Mint(claims(func(c jwt.MapClaims) { c["aud"] = "api://someone-else" })), accesstoken.ReasonAudience},
		{"graph audience", iss.Mint(claims(func(c jwt.MapClaims) { c["aud"] = entratest.GraphAudience })), accesstoken.ReasonAudience},
		{"alg none", iss.MintAlgNone(claims(nil)), accesstoken.ReasonAlgorithm},
		{"HS256 keyed with the public key", iss.MintHS256WithPublicKey(claims(nil)), accesstoken.ReasonAlgorithm},
		{"expired", iss.Mint(claims(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		})), accesstoken.ReasonExpired},
		{"not yet valid", iss.Mint(claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), accesstoken.ReasonNotYetValid},
		{"unknown kid", iss.MintUnknownKid(claims(nil)), accesstoken.ReasonUnknownKey},
		{"no kid", iss.MintNoKid(claims(nil)), accesstoken.ReasonUnknownKey},
		{"tampered payload", iss.MintTampered(claims(nil), claims(func(c jwt.MapClaims) { c["upn"] = "mallory@contoso.example" })), accesstoken.ReasonSignature},
		{"missing role", iss.Mint(iss.Claims(testAudience, now)), accesstoken.ReasonMissingRole},
		{"other role", iss.Mint(iss.Claims(testAudience, now, "Imprint.Read")), accesstoken.ReasonMissingRole},
		{"not a JWT", "not-a-jwt", accesstoken.ReasonMalformed},
	}
	var first []byte
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := entraLoginFrom(t, ts, tc.token, caseID(i), fmt.Sprintf("192.0.2.%d", i+1))
			if tc.reason == accesstoken.ReasonMissingRole {
				// A genuine token without the role: 403 naming the role
				// (security.md EN-4), not the one 401 of bad tokens.
				if status != 403 || !bytes.Contains(body, []byte(`not assigned the app role \"`+testRole+`\"`)) {
					t.Errorf("status %d %s, want 403 naming the role", status, body)
				}
				return
			}
			if status != 401 {
				t.Fatalf("status %d %s, want 401", status, body)
			}
			if first == nil {
				first = body
			}
			if !bytes.Equal(body, first) {
				t.Errorf("body %s differs from the first refusal %s", body, first)
			}
		})
	}
	if !bytes.Contains(first, []byte(accesstoken.RejectedMessage)) {
		t.Errorf("refusal body %s does not carry %q", first, accesstoken.RejectedMessage)
	}

	var events []deploy.AuditEvent
	ts.do(t, "GET", "/admin/v1/audit", nil, &events)
	got := map[string]string{}
	for _, e := range events {
		if e.Action == "auth.attempt" && e.Details["method"] == "entra" {
			if e.Outcome != auth.OutcomeFailure || e.Details["entraUser"] != "" {
				t.Errorf("audit of a bad token %s: outcome %s entraUser %q", e.DeviceID, e.Outcome, e.Details["entraUser"])
			}
			got[e.DeviceID] = e.Details["reason"]
		}
	}
	want := map[string]string{}
	for i, tc := range tests {
		want[devUUID(caseID(i))] = tc.reason
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("audited reasons by device (-want +got):\n%s", d)
	}
	if resp := ts.do(t, "GET", "/admin/v1/audit/verify", nil, nil); resp.StatusCode != 200 {
		t.Errorf("audit verify: %d", resp.StatusCode)
	}
}

func caseID(i int) string { return "bad-" + string(rune('a'+i)) }
