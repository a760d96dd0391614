package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// TestRunEventsLongPoll waits on a run's events through the admin API
// (?wait=, what `imprint runs events --follow` does) while the machine
// posts one: the poll answers with it at once, not when its minute is up.
// A wait that sees no change answers empty when its time is up, and a
// bad wait is refused.
func TestRunEventsLongPoll(t *testing.T) {
	ts := scriptServer(t, server.Quotas{}, nil, `{"id":"s1","name":"Step","typeId":"00000001-0000-0000-0000-000000000101","enabled":true,"settings":{"CommandLine":"true"}}`)
	tok, runID := startRun(t, ts, "poll-device")
	path := "/admin/v1/runs/" + runID + "/events"

	got := make(chan []deploy.RunEvent, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://imprint"+path+"?after=0&wait=60", nil)
		resp, err := ts.admin.Do(req)
		if err != nil {
			t.Errorf("long poll: %v", err)
			got <- nil
			return
		}
		defer resp.Body.Close()
		var evs []deploy.RunEvent
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Errorf("long poll answer %q: %v", b, err)
		}
		got <- evs
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start waiting (if not, it finds the event at once: the test still passes)
	ev := []map[string]any{{"type": "step-start", "stepId": "s1", "path": "Step", "name": "Step"}}
	if resp := ts.machine(t, "POST", "/v1/runs/"+runID+"/events", tok, ev, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("post event: %d", resp.StatusCode)
	}
	select {
	case evs := <-got:
		if len(evs) != 1 || evs[0].Type != "step-start" || evs[0].StepID != "s1" {
			t.Fatalf("long poll answered %+v, want the step-start", evs)
		}
	case <-ctx.Done():
		t.Fatal("the long poll did not answer when the machine posted an event")
	}

	var evs []deploy.RunEvent
	start := time.Now()
	if resp := ts.do(t, "GET", path+"?after=1&wait=1", nil, &evs); resp.StatusCode != http.StatusOK || len(evs) != 0 {
		t.Fatalf("wait with nothing new: %d %+v", resp.StatusCode, evs)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("wait=1 with nothing new answered after %v, before its second was up", d)
	}
	for _, bad := range []string{"-1", "soon"} {
		resp := ts.do(t, "GET", fmt.Sprintf("%s?wait=%s", path, bad), nil, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("wait=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
