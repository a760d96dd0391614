package agent_test

// The agent against the real server's per-session quotas: its outbox
// splits batches and cuts or drops an event the server refuses instead of
// retrying it for ever, and a server-side script step waits for a free
// script slot.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/serverscript"
)

// quotaRun logs a machine in to a server with quotas q and creates a run
// of the e2e sequence.
func quotaRun(t *testing.T, q server.Quotas) (*realServer, *client.Machine, *deploy.Run) {
	t.Helper()
	ctx := context.Background()
	rs := startRealServer(t, func(c *server.Config) { c.Quotas = q })
	rs.setPasscode(t)
	m := rs.machine(t)
	if _, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: e2ePasscode, Device: client.DeviceInfo{UUID: "6a0c1d2e-0000-4000-8000-00000000a001"}}); err != nil {
		t.Fatalf("login: %v", err)
	}
	run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: e2eTSID, VersionNo: 1})
	if err != nil {
		t.Fatalf("create run: %v", err)
	}
	return rs, m, run
}

func TestOutboxFitsTheServerQuotas(t *testing.T) {
	// Tighter than the agent's own limits (200 events, 32 KiB each), as an
	// admin might configure.
	rs, m, run := quotaRun(t, server.Quotas{EventBytes: 4096, EventsPerRequest: 7})
	var mu sync.Mutex
	var notes []string
	r := &agent.Reporter{Outbox: &agent.Outbox{Path: filepath.Join(t.TempDir(), "outbox.jsonl")}, Sender: m, RunID: run.ID,
		Note: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			notes = append(notes, fmt.Sprintf(format, args...))
		}}
	var want []string
	for i := range 30 {
		ev := client.AgentEvent{Type: "log", Time: time.Now().UTC(), Message: fmt.Sprintf("line %d", i)}
		switch i {
		case 10: // cut by the agent to 32 KiB, refused, cut to 2 KiB
			ev.Message = fmt.Sprintf("line %d ", i) + strings.Repeat("<é\x01", 30<<10) // JSON escapes make it 300 KiB
		case 20: // nothing to cut: refused, dropped
			ev.Path = strings.Repeat("p", 10<<10)
		}
		if err := r.Report(ev); err != nil {
			t.Fatal(err)
		}
		if i != 20 {
			want = append(want, fmt.Sprintf("line %d", i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if left, _ := r.Outbox.Pending(); len(left) != 0 {
		t.Fatalf("%d events left in the outbox", len(left))
	}
	evs, err := rs.admin.RunEvents(ctx, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		msg := e.Message
		if strings.HasPrefix(msg, "line 10 ") {
			if len(msg) > 2048 || !strings.Contains(msg, "cut by imprint-agent") {
				t.Errorf("the large event arrived as %d bytes %q…", len(msg), msg[:min(len(msg), 40)])
			}
			msg = "line 10"
		}
		got = append(got, msg)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("server has events %v\nwant %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(notes, "\n")
	if !strings.Contains(joined, "cut to") || !strings.Contains(joined, "dropped") {
		t.Errorf("notes = %q, want one cut and one drop", joined)
	}
}

// runVia adapts the machine client to the step's Server.
type runVia struct {
	m   *client.Machine
	run string
}

func (r runVia) ServerScript(ctx context.Context, req client.ServerScriptRequest) (*client.ServerScriptResult, error) {
	return r.m.ServerScript(ctx, r.run, req)
}

// A Run server-side script step whose server is busy with other scripts
// (503 with Retry-After) waits and runs once a slot is free.
func TestServerScriptStepWaitsForASlot(t *testing.T) {
	ctx := context.Background()
	rs := startRealServer(t, func(c *server.Config) { c.Quotas = server.Quotas{Scripts: 1} })
	rs.setPasscode(t)
	gate := t.TempDir()
	scripts := filepath.Join(rs.DataDir(), "scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	wait := "#!/bin/sh\ntouch \"$IMPRINT_VAR_DIR/started\"\nwhile [ ! -e \"$IMPRINT_VAR_DIR/go\" ]; do sleep 0.05; done\necho NAME=PC-$IMPRINT_VAR_SERIAL\n"
	if err := os.WriteFile(filepath.Join(scripts, "name.sh"), []byte(wait), 0o755); err != nil {
		t.Fatal(err)
	}
	const tsID = "62111111-2222-3333-4444-555555555555"
	doc := `{"id":"` + tsID + `","name":"Named","architecture":"Any","versions":[{"id":"v","taskSequenceId":"` + tsID + `","versionNo":1,"status":"Active","steps":[
	 {"id":"s1","name":"Name","isGroup":false,"typeId":"` + stepdefs.TypeRunServerScript + `","settings":{"ScriptName":"name.sh"},"contentItems":{},"enabled":true,"continueOnError":false,"condition":null}]}]}`
	if _, ferrs, err := rs.admin.ImportTaskSequence(ctx, strings.NewReader(doc), client.ImportNew); err != nil || len(ferrs) > 0 {
		t.Fatalf("import: %v %v", err, ferrs)
	}
	login := func(dev string) runVia {
		m := rs.machine(t)
		if _, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: e2ePasscode, Device: client.DeviceInfo{UUID: dev}}); err != nil {
			t.Fatalf("login: %v", err)
		}
		run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: tsID, VersionNo: 1})
		if err != nil {
			t.Fatalf("create run: %v", err)
		}
		return runVia{m, run.ID}
	}
	first, second := login("6a0c1d2e-0000-4000-8000-00000000a002"), login("6a0c1d2e-0000-4000-8000-00000000a003")
	release := func() { os.WriteFile(filepath.Join(gate, "go"), nil, 0o644) }
	defer release()
	go first.ServerScript(ctx, client.ServerScriptRequest{ScriptName: "name.sh", Variables: map[string]string{"Dir": gate}})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(gate, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first script did not start")
		}
	}

	vars := sequence.NewVars()
	vars.Set("Dir", gate)
	vars.Set("Serial", "42")
	log := &syncBuffer{}
	env := &sequence.Env{Vars: vars, Settings: map[string]string{"ScriptName": "name.sh", "Timeout": "2"}, Log: log}
	done := make(chan error, 1)
	go func() {
		_, err := serverscript.Step{Server: second}.Run(ctx, env)
		done <- err
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), "busy"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the step never met a busy server; log %q", log.String())
		}
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("step: %v (log %q)", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the step did not finish; log %q", log.String())
	}
	if got := vars.Value("NAME"); got != "PC-42" {
		t.Errorf("NAME = %q after the step, want PC-42", got)
	}
}
