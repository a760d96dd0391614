package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const (
	tsA = "a1111111-2222-3333-4444-555555555555"
	tsB = "b1111111-2222-3333-4444-555555555555"
	tsU = "c9999999-2222-3333-4444-555555555555" // never imported
)

// importTS imports a sequence with the given version statuses (v1, v2, …)
// and no steps.
func importTS(t *testing.T, ts *testServer, id, name string, statuses ...string) {
	t.Helper()
	var vs []string
	for i, st := range statuses {
		vs = append(vs, `{"id":"v`+string(rune('1'+i))+`","taskSequenceId":"`+id+`","versionNo":`+string(rune('1'+i))+`,"status":"`+st+`","steps":[]}`)
	}
	doc := `{"id":"` + id + `","name":"` + name + `","architecture":"Any","versions":[` + strings.Join(vs, ",") + `]}`
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import %s: %d %s", name, resp.StatusCode, b)
	}
}

// body reads an answer and replaces id by X, to compare answers about
// different ids.
func body(t *testing.T, resp *http.Response, id string) (int, string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.ReplaceAll(string(b), id, "X")
}

// A session sees only its own sequence once bound; everything else it
// asks for answers exactly like a sequence that does not exist (TK-2).
func TestSessionSeesOnlyItsTaskSequence(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	importTS(t, ts, tsA, "A", "Active", "In_Development")
	importTS(t, ts, tsB, "B", "Active")
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-scope")

	get := func(id, no string) *http.Response {
		return ts.machine(t, "GET", "/v1/tasksequences/"+id+"/versions/"+no, tok, nil, nil)
	}
	wantUnknown := func(what string, resp *http.Response, id, no string) {
		t.Helper()
		code, got := body(t, resp, id)
		ucode, unknown := body(t, get(tsU, no), tsU)
		if code != 404 || code != ucode || got != unknown {
			t.Errorf("%s: %d %s; want the unknown sequence's %d %s", what, code, got, ucode, unknown)
		}
	}
	// A version that is not Active is not runnable, even by id.
	wantUnknown("In_Development version", get(tsA, "2"), tsA, "2")

	var list []struct{ ID string }
	ts.machine(t, "GET", "/v1/tasksequences", tok, nil, &list)
	if len(list) != 2 {
		t.Fatalf("unbound list = %+v, want A and B", list)
	}
	if resp := get(tsA, "1"); resp.StatusCode != 200 {
		t.Fatalf("A v1: %d", resp.StatusCode)
	}
	// Bound to A now.
	list = nil
	ts.machine(t, "GET", "/v1/tasksequences", tok, nil, &list)
	if len(list) != 1 || list[0].ID != tsA {
		t.Errorf("bound list = %+v, want only A", list)
	}
	wantUnknown("B after binding to A", get(tsB, "1"), tsB, "1")
	run := func(id string) *http.Response {
		return ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": id, "versionNo": 1}, nil)
	}
	rcode, rb := body(t, run(tsB), tsB)
	ucode, ub := body(t, run(tsU), tsU)
	if rcode != 404 || rcode != ucode || rb != ub {
		t.Errorf("run of B: %d %s; want the unknown sequence's %d %s", rcode, rb, ucode, ub)
	}
}

// A finished run ends its session: shortened at run-end, revoked when
// the logs arrive (TK-4).
func TestFinishedRunRevokesItsSession(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	importTS(t, ts, tsA, "A", "Active")
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-end")
	var run deploy.Run
	if resp := ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": tsA, "versionNo": 1}, &run); resp.StatusCode != 201 {
		t.Fatalf("create run: %d", resp.StatusCode)
	}
	expiry := func() deploy.Session {
		t.Helper()
		var ss []deploy.Session
		ts.adminJSON(t, "GET", "/admin/v1/sessions", nil, &ss)
		for _, s := range ss {
			if s.ID == run.SessionID {
				return s
			}
		}
		return deploy.Session{}
	}
	before := expiry()
	if resp := ts.machine(t, "POST", "/v1/runs/"+run.ID+"/events", tok, []map[string]any{{"type": "run-end", "state": "succeeded"}}, nil); resp.StatusCode != 204 {
		t.Fatalf("run-end: %d", resp.StatusCode)
	}
	after := expiry()
	if after.ID == "" || !after.ExpiresAt.Before(before.ExpiresAt) || after.ExpiresAt.Sub(after.LastUsedAt) > 6*60*1e9 {
		t.Errorf("after run-end the session expires at %v (was %v), want within minutes", after.ExpiresAt, before.ExpiresAt)
	}
	// The logs still go up, and then the token is dead.
	req, _ := http.NewRequest("POST", ts.apiURL("/v1/runs/"+run.ID+"/logs"), strings.NewReader("log bundle"))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("logs: %d", resp.StatusCode)
	}
	if resp := ts.machine(t, "GET", "/v1/tasksequences", tok, nil, nil); resp.StatusCode != 401 {
		t.Errorf("token after the run finished: %d, want 401", resp.StatusCode)
	}
	// The audit log has the run's start and end (AU-1) and the revocation.
	var events []deploy.AuditEvent
	ts.adminJSON(t, "GET", "/admin/v1/audit", nil, &events)
	got := map[string]string{}
	for _, e := range events {
		if e.Details["run"] == run.ID || e.Action == "session.revoke" {
			got[e.Action] = e.Outcome + " " + e.DeviceID + " " + e.Details["state"] + e.Details["reason"]
		}
	}
	want := map[string]string{
		"run.start":      "success " + devUUID("dev-end") + " ",
		"run.end":        "success " + devUUID("dev-end") + " succeeded",
		"session.revoke": "success " + devUUID("dev-end") + " run succeeded",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("audit of the run (-want +got):\n%s", d)
	}
}

// The audit log records the server starting and stopping (AU-1).
func TestAuditRecordsStartAndStop(t *testing.T) {
	dir := t.TempDir()
	startServerWith(t, dir, nil).stop()
	ts := startServerWith(t, dir, nil)
	var events []deploy.AuditEvent
	ts.adminJSON(t, "GET", "/admin/v1/audit", nil, &events)
	var got []string
	for _, e := range events {
		if strings.HasPrefix(e.Action, "sys.") {
			got = append(got, e.Action)
		}
	}
	if d := cmp.Diff([]string{"sys.startup", "sys.shutdown", "sys.startup"}, got); d != "" {
		t.Errorf("system events (-want +got):\n%s", d)
	}
}

func TestRevokeSessionsOfADeviceOrAll(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	_, lost1 := login(t, ts, "Correct-Horse-Battery-42", "4C4C4544-0031-3010-8052-B4C04F4A3232")
	_, lost2 := login(t, ts, "Correct-Horse-Battery-42", "4c4c4544-0031-3010-8052-b4c04f4a3232")
	_, kept := login(t, ts, "Correct-Horse-Battery-42", "4c4c4544-0031-3010-8052-000000000001")
	live := func(tok string) bool {
		return ts.machine(t, "GET", "/v1/tasksequences", tok, nil, nil).StatusCode == 200
	}

	var n struct {
		N int `json:"sessionsRevoked"`
	}
	if resp := ts.adminJSON(t, "DELETE", "/admin/v1/sessions?device=4C4C4544-0031-3010-8052-B4C04F4A3232", nil, &n); resp.StatusCode != 200 || n.N != 2 {
		t.Fatalf("revoke device: %d, %d revoked; want 2", resp.StatusCode, n.N)
	}
	if live(lost1) || live(lost2) || !live(kept) {
		t.Errorf("after revoking the device: lost %v %v, kept %v; want false false true", live(lost1), live(lost2), live(kept))
	}
	if resp := ts.adminJSON(t, "DELETE", "/admin/v1/sessions", nil, nil); resp.StatusCode != 400 {
		t.Errorf("revoke without a scope: %d, want 400", resp.StatusCode)
	}
	if resp := ts.adminJSON(t, "DELETE", "/admin/v1/sessions?all=1", nil, &n); resp.StatusCode != 200 || n.N != 1 || live(kept) {
		t.Errorf("revoke all: %d, %d revoked, kept live %v", resp.StatusCode, n.N, live(kept))
	}
}
