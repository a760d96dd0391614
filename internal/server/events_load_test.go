package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// machinePost sends a machine request and decodes a 2xx JSON answer into
// out; any other answer is an error (safe to call from any goroutine).
func machinePost(ts *testServer, c *http.Client, path, token string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", ts.apiURL(path), bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, ans)
	}
	if out != nil {
		return json.Unmarshal(ans, out)
	}
	return nil
}

// TestConcurrentRunEvents: a few hundred machines, each with its own
// session and run, post step events at the same moment. None is refused
// (the writes queue for the one writer and share commits instead of
// fighting over SQLite's lock) and every run holds each of its events
// exactly once, in the order its machine sent them.
func TestConcurrentRunEvents(t *testing.T) {
	ts := startServer(t, t.TempDir())
	ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]any{"on": true}, nil)
	importSteps(t, ts, scriptTS)
	// The per-address connection limit allows 64 from one source.
	c := &http.Client{Transport: ts.api.Transport.(*http.Transport).Clone()}
	c.Transport.(*http.Transport).MaxConnsPerHost = 48
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 48

	const machines, posts = 200, 2
	runIDs := make([]string, machines)
	start := make(chan struct{})
	errs := make(chan error, machines)
	var ready, wg sync.WaitGroup
	for m := 0; m < machines; m++ {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				defer ready.Done()
				var tok struct{ Token string }
				dev := map[string]any{"uuid": fmt.Sprintf("00000000-0000-4000-8000-%012d", m)}
				if err := machinePost(ts, c, "/v1/auth/token", "", map[string]any{"method": "anonymous", "device": dev}, &tok); err != nil {
					return err
				}
				var run deploy.Run
				if err := machinePost(ts, c, "/v1/runs", tok.Token, map[string]any{"taskSequenceId": scriptTS, "versionNo": 1}, &run); err != nil {
					return err
				}
				runIDs[m] = run.ID
				go func() { <-start; errs <- postSteps(ts, c, tok.Token, run.ID, posts) }()
				return nil
			}()
			if err != nil {
				errs <- fmt.Errorf("machine %d: %w", m, err)
			}
		}()
	}
	ready.Wait()
	close(start)
	failed := 0
	for m := 0; m < machines; m++ {
		if err := <-errs; err != nil {
			if failed++; failed <= 5 {
				t.Error(err)
			}
		}
	}
	if failed > 5 {
		t.Errorf("and %d more machines failed", failed-5)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for m, id := range runIDs {
		var events []deploy.RunEvent
		ts.do(t, "GET", "/admin/v1/runs/"+id+"/events", nil, &events)
		if len(events) != 2*posts {
			t.Fatalf("machine %d: %d events stored, want %d", m, len(events), 2*posts)
		}
		for i, e := range events {
			want := "step-start"
			if i%2 == 1 {
				want = "step-end"
			}
			if e.Seq != int64(i+1) || e.Type != want || e.StepID != fmt.Sprintf("s%d", i/2) {
				t.Fatalf("machine %d event %d: seq %d %s %s; want seq %d %s s%d", m, i, e.Seq, e.Type, e.StepID, i+1, want, i/2)
			}
		}
		var run deploy.Run
		ts.do(t, "GET", "/admin/v1/runs/"+id, nil, &run)
		if len(run.Steps) != posts || run.Steps[posts-1].Outcome != deploy.StepSucceeded {
			t.Fatalf("machine %d: run steps %+v, want %d, the last succeeded", m, run.Steps, posts)
		}
	}
}

// postSteps posts one step's start and end per request, n requests.
func postSteps(ts *testServer, c *http.Client, token, runID string, n int) error {
	for i := 0; i < n; i++ {
		step := fmt.Sprintf("s%d", i)
		evs := []map[string]any{
			{"type": "step-start", "stepId": step, "path": step, "name": step},
			{"type": "step-end", "stepId": step, "path": step, "outcome": deploy.StepSucceeded},
		}
		if err := machinePost(ts, c, "/v1/runs/"+runID+"/events", token, evs, nil); err != nil {
			return fmt.Errorf("run %s post %d: %w", runID, i, err)
		}
	}
	return nil
}
