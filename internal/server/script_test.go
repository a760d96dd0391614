package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

const (
	scriptTS   = "51111111-2222-3333-4444-555555555555"
	scriptKid  = "52111111-2222-3333-4444-555555555555"
	scriptPass = "Correct-Horse-Battery-42"
)

// scriptStep is a Run server-side script step naming name.
func scriptStep(id, name string) string {
	return `{"id":"` + id + `","name":"Script ` + id + `","isGroup":false,"typeId":"` + stepdefs.TypeRunServerScript +
		`","settings":{"ScriptName":"` + name + `"},"contentItems":{},"enabled":true,"continueOnError":false,"condition":null}`
}

// importSteps imports an Active sequence id whose version 1 has steps.
func importSteps(t *testing.T, ts *testServer, id string, steps ...string) {
	t.Helper()
	doc := `{"id":"` + id + `","name":"S ` + id[:2] + `","architecture":"Any","versions":[{"id":"v","taskSequenceId":"` + id +
		`","versionNo":1,"status":"Active","steps":[` + strings.Join(steps, ",") + `]}]}`
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import %s: %d %s", id, resp.StatusCode, b)
	}
}

// scriptServer starts a server with the scripts (name → body), a passcode
// and an Active sequence scriptTS whose steps name the given scripts.
func scriptServer(t *testing.T, q server.Quotas, scripts map[string]string, steps ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := startServerWith(t, dir, func(c *server.Config) { c.PasscodeArgon2 = testArgon2; c.Quotas = q })
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "scripts", name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": scriptPass}, nil)
	importSteps(t, ts, scriptTS, steps...)
	return ts
}

// startRun logs in as device and creates a run of scriptTS.
func startRun(t *testing.T, ts *testServer, device string) (token, runID string) {
	t.Helper()
	_, tok := login(t, ts, scriptPass, device)
	var run deploy.Run
	if resp := ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": scriptTS, "versionNo": 1}, &run); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create run: %d %s", resp.StatusCode, b)
	}
	return tok, run.ID
}

// runScript posts a server-script request; it gives up after 20 s so that
// a script that should have been refused cannot hang the test.
func runScript(t *testing.T, ts *testServer, tok, runID, name string, vars map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return postScript(ctx, t, ts, tok, runID, name, vars)
}

func postScript(ctx context.Context, t *testing.T, ts *testServer, tok, runID, name string, vars map[string]string) (*http.Response, []byte) {
	b, _ := json.Marshal(map[string]any{"scriptName": name, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.apiURL("/v1/runs/"+runID+"/server-script"), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.api.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("server-script %s: %v", name, err)
		}
		return &http.Response{StatusCode: 0, Body: io.NopCloser(strings.NewReader(""))}, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, body
}

// A session runs only the scripts its sequence (or a child it runs) names;
// any other answers exactly like a script that does not exist.
func TestServerScriptOnlyIfTheSequenceNamesIt(t *testing.T) {
	hello := "#!/bin/sh\necho RAN=$(basename \"$0\")\n"
	ts := scriptServer(t, server.Quotas{},
		map[string]string{"allowed.sh": hello, "other.sh": hello, "child.sh": hello, "model-X1.sh": hello},
		scriptStep("s1", "allowed.sh"), scriptStep("s2", "model-%Model%.sh"), scriptStep("s3", "named-but-missing.sh"),
		`{"id":"s4","name":"Child","isGroup":false,"typeId":"`+deploy.TypeRunTaskSequence+`","settings":{"childTaskSequenceId":"`+scriptKid+`:1"},"contentItems":{},"enabled":true,"continueOnError":false,"condition":null}`)
	importSteps(t, ts, scriptKid, scriptStep("c1", "child.sh"))
	tok, runID := startRun(t, ts, "dev-named")

	for _, name := range []string{"allowed.sh", "child.sh", "model-X1.sh"} {
		resp, b := runScript(t, ts, tok, runID, name, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"RAN":"`+name+`"`) {
			t.Errorf("%s (named by the sequence): %d %s", name, resp.StatusCode, b)
		}
	}
	_, unknown := runScript(t, ts, tok, runID, "nosuch.sh", nil)
	for _, name := range []string{"other.sh", "named-but-missing.sh", "model-.sh", "model-X1.sh.sh"} {
		resp, b := runScript(t, ts, tok, runID, name, nil)
		if resp.StatusCode != 404 || strings.ReplaceAll(string(b), name, "X") != strings.ReplaceAll(string(unknown), "nosuch.sh", "X") {
			t.Errorf("%s: %d %s; want the unknown script's 404 %s", name, resp.StatusCode, b, unknown)
		}
	}
	// A session bound to another sequence cannot run them either.
	importSteps(t, ts, tsB)
	_, other := login(t, ts, scriptPass, "dev-other")
	var run deploy.Run
	ts.machine(t, "POST", "/v1/runs", other, map[string]any{"taskSequenceId": tsB, "versionNo": 1}, &run)
	if resp, b := runScript(t, ts, other, run.ID, "allowed.sh", nil); resp.StatusCode != 404 {
		t.Errorf("allowed.sh from a session of another sequence: %d %s", resp.StatusCode, b)
	}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s did not appear", path)
}

// The server runs at most Scripts scripts at once (503 with Retry-After
// beyond), a session at most one (429 with Retry-After).
func TestServerScriptConcurrencyCap(t *testing.T) {
	gate := t.TempDir()
	wait := "#!/bin/sh\ntouch \"$IMPRINT_VAR_DIR/started.$IMPRINT_RUN_ID\"\nwhile [ ! -e \"$IMPRINT_VAR_DIR/go\" ]; do sleep 0.05; done\necho DONE=1\n"
	ts := scriptServer(t, server.Quotas{Scripts: 2}, map[string]string{"wait.sh": wait}, scriptStep("s1", "wait.sh"))
	vars := map[string]string{"Dir": gate}
	type session struct{ tok, run string }
	var ss []session
	for _, d := range []string{"dev-a", "dev-b", "dev-c"} {
		tok, run := startRun(t, ts, d)
		ss = append(ss, session{tok, run})
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := runScript(t, ts, ss[i].tok, ss[i].run, "wait.sh", vars)
			codes[i] = resp.StatusCode
		}()
	}
	release := func() { os.WriteFile(filepath.Join(gate, "go"), nil, 0o644) }
	defer release()
	waitFile(t, filepath.Join(gate, "started."+ss[0].run))
	waitFile(t, filepath.Join(gate, "started."+ss[1].run))

	resp, b := runScript(t, ts, ss[2].tok, ss[2].run, "wait.sh", vars)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"unavailable"`) {
		t.Errorf("third script while two run: %d Retry-After %q %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	resp, b = runScript(t, ts, ss[0].tok, ss[0].run, "wait.sh", vars)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"throttled"`) {
		t.Errorf("second script of one session: %d Retry-After %q %s; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	release()
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("the two running scripts answered %v", codes)
	}
	// The slots are free again.
	if resp, b := runScript(t, ts, ss[2].tok, ss[2].run, "wait.sh", vars); resp.StatusCode != 200 {
		t.Errorf("script after the others ended: %d %s", resp.StatusCode, b)
	}
}

// alive reports whether pid runs (a zombie waiting for its parent's wait
// does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	waitFile(t, path)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
	}
	t.Fatalf("%s holds no pid", path)
	return 0
}

// A script whose client goes away is killed with its children, and its
// slot is free again.
func TestServerScriptKilledWhenClientGoes(t *testing.T) {
	dir := t.TempDir()
	long := "#!/bin/sh\nsleep 300 &\necho $! > \"$IMPRINT_VAR_DIR/child.pid\"\necho $$ > \"$IMPRINT_VAR_DIR/script.pid\"\nwait\n"
	ts := scriptServer(t, server.Quotas{Scripts: 1}, map[string]string{"long.sh": long, "quick.sh": "#!/bin/sh\necho OK=1\n"},
		scriptStep("s1", "long.sh"), scriptStep("s2", "quick.sh"))
	tok, runID := startRun(t, ts, "dev-gone")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		postScript(ctx, t, ts, tok, runID, "long.sh", map[string]string{"Dir": dir})
	}()
	script := readPID(t, filepath.Join(dir, "script.pid"))
	child := readPID(t, filepath.Join(dir, "child.pid"))
	if !alive(script) || !alive(child) {
		t.Fatalf("script %d or its child %d is not running", script, child)
	}
	cancel() // the client goes away
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for (alive(script) || alive(child)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(script) || alive(child) {
		t.Fatalf("10 s after the client left, script %d alive %v, its child %d alive %v", script, alive(script), child, alive(child))
	}
	// Both the session's and the server's slot were given back.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, b := runScript(t, ts, tok, runID, "quick.sh", nil)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("script after the killed one: %d %s", resp.StatusCode, b)
		}
	}
}

// Variables sent to a script are bounded in number and size (413).
func TestServerScriptVariablesBounded(t *testing.T) {
	ts := scriptServer(t, server.Quotas{ScriptVariableBytes: 4096}, map[string]string{"v.sh": "#!/bin/sh\necho LEN=${#IMPRINT_VAR_BIG}\n"}, scriptStep("s1", "v.sh"))
	tok, runID := startRun(t, ts, "dev-vars")
	resp, b := runScript(t, ts, tok, runID, "v.sh", map[string]string{"Big": strings.Repeat("x", 4000)})
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"LEN":"4000"`) {
		t.Fatalf("variables within the quota: %d %s", resp.StatusCode, b)
	}
	resp, _ = runScript(t, ts, tok, runID, "v.sh", map[string]string{"Big": strings.Repeat("x", 5000)})
	wantError(t, resp, 413, "too_large", "at most 4 KiB")
}

// Scripts run in their own process group, so a stopping server kills
// them itself rather than leave them behind.
func TestServerScriptKilledAtShutdown(t *testing.T) {
	dir := t.TempDir()
	long := "#!/bin/sh\nsleep 300 &\necho $! > \"$IMPRINT_VAR_DIR/child.pid\"\necho $$ > \"$IMPRINT_VAR_DIR/script.pid\"\nwait\n"
	ts := scriptServer(t, server.Quotas{}, map[string]string{"long.sh": long}, scriptStep("s1", "long.sh"))
	tok, runID := startRun(t, ts, "dev-shutdown")
	answer := make(chan int, 1)
	go func() {
		resp, _ := runScript(t, ts, tok, runID, "long.sh", map[string]string{"Dir": dir})
		answer <- resp.StatusCode
	}()
	script := readPID(t, filepath.Join(dir, "script.pid"))
	child := readPID(t, filepath.Join(dir, "child.pid"))
	start := time.Now()
	ts.stop()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %s with a script running", d)
	}
	if alive(script) || alive(child) {
		t.Fatalf("after shutdown, script %d alive %v, its child %d alive %v", script, alive(script), child, alive(child))
	}
	if code := <-answer; code != 503 && code != 0 {
		t.Errorf("the script's client got %d, want 503 or a closed connection", code)
	}
}

// What a script leaves running in the background ends with it.
func TestServerScriptLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	bg := "#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > \"$IMPRINT_VAR_DIR/child.pid\"\necho DONE=1\n"
	ts := scriptServer(t, server.Quotas{}, map[string]string{"bg.sh": bg}, scriptStep("s1", "bg.sh"))
	tok, runID := startRun(t, ts, "dev-bg")
	if resp, b := runScript(t, ts, tok, runID, "bg.sh", map[string]string{"Dir": dir}); resp.StatusCode != 200 {
		t.Fatalf("bg.sh: %d %s", resp.StatusCode, b)
	}
	child := readPID(t, filepath.Join(dir, "child.pid"))
	for deadline := time.Now().Add(5 * time.Second); alive(child) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	if alive(child) {
		if p, err := os.FindProcess(child); err == nil {
			p.Kill()
		}
		t.Fatalf("the script's background child %d outlived it", child)
	}
}
