package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// cheap Argon2 for tests; production uses auth.DefaultArgon2Params.
var testArgon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func startAuthServer(t *testing.T) *testServer {
	t.Helper()
	return startServerWith(t, t.TempDir(), func(c *server.Config) { c.PasscodeArgon2 = testArgon2 })
}

// machine sends a machine-API request with an optional bearer token.
func (ts *testServer) machine(t *testing.T, method, path, token string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ts.apiURL(path), rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func (ts *testServer) adminJSON(t *testing.T, method, path string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	return ts.do(t, method, path, rd, out)
}

type tokenAnswer struct {
	Token string `json:"token"`
}

func login(t *testing.T, ts *testServer, passcode, uuid string) (*http.Response, string) {
	t.Helper()
	var tok tokenAnswer
	resp := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{
		"method": "passcode", "passcode": passcode, "device": map[string]any{"uuid": devUUID(uuid)}}, &tok)
	return resp, tok.Token
}

// devUUID turns a test's device label into a stable SMBIOS-style UUID: the
// server accepts only real UUIDs at login. A UUID is returned normalised.
func devUUID(label string) string {
	if u, err := deploy.ParseUUID(label); err == nil {
		return u
	}
	h := sha256.Sum256([]byte(label))
	u, _ := deploy.ParseUUID(hex.EncodeToString(h[:16]))
	return u
}

func TestNothingConfiguredTellsTheAdminWhatToDo(t *testing.T) {
	ts := startAuthServer(t)
	var m struct {
		Methods []string `json:"methods"`
		Hint    string   `json:"hint"`
	}
	ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
	if len(m.Methods) != 0 || !strings.Contains(m.Hint, "imprint passcode set") {
		t.Fatalf("methods = %+v", m)
	}
	resp := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "anonymous"}, nil)
	wantError(t, resp, 401, "unauthorized", "authentication failed")
}

func TestPasscodeLoginSessionsAndEqualRefusals(t *testing.T) {
	ts := startAuthServer(t)
	const code = "Correct-Horse-Battery-42"
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "password"}, nil); resp.StatusCode != 400 {
		t.Fatalf("weak passcode accepted: %d", resp.StatusCode)
	}
	// Mode off, wrong, malformed: same status and body.
	off, _ := login(t, ts, code, "u1")
	offBody, _ := io.ReadAll(off.Body)
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": code}, nil); resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("set passcode: %d %s", resp.StatusCode, b)
	}
	wrong, _ := login(t, ts, "Wrong-Horse-Battery-42", "u1")
	wrongBody, _ := io.ReadAll(wrong.Body)
	req, _ := http.NewRequest("POST", ts.apiURL("/v1/auth/token"), strings.NewReader(`{"method":"passcode","passcode":`))
	mal, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	malBody, _ := io.ReadAll(mal.Body)
	mal.Body.Close()
	for name, got := range map[string][]byte{"wrong": wrongBody, "malformed": malBody} {
		if !bytes.Equal(got, offBody) {
			t.Errorf("%s answer %q differs from mode-off answer %q", name, got, offBody)
		}
	}
	if off.StatusCode != 401 || wrong.StatusCode != 401 || mal.StatusCode != 401 {
		t.Fatalf("statuses: off %d wrong %d malformed %d", off.StatusCode, wrong.StatusCode, mal.StatusCode)
	}

	// No token, bad token: 401.
	wantError(t, ts.machine(t, "GET", "/v1/tasksequences", "", nil, nil), 401, "unauthorized", "bearer token")
	wantError(t, ts.machine(t, "GET", "/v1/tasksequences", "nope", nil, nil), 401, "unauthorized", "")

	resp, tok := login(t, ts, code, "u1")
	if resp.StatusCode != 200 || len(tok) < 43 {
		t.Fatalf("login: %d token %q", resp.StatusCode, tok)
	}
	if resp := ts.machine(t, "GET", "/v1/tasksequences", tok, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("list with token: %d", resp.StatusCode)
	}

	// Rotation with grace keeps the old sessions; grace 0 kills them.
	var rot struct {
		Generation int `json:"generation"`
		Revoked    int `json:"sessionsRevoked"`
	}
	ts.adminJSON(t, "POST", "/admin/v1/passcode/rotate", map[string]string{"passcode": "Second-Horse-Battery-43", "grace": "1h"}, &rot)
	if rot.Revoked != 0 {
		t.Fatalf("rotate with grace revoked %d sessions", rot.Revoked)
	}
	if r, _ := login(t, ts, code, "u2"); r.StatusCode != 200 {
		t.Fatalf("old passcode refused during grace: %d", r.StatusCode)
	}
	ts.adminJSON(t, "POST", "/admin/v1/passcode/rotate", map[string]string{"passcode": "Third-Horse-Battery-44", "grace": "0"}, &rot)
	if rot.Revoked < 1 {
		t.Fatalf("rotate --grace 0 revoked %d sessions, want the old ones", rot.Revoked)
	}
	wantError(t, ts.machine(t, "GET", "/v1/tasksequences", tok, nil, nil), 401, "unauthorized", "")

	// Audit has attempts, the passcode changes, and verifies.
	var events []deploy.AuditEvent
	ts.do(t, "GET", "/admin/v1/audit", nil, &events)
	actions := map[string]int{}
	for _, e := range events {
		actions[e.Action+"/"+e.Outcome]++
	}
	if actions["auth.attempt/failure"] < 2 || actions["auth.attempt/success"] < 2 || actions["passcode.rotate/success"] != 2 {
		t.Errorf("audit actions = %v", actions)
	}
	if resp := ts.do(t, "GET", "/admin/v1/audit/verify", nil, nil); resp.StatusCode != 200 {
		t.Errorf("audit verify: %d", resp.StatusCode)
	}
}

func TestCanaryPasscodeNowhereOnDisk(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, dir, func(c *server.Config) { c.PasscodeArgon2 = testArgon2 })
	const canary = "Canary-Zebra-Quartz-9137"
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": canary}, nil); resp.StatusCode != 200 {
		t.Fatalf("set: %d", resp.StatusCode)
	}
	login(t, ts, canary, "u1")
	login(t, ts, canary+"x", "u1")
	ts.stop()
	found := ""
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(canary)) {
				found = p
			}
		}
		return nil
	})
	if found != "" {
		t.Fatalf("the passcode is stored in plain text in %s", found)
	}
}

// Refusals are counted, not audited one by one: see
// TestThrottleRefusalsWriteNothingPerRequest.
func TestThrottleAnswers429WithRetryAfter(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	var last *http.Response
	for i := 0; i < 8; i++ {
		last, _ = login(t, ts, "Wrong-Horse-Battery-42", "dev-x")
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("after 8 failures: %d Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
	}
	wantError(t, last, 429, "throttled", "too many failed attempts")
}

func TestAnonymousOptInStripsSecrets(t *testing.T) {
	ts := startAuthServer(t)
	if r := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "anonymous"}, nil); r.StatusCode != 401 {
		t.Fatalf("anonymous while off: %d", r.StatusCode)
	}
	ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]bool{"on": true}, nil)
	var tok tokenAnswer
	if r := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "anonymous", "device": map[string]any{"uuid": devUUID("a1")}}, &tok); r.StatusCode != 200 {
		t.Fatalf("anonymous while on: %d", r.StatusCode)
	}
	var m struct{ Methods []string }
	ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
	if len(m.Methods) == 0 || m.Methods[0] != "anonymous" {
		t.Fatalf("methods = %v", m.Methods)
	}

	// A Password option's value never reaches an anonymous session: not
	// at the top, not two groups deep, not stored under a step that is
	// not a group (nothing runs it, but the document is sent whole).
	const id = "31111111-2222-3333-4444-555555555555"
	admin := func(id, secret, members string) string {
		return `{"id":"` + id + `","name":"Enable admin","isGroup":false,"typeId":"00000001-0000-0000-0000-000000000108","settings":{"AdminPassword":"` + secret +
			`"},"contentItems":{},"enabled":true,"continueOnError":false,"condition":null,"groupMembers":[` + members + `]}`
	}
	group := func(id, members string) string {
		return `{"id":"` + id + `","name":"G","isGroup":true,"enabled":true,"groupMembers":[` + members + `]}`
	}
	doc := `{"id":"` + id + `","name":"Admin","architecture":"Any","versions":[{"id":"v","taskSequenceId":"` + id + `","versionNo":1,"status":"Active","steps":[` +
		admin("s1", "Sup3r-Secret-Value", "") + `,` + group("g1", group("g2", admin("s2", "Nested-Secret-Value", ""))) + `,` +
		admin("s3", "Holder-Secret-Value", admin("s4", "Hidden-Secret-Value", "")) + `]}]}`
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	resp := ts.machine(t, "GET", "/v1/tasksequences/"+id+"/versions/1", tok.Token, nil, nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Count(string(b), "AdminPassword") != 4 {
		t.Fatalf("anonymous session got %d %s", resp.StatusCode, b)
	}
	for _, secret := range []string{"Sup3r", "Nested", "Holder", "Hidden"} {
		if strings.Contains(string(b), secret+"-Secret-Value") {
			t.Errorf("anonymous session got the %s secret: %s", secret, b)
		}
	}
}

// A run: the session sees only content its sequence references, reports
// events, and the run record follows them.
func TestMachineContentScopeAndRunReporting(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	app := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	other := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	upload(t, ts, app.ID, strings.NewReader("app bytes"), `{"installationCommandLine":"true"}`)
	upload(t, ts, other.ID, strings.NewReader("secret image"), "")
	// The scope reaches into groups: deep is referenced two groups down.
	deep := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	upload(t, ts, deep.ID, strings.NewReader("deep bytes"), `{"installationCommandLine":"true"}`)

	doc := fmt.Sprintf(`{"id":"11111111-2222-3333-4444-555555555555","name":"Apps","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"11111111-2222-3333-4444-555555555555","versionNo":1,"status":"Active","steps":[
	 {"id":"s1","name":"Install app","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000b","settings":{},"contentItems":{"Application":"%s:1"},"enabled":true,"continueOnError":false,"condition":null},
	 {"id":"g1","name":"G1","isGroup":true,"enabled":true,"groupMembers":[{"id":"g2","name":"G2","isGroup":true,"enabled":true,"groupMembers":[
	  {"id":"s2","name":"Install deep","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000b","settings":{},"contentItems":{"Application":"%s:1"},"enabled":true,"continueOnError":false,"condition":null}]}]}]}]}`, app.ID, deep.ID)
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-1")

	var list []struct{ ID string }
	ts.machine(t, "GET", "/v1/tasksequences", tok, nil, &list)
	if len(list) != 1 {
		t.Fatalf("list = %+v", list)
	}
	// Before the session is bound, no content at all.
	wantError(t, ts.machine(t, "GET", "/v1/content/"+app.ID+"/1/data", tok, nil, nil), 404, "not_found", "")
	ts.machine(t, "GET", "/v1/tasksequences/11111111-2222-3333-4444-555555555555/versions/1", tok, nil, nil)
	r := ts.machine(t, "GET", "/v1/content/"+app.ID+"/1/data", tok, nil, nil)
	if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != "app bytes" {
		t.Fatalf("referenced content: %d %q", r.StatusCode, b)
	}
	r = ts.machine(t, "GET", "/v1/content/"+deep.ID+"/1/data", tok, nil, nil)
	if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != "deep bytes" {
		t.Fatalf("content referenced two groups down: %d %q", r.StatusCode, b)
	}
	outside := ts.machine(t, "GET", "/v1/content/"+other.ID+"/1/data", tok, nil, nil)
	unknown := ts.machine(t, "GET", "/v1/content/99999999-0000-0000-0000-000000000000/1/data", tok, nil, nil)
	ob, _ := io.ReadAll(outside.Body)
	ub, _ := io.ReadAll(unknown.Body)
	if outside.StatusCode != 404 || unknown.StatusCode != 404 || len(ob) == 0 ||
		strings.Contains(string(ob), "secret") || strings.Replace(string(ob), other.ID, "X", 1) != strings.Replace(string(ub), "99999999-0000-0000-0000-000000000000", "X", 1) {
		t.Fatalf("out-of-scope answer %d %s differs from unknown %d %s", outside.StatusCode, ob, unknown.StatusCode, ub)
	}

	var run deploy.Run
	if resp := ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": "11111111-2222-3333-4444-555555555555", "versionNo": 1}, &run); resp.StatusCode != 201 {
		t.Fatalf("create run: %d", resp.StatusCode)
	}
	zero := 0
	events := []map[string]any{
		{"type": "step-start", "stepId": "s1", "path": "Install app", "name": "Install app"},
		{"type": "step-end", "stepId": "s1", "path": "Install app", "outcome": "succeeded", "exitCode": zero, "durationSeconds": 1.5},
		{"type": "run-end", "state": "succeeded"},
	}
	if resp := ts.machine(t, "POST", "/v1/runs/"+run.ID+"/events", tok, events, nil); resp.StatusCode != 204 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	var got deploy.Run
	ts.do(t, "GET", "/admin/v1/runs/"+run.ID, nil, &got)
	if got.State != deploy.RunSucceeded || len(got.Steps) != 1 || got.Steps[0].Outcome != deploy.StepSucceeded || got.DeviceID != devUUID("dev-1") {
		t.Fatalf("run record = %+v", got)
	}
}

func TestServerSideScript(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, dir, func(c *server.Config) { c.PasscodeArgon2 = testArgon2 })
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "hello.sh"), []byte("#!/bin/sh\necho GREETING=hello-$IMPRINT_VAR_COMPUTERNAME\necho _HIDDEN=x\n"), 0o755)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(`{"id":"21111111-2222-3333-4444-555555555555","name":"S","architecture":"Any","versions":[{"id":"v","taskSequenceId":"21111111-2222-3333-4444-555555555555","versionNo":1,"status":"Active","steps":[`+scriptStep("s1", "hello.sh")+`,`+scriptStep("s2", "missing.sh")+`]}]}`), nil)
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-2")
	var run deploy.Run
	ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": "21111111-2222-3333-4444-555555555555", "versionNo": 1}, &run)
	var res struct {
		Variables map[string]string `json:"variables"`
	}
	resp := ts.machine(t, "POST", "/v1/runs/"+run.ID+"/server-script", tok, map[string]any{"scriptName": "hello.sh", "variables": map[string]string{"ComputerName": "pc1"}}, &res)
	if resp.StatusCode != 200 || res.Variables["GREETING"] != "hello-pc1" || res.Variables["_HIDDEN"] != "" {
		t.Fatalf("script: %d %+v", resp.StatusCode, res)
	}
	wantError(t, ts.machine(t, "POST", "/v1/runs/"+run.ID+"/server-script", tok, map[string]any{"scriptName": "../../etc/passwd"}, nil), 400, "invalid", "plain file name")
	wantError(t, ts.machine(t, "POST", "/v1/runs/"+run.ID+"/server-script", tok, map[string]any{"scriptName": "missing.sh"}, nil), 404, "not_found", "missing.sh")
}

func TestCaptureOnlyIntoTheTargetOfACaptureStep(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	target := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	other := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	const id = "41111111-2222-3333-4444-555555555555"
	// The capture step sits in a group, as in the capture template.
	doc := `{"id":"` + id + `","name":"Capture","architecture":"Any","versions":[{"id":"v","taskSequenceId":"` + id + `","versionNo":1,"status":"Active","steps":[
	 {"id":"g1","name":"Capture the disk","isGroup":true,"enabled":true,"groupMembers":[
	 {"id":"s1","name":"Capture","isGroup":false,"typeId":"00000001-0000-0000-0000-000000000106","settings":{"TargetContentItem":"` + target.ID + `"},"contentItems":{},"enabled":true,"continueOnError":false,"condition":null}]}]}]}`
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-c")
	ts.machine(t, "GET", "/v1/tasksequences/"+id+"/versions/1", tok, nil, nil)
	post := func(item string) *http.Response {
		req, _ := http.NewRequest("POST", ts.apiURL("/v1/content/"+item+"/versions"), strings.NewReader("captured disk bytes"))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := ts.api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post(target.ID); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("capture into target: %d %s", resp.StatusCode, b)
	}
	wantError(t, post(other.ID), 404, "not_found", "")
	var got deploy.ContentItem
	ts.do(t, "GET", "/admin/v1/content/"+target.ID, nil, &got)
	if len(got.Versions) != 1 || got.Versions[0].Status != deploy.StatusInDevelopment || got.Versions[0].ContentSize != int64(len("captured disk bytes")) {
		t.Fatalf("captured version = %+v", got.Versions)
	}
}

func TestRunEndClosesOpenGroups(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	const id = "51111111-2222-3333-4444-555555555555"
	ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(`{"id":"`+id+`","name":"G","architecture":"Any","versions":[{"id":"v","taskSequenceId":"`+id+`","versionNo":1,"status":"Active","steps":[]}]}`), nil)
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-g")
	var run deploy.Run
	ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": id, "versionNo": 1}, &run)
	events := []map[string]any{
		{"type": "step-start", "stepId": "g", "path": "Linux", "name": "Linux"},
		{"type": "step-start", "stepId": "r", "path": "Linux/Reboot", "name": "Reboot"},
		{"type": "step-end", "stepId": "r", "path": "Linux/Reboot", "outcome": "succeeded"},
		{"type": "run-end", "state": "succeeded"},
	}
	ts.machine(t, "POST", "/v1/runs/"+run.ID+"/events", tok, events, nil)
	var got deploy.Run
	ts.do(t, "GET", "/admin/v1/runs/"+run.ID, nil, &got)
	for _, s := range got.Steps {
		if s.Outcome != deploy.StepSucceeded {
			t.Errorf("step %s = %s after the run succeeded", s.Path, s.Outcome)
		}
	}
}

// loginFrom posts a wrong passcode with an X-Forwarded-For header.
func loginFrom(t *testing.T, ts *testServer, xff string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.apiURL("/v1/auth/token"),
		strings.NewReader(`{"method":"passcode","passcode":"Wrong-Horse-Battery-42"}`))
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// X-Forwarded-For decides the throttled source only when the direct peer
// is a configured proxy; otherwise a client cannot escape the throttle by
// inventing addresses.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Run("untrusted peer", func(t *testing.T) {
		ts := startAuthServer(t)
		ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
		last := 0
		for i := 0; i < 8; i++ {
			last = loginFrom(t, ts, fmt.Sprintf("203.0.113.%d", i+1))
		}
		if last != http.StatusTooManyRequests {
			t.Fatalf("8 failures with invented forwarded addresses: last status %d, want 429", last)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
			c.PasscodeArgon2 = testArgon2
			c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
		})
		ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
		last := 0
		for i := 0; i < 8; i++ {
			last = loginFrom(t, ts, "203.0.113.7")
		}
		if last != http.StatusTooManyRequests {
			t.Fatalf("8 failures from one forwarded client: last status %d, want 429", last)
		}
		if got := loginFrom(t, ts, "203.0.113.8"); got != http.StatusUnauthorized {
			t.Fatalf("another client behind the same proxy: %d, want 401 (not throttled)", got)
		}
	})
}

// A burst of failures across many sources writes an alert to the audit
// log (the throttle's global threshold, 50 a minute by default).
func TestFailureBurstRaisesAuditAlert(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	})
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	for i := 0; i < 60; i++ {
		if got := loginFrom(t, ts, fmt.Sprintf("198.51.100.%d", i+1)); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i, got)
		}
	}
	var events []deploy.AuditEvent
	ts.do(t, "GET", "/admin/v1/audit", nil, &events)
	for _, e := range events {
		if e.Action == "auth.alert" && e.Outcome == auth.OutcomeAlert {
			return
		}
	}
	t.Fatalf("no auth.alert in the audit log after 60 failures from 60 sources")
}

// GN-6, PC-5: a device identity that is not one (escape sequences for the
// admin's terminal, a line break for the log, a bidi override, an
// oversized model) is refused with the very answer of a wrong passcode, even
// with the right passcode, and leaves no trace of its bytes in the audit
// log. A real identity in another spelling is accepted and normalised.
func TestLoginRefusesMalformedDeviceIdentity(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	})
	const code = "Correct-Horse-Battery-42"
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": code}, nil)
	// Each attempt from its own address, so the throttle stays out of it.
	n := 0
	try := func(dev map[string]any, pass string) (int, []byte) {
		n++
		b, _ := json.Marshal(map[string]any{"method": "passcode", "passcode": pass, "device": dev})
		req, _ := http.NewRequest("POST", ts.apiURL("/v1/auth/token"), bytes.NewReader(b))
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", n))
		resp, err := ts.api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	_, wrongBody := try(map[string]any{"uuid": devUUID("w")}, "Wrong-Horse-Battery-42")
	const esc = "\x1b]0;pwned\x07\x1b[2J"
	for name, dev := range map[string]map[string]any{
		"ESC in uuid":      {"uuid": "4c4c4544-0000-1000-8000-000000000001" + esc},
		"uuid not a uuid":  {"uuid": "not-a-uuid"},
		"newline in model": {"uuid": devUUID("m"), "model": "X1\n{\"event\":\"authn_login_success\"}"},
		"bidi in serial":   {"uuid": devUUID("s"), "serialNumber": "ABC\u202eFED"},
		"C1 CSI in make":   {"uuid": devUUID("k"), "make": "Dell\u009b2J"},
		"oversized model":  {"uuid": devUUID("o"), "model": strings.Repeat("m", deploy.MaxDeviceText+1)},
		"bad MAC":          {"macs": []string{"52:54:00:12:34:56" + esc}},
	} {
		if status, body := try(dev, code); status != 401 || !bytes.Equal(body, wrongBody) {
			t.Errorf("%s: %d %s, want the wrong-passcode answer 401 %s", name, status, body, wrongBody)
		}
	}
	if status, body := try(map[string]any{"uuid": "{4C4C4544-0042-3010-8052-B4C04F4E4432}", "macs": []string{"52-54-00-AB-CD-EF"},
		"model": "Latitude 7440 — ünïcode"}, code); status != 200 {
		t.Fatalf("login with a braced upper-case UUID: %d %s", status, body)
	}
	var sessions []deploy.Session
	ts.adminJSON(t, "GET", "/admin/v1/sessions", nil, &sessions)
	if len(sessions) != 1 || sessions[0].DeviceID != "4c4c4544-0042-3010-8052-b4c04f4e4432" {
		t.Errorf("sessions = %+v, want one for the normalised UUID", sessions)
	}
	resp := ts.adminJSON(t, "GET", "/admin/v1/audit", nil, nil)
	raw, _ := io.ReadAll(resp.Body)
	for _, bad := range []string{"pwned", "authn_login_success", "not-a-uuid"} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("audit log holds %q from a refused identity", bad)
		}
	}
}

// PC-8: an oversized login body is refused with 413 before any JSON or
// Argon2 work; a large header block is refused too.
func TestLoginInputLimits(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	huge := `{"method":"passcode","passcode":"` + strings.Repeat("x", 1<<20) + `"}`
	resp, err := ts.api.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(huge))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "too_large") {
		t.Errorf("1 MiB login body: %d %s, want 413", resp.StatusCode, b)
	}
	// A passcode login with a long but sane device record still works.
	var tok tokenAnswer
	if resp := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "passcode", "passcode": "Correct-Horse-Battery-42",
		"device": map[string]any{"uuid": devUUID("long"), "model": strings.Repeat("d", deploy.MaxDeviceText)}}, &tok); resp.StatusCode != 200 || tok.Token == "" {
		t.Errorf("normal login: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", ts.apiURL("/v1/auth/methods"), nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 200<<10))
	resp, err = ts.api.Do(req)
	if err != nil {
		t.Fatalf("200 KiB of headers: %v, want a 431 answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("200 KiB of headers: %d, want 431", resp.StatusCode)
	}
}

// PC-6/PC-7: failures of every method count, not just wrong passcodes, so
// bogus requests cannot keep Argon2 busy or probe without limit.
func TestEveryFailedMethodIsThrottled(t *testing.T) {
	for _, body := range []string{`{"method":"anonymous"}`, `{"method":"no-such-method"}`, `not json`} {
		t.Run(body, func(t *testing.T) {
			ts := startAuthServer(t)
			var codes []int
			for len(codes) < 40 && (len(codes) == 0 || codes[len(codes)-1] != 429) {
				resp, err := ts.api.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				codes = append(codes, resp.StatusCode)
			}
			// Five free failures, then the backoff answers 429.
			if fmt.Sprint(codes[:5]) != "[401 401 401 401 401]" || codes[len(codes)-1] != 429 {
				t.Errorf("answers %v, want five 401 and then 429", codes)
			}
		})
	}
}

// Many machines behind one address (a NAT) log in at the same moment with
// a method that cannot be guessed: none is turned away by the throttle.
func TestParallelLoginsFromOneAddress(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]bool{"on": true}, nil)
	const n = 24
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"method":"anonymous","device":{"uuid":"4c4c4544-0000-1000-8000-%012d"}}`, i)
			resp, err := ts.api.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a parallel login got %d, want 200", c)
		}
	}
}

// TK-5: a session token is taken from the Authorization header only; in
// the query string (where logs and proxies keep it) it does not count.
func TestTokenOnlyFromTheAuthorizationHeader(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-q")
	for _, q := range []string{"access_token", "token", "bearer"} {
		resp, err := ts.api.Get(ts.apiURL("/v1/tasksequences?" + q + "=" + tok))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("token in ?%s=: %d, want 401", q, resp.StatusCode)
		}
	}
	if resp := ts.machine(t, "GET", "/v1/tasksequences", tok, nil, nil); resp.StatusCode != 200 {
		t.Errorf("token in the header: %d", resp.StatusCode)
	}
}

// GN-1: anonymous limited to networks is accepted and offered only there.
func TestAnonymousLimitedToNetworks(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]any{"on": true, "from": []string{"not-a-net"}}, nil); resp.StatusCode != 400 {
		t.Errorf("bad network: %d, want 400", resp.StatusCode)
	}
	ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]any{"on": true, "from": []string{"10.20.0.0/16", "2001:db8::/48"}}, nil)
	from := func(method, path, src string, body string) (int, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, ts.apiURL(path), rd)
		req.Header.Set("X-Forwarded-For", src)
		resp, err := ts.api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		src  string
		want int
	}{{"10.20.3.4", 200}, {"2001:db8::7", 200}, {"10.21.0.1", 401}, {"198.51.100.1", 401}} {
		code, _ := from("POST", "/v1/auth/token", c.src, `{"method":"anonymous"}`)
		_, methods := from("GET", "/v1/auth/methods", c.src, "")
		if code != c.want || strings.Contains(methods, "anonymous") != (c.want == 200) {
			t.Errorf("from %s: login %d (want %d), methods %s", c.src, code, c.want, methods)
		}
	}
}

// A session without a device names it when it starts a run: the same
// checks as at login apply there.
func TestRunDeviceIdentityIsValidated(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]bool{"on": true}, nil)
	const id = "41111111-2222-3333-4444-555555555555"
	ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(`{"id":"`+id+`","name":"S","architecture":"Any","versions":[{"id":"v","taskSequenceId":"`+id+`","versionNo":1,"status":"Active","steps":[]}]}`), nil)
	var tok tokenAnswer
	if r := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "anonymous"}, &tok); r.StatusCode != 200 {
		t.Fatalf("anonymous login: %d", r.StatusCode)
	}
	bad := ts.machine(t, "POST", "/v1/runs", tok.Token, map[string]any{"taskSequenceId": id, "versionNo": 1,
		"device": map[string]any{"uuid": "4c4c4544-0000-1000-8000-000000000001\x1b[2J"}}, nil)
	wantError(t, bad, 400, "invalid", "device identity is malformed")
	var run deploy.Run
	if r := ts.machine(t, "POST", "/v1/runs", tok.Token, map[string]any{"taskSequenceId": id, "versionNo": 1,
		"device": map[string]any{"uuid": "{4C4C4544-0000-1000-8000-000000000001}"}}, &run); r.StatusCode != 201 {
		t.Fatalf("run with a good device: %d", r.StatusCode)
	}
	if run.DeviceID != "4c4c4544-0000-1000-8000-000000000001" {
		t.Errorf("run device = %q, want the normalised UUID", run.DeviceID)
	}
}
