package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// quotaServer starts a server with quotas q, a passcode and the Active
// sequence scriptTS, and returns a session's token and a run of it.
func quotaServer(t *testing.T, q server.Quotas) (ts *testServer, tok, runID string) {
	t.Helper()
	ts = scriptServer(t, q, nil)
	tok, runID = startRun(t, ts, "dev-quota")
	return ts, tok, runID
}

func logEvents(n, msgLen int) []map[string]any {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"type": "log", "message": strings.Repeat("m", msgLen)}
	}
	return evs
}

func storedEvents(t *testing.T, ts *testServer, runID string) int {
	t.Helper()
	var evs []deploy.RunEvent
	ts.adminJSON(t, "GET", "/admin/v1/runs/"+runID+"/events", nil, &evs)
	return len(evs)
}

// errorFields are the fields of a JSON error answer.
func errorFields(t *testing.T, resp *http.Response) []string {
	t.Helper()
	var e struct {
		Error struct {
			Fields []deploy.FieldError `json:"fields"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	json.Unmarshal(b, &e)
	var out []string
	for _, f := range e.Error.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestEventQuotas(t *testing.T) {
	ts, tok, runID := quotaServer(t, server.Quotas{EventBytes: 1024, EventsPerRequest: 10, EventsPerSession: 25})
	post := func(evs any) *http.Response {
		return ts.machine(t, "POST", "/v1/runs/"+runID+"/events", tok, evs, nil)
	}

	// One event over the size: 413 naming it, and nothing of the request
	// is stored.
	big := logEvents(3, 10)
	big[1]["message"] = strings.Repeat("x", 2000)
	resp := post(big)
	if f := errorFields(t, resp); len(f) != 1 || f[0] != "events[1]" {
		t.Errorf("fields of the oversized-event answer = %v, want [events[1]]", f)
	}
	wantError(t, resp, 413, "too_large", "events[1] is ")
	// More events than one request may carry: 413.
	resp = post(logEvents(11, 10))
	if f := errorFields(t, resp); len(f) != 1 || f[0] != "events" {
		t.Errorf("fields of the too-many answer = %v, want [events]", f)
	}
	wantError(t, resp, 413, "too_large", "at most 10")
	if n := storedEvents(t, ts, runID); n != 0 {
		t.Fatalf("refused requests stored %d events", n)
	}
	// Within the limits: taken.
	for range 2 {
		if resp := post(logEvents(10, 900)); resp.StatusCode != 204 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("10 events of 900 bytes: %d %s", resp.StatusCode, b)
		}
	}
	// The session's 25 events: 5 more fit, 10 more do not.
	wantError(t, post(logEvents(10, 10)), 429, "throttled", "25")
	if resp := post(logEvents(5, 10)); resp.StatusCode != 204 {
		t.Fatalf("the last 5 events of the session: %d", resp.StatusCode)
	}
	wantError(t, post(logEvents(1, 10)), 429, "throttled", "25")
	if n := storedEvents(t, ts, runID); n != 25 {
		t.Fatalf("stored %d events, want 25", n)
	}
	// Not an array of events at all.
	wantError(t, post(map[string]any{"type": "log"}), 400, "invalid", "JSON array")
}

// The default quotas refuse the 15 MiB event and 100,000 events in
// one request.
func TestEventQuotaDefaults(t *testing.T) {
	ts, tok, runID := quotaServer(t, server.Quotas{})
	resp := ts.machine(t, "POST", "/v1/runs/"+runID+"/events", tok, []map[string]any{{"type": "log", "message": strings.Repeat("x", 15<<20)}}, nil)
	wantError(t, resp, 413, "too_large", "at most 64 KiB")
	resp = ts.machine(t, "POST", "/v1/runs/"+runID+"/events", tok, logEvents(100_000, 0), nil)
	wantError(t, resp, 413, "too_large", "at most 1000")
}

func uploadLogs(t *testing.T, ts *testServer, tok, runID string, body io.Reader) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.apiURL("/v1/runs/"+runID+"/logs"), body)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// unsized hides a reader's length, so the body is sent chunked.
type unsized struct{ io.Reader }

func TestLogBundleQuotas(t *testing.T) {
	ts, tok, runID := quotaServer(t, server.Quotas{LogBundleBytes: 1000, LogBundlesPerRun: 3, LogBytesPerRun: 2500})
	bundle := func(n int) *strings.Reader { return strings.NewReader(strings.Repeat("b", n)) }

	// Over one bundle's size, announced or not: 413.
	wantError(t, uploadLogs(t, ts, tok, runID, bundle(1001)), 413, "too_large", "at most 1000 bytes")
	wantError(t, uploadLogs(t, ts, tok, runID, unsized{bundle(1001)}), 413, "too_large", "at most 1000 bytes")
	for i := range 2 {
		if resp := uploadLogs(t, ts, tok, runID, bundle(900)); resp.StatusCode != 204 {
			t.Fatalf("bundle %d: %d", i+1, resp.StatusCode)
		}
	}
	// 700 bytes of the run's 2,500 are left.
	wantError(t, uploadLogs(t, ts, tok, runID, unsized{bundle(900)}), 413, "too_large", "700 bytes")
	if resp := uploadLogs(t, ts, tok, runID, bundle(600)); resp.StatusCode != 204 {
		t.Fatalf("third bundle: %d", resp.StatusCode)
	}
	// The run has its three bundles.
	wantError(t, uploadLogs(t, ts, tok, runID, bundle(10)), 429, "throttled", "3 log bundles")

	var names []string
	ts.adminJSON(t, "GET", "/admin/v1/runs/"+runID+"/logs", nil, &names)
	if len(names) != 3 {
		t.Errorf("stored bundles %v, want 3", names)
	}
	ents, _ := os.ReadDir(filepath.Join(ts.dir, "logs", runID))
	var size int64
	for _, e := range ents {
		fi, _ := e.Info()
		size += fi.Size()
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("refused upload left %s", e.Name())
		}
	}
	if size != 2400 {
		t.Errorf("stored %d bytes of logs, want 2400", size)
	}
}

func TestRunsPerSession(t *testing.T) {
	ts := scriptServer(t, server.Quotas{RunsPerSession: 2}, nil)
	_, tok := login(t, ts, scriptPass, "dev-runs")
	create := func(tok string) *http.Response {
		return ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": scriptTS, "versionNo": 1}, nil)
	}
	for i := range 2 {
		if resp := create(tok); resp.StatusCode != 201 {
			t.Fatalf("run %d: %d", i+1, resp.StatusCode)
		}
	}
	wantError(t, create(tok), 429, "throttled", "2 runs")
	var runs []deploy.Run
	ts.adminJSON(t, "GET", "/admin/v1/runs", nil, &runs)
	if len(runs) != 2 {
		t.Errorf("%d runs stored, want 2", len(runs))
	}
	// The quota is the session's: another session has its own.
	_, tok2 := login(t, ts, scriptPass, "dev-runs")
	if resp := create(tok2); resp.StatusCode != 201 {
		t.Errorf("run of a new session: %d", resp.StatusCode)
	}
}

// The bytes of events and of log bundles are bounded per session too,
// over all its runs.
func TestSessionByteQuotas(t *testing.T) {
	ts := scriptServer(t, server.Quotas{EventBytesPerSession: 5000, LogBytesPerSession: 1500}, nil)
	_, tok := login(t, ts, scriptPass, "dev-bytes")
	var runs [2]deploy.Run
	for i := range runs {
		if resp := ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": scriptTS, "versionNo": 1}, &runs[i]); resp.StatusCode != 201 {
			t.Fatalf("run %d: %d", i+1, resp.StatusCode)
		}
	}
	post := func(run string, evs any) *http.Response {
		return ts.machine(t, "POST", "/v1/runs/"+run+"/events", tok, evs, nil)
	}
	if resp := post(runs[0].ID, logEvents(4, 1000)); resp.StatusCode != 204 {
		t.Fatalf("4 KiB of events: %d", resp.StatusCode)
	}
	wantError(t, post(runs[1].ID, logEvents(1, 1000)), 429, "throttled", "of events")
	if resp := post(runs[1].ID, logEvents(1, 100)); resp.StatusCode != 204 {
		t.Fatalf("a small event within the session's bytes: %d", resp.StatusCode)
	}

	if resp := uploadLogs(t, ts, tok, runs[0].ID, strings.NewReader(strings.Repeat("b", 1000))); resp.StatusCode != 204 {
		t.Fatalf("first bundle: %d", resp.StatusCode)
	}
	wantError(t, uploadLogs(t, ts, tok, runs[1].ID, unsized{strings.NewReader(strings.Repeat("b", 600))}), 413, "too_large", "500 bytes")
	if resp := uploadLogs(t, ts, tok, runs[1].ID, strings.NewReader(strings.Repeat("b", 500))); resp.StatusCode != 204 {
		t.Fatalf("bundle within the session's bytes: %d", resp.StatusCode)
	}
}
