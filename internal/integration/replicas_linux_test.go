//go:build linux

package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
)

// replica is one `imprint server` process of several on one database.
type replica struct {
	server
	cmd            *exec.Cmd
	boot, caSHA256 string
	exited         chan struct{} // closed when the process has exited
	startedAt      chan struct{} // closed when it logged that it started
	logMu          sync.Mutex
	logBuf         bytes.Buffer
}

// launchReplica starts `imprint server` on data with args; wait reports
// when it is up.
func launchReplica(t *testing.T, bin, data string, env []string, args ...string) *replica {
	t.Helper()
	r := &replica{server: server{bin: bin, data: data}, exited: make(chan struct{}), startedAt: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"--data", data, "server", "--log-format", "json"}, args...)...)
	r.cmd.Env = append(os.Environ(), env...)
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			r.logMu.Lock()
			r.logBuf.WriteString(line + "\n")
			r.logMu.Unlock()
			var rec struct {
				Msg, API, Boot string
				CA             string `json:"ca_sha256"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "imprint server started" {
				r.url, r.boot, r.caSHA256 = rec.API, rec.Boot, rec.CA
				close(r.startedAt)
			}
		}
		r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			r.cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			t.Logf("log of the replica on %s:\n%s", data, r.log())
		}
	})
	return r
}

func (r *replica) log() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logBuf.String()
}

func (r *replica) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.startedAt:
	case <-r.exited:
		t.Fatalf("replica on %s exited at start:\n%s", r.data, r.log())
	case <-time.After(90 * time.Second):
		t.Fatalf("replica on %s did not start:\n%s", r.data, r.log())
	}
}

// TestReplicasActAsOne runs two `imprint server` processes on one
// PostgreSQL database and one content store, as replicas behind one
// address: a machine logs in on A, downloads from B, reports events to A
// while `imprint runs events --follow` on B prints each one as it comes;
// A is killed with SIGKILL mid-run and the run finishes on B; both
// present certificates from one CA and serve it on their boot ports; the
// audit chain both wrote verifies.
func TestReplicasActAsOne(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	bin, _ := binaries(t)
	ctx := t.Context()

	dataA, dataB := t.TempDir(), t.TempDir()
	cargs, env := replicaContent(t, dataA, dataB)
	args := append([]string{"--db", dsn, "--listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0"}, cargs...)
	// Started together: the first to reach the database makes the CA.
	a := launchReplica(t, bin, dataA, env, args...)
	b := launchReplica(t, bin, dataB, env, args...)
	a.wait(t)
	b.wait(t)

	// One CA: machines pin its fingerprint, and either replica's boot
	// port hands out the same ca.crt.
	if a.caSHA256 == "" || a.caSHA256 != b.caSHA256 {
		t.Fatalf("replicas present CAs %q and %q, want one", a.caSHA256, b.caSHA256)
	}
	caA, caB := httpGet(t, a.boot+"/ca.crt"), httpGet(t, b.boot+"/ca.crt")
	if len(caA) == 0 || !bytes.Equal(caA, caB) {
		t.Fatalf("boot ports serve different ca.crt:\n%s\n%s", caA, caB)
	}
	for _, r := range []*replica{a, b} {
		if body := httpGet(t, r.boot+"/boot.ipxe"); !bytes.HasPrefix(body, []byte("#!ipxe")) {
			t.Errorf("%s/boot.ipxe is not an iPXE script: %.80q", r.boot, body)
		}
	}

	// Set up through A's admin socket.
	const passcode = "Replica-Harbor-Lantern-7"
	a.cli(t, passcode+"\n"+passcode+"\n", "passcode", "set")
	work := t.TempDir()
	app := filepath.Join(work, "app")
	os.MkdirAll(app, 0o755)
	payload := bytes.Repeat([]byte("replicated content "), 50_000)
	os.WriteFile(filepath.Join(app, "payload.bin"), payload, 0o644)
	var item deploy.ContentItem
	a.cliJSON(t, &item, "content", "add", "--name", "Replicated app", "--type", "Folder", "--purpose", "Application")
	a.cli(t, "", "content", "version", item.ID, app, "--install-cmd", "true", "--status", "Active")
	const tsID = "e0000000-0000-4000-8000-000000000001"
	writeJSON(t, filepath.Join(work, "ts.json"), taskSequence(tsID, "Replicated",
		step("s1", "Install app", typeInstallApp, nil, map[string]string{"Application": item.ID + ":1"}),
		step("s2", "Configure", typeCommandLine, map[string]string{"CommandLine": "true"}, nil)))
	a.cli(t, "", "ts", "import", filepath.Join(work, "ts.json"))

	// The machine logs in on A; its session works on B.
	mA, err := client.NewMachinePinned(a.url, a.caSHA256)
	if err != nil {
		t.Fatal(err)
	}
	mB, err := client.NewMachinePinned(b.url, a.caSHA256)
	if err != nil {
		t.Fatal(err)
	}
	dev := client.DeviceInfo{UUID: "9a3c1e44-0000-4000-8000-00000000a001", Name: "replica-pc"}
	tok, err := mA.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: passcode, Device: dev})
	if err != nil {
		t.Fatalf("login on A: %v", err)
	}
	mB.SetToken(tok.Token)
	if list, err := mB.TaskSequences(ctx); err != nil || len(list) != 1 || list[0].ID != tsID {
		t.Fatalf("task sequences on B with A's session: %+v, %v", list, err)
	}
	if _, err := mB.TaskSequenceVersion(ctx, tsID, 1); err != nil {
		t.Fatalf("task sequence on B: %v", err)
	}
	dst := filepath.Join(work, "downloaded")
	if _, err := mB.Download(ctx, item.ID, 1, dst, nil); err != nil {
		t.Fatalf("download from B of content stored through A: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "payload.bin")); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("downloaded payload differs (%d bytes, %v)", len(got), err)
	}
	run, err := mA.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: tsID, VersionNo: 1, Device: dev})
	if err != nil {
		t.Fatalf("create run on A: %v", err)
	}

	// The watcher on B: `imprint runs events --follow` over B's socket.
	seen := follow(t, b, run.ID)
	const live = 8 * time.Second // the follower's long poll waits 25 s: only a notice from A wakes it sooner
	report := func(m *client.Machine, ev client.AgentEvent) {
		t.Helper()
		sent := time.Now()
		if err := m.SendEvents(ctx, run.ID, []client.AgentEvent{ev}); err != nil {
			t.Fatalf("send %s %s to %s: %v", ev.Type, ev.StepID, m.BaseURL(), err)
		}
		select {
		case got, ok := <-seen:
			if !ok {
				t.Fatalf("the follower on B ended before %s %s", ev.Type, ev.StepID)
			}
			if got.Type != ev.Type || got.StepID != ev.StepID {
				t.Fatalf("the follower on B printed %s %s, want %s %s", got.Type, got.StepID, ev.Type, ev.StepID)
			}
			t.Logf("%s %s sent to %s, printed on B after %v", ev.Type, ev.StepID, m.BaseURL(), time.Since(sent).Round(time.Millisecond))
		case <-time.After(live):
			t.Fatalf("%s %s sent to %s: not printed on B within %v", ev.Type, ev.StepID, m.BaseURL(), live)
		}
	}
	now := time.Now()
	zero := 0
	report(mA, client.AgentEvent{Type: "step-start", Time: now, StepID: "s1", Path: "Install app", Name: "Install app"})
	report(mA, client.AgentEvent{Type: "step-end", Time: now, StepID: "s1", Path: "Install app", Name: "Install app", Outcome: "succeeded", ExitCode: &zero})
	report(mA, client.AgentEvent{Type: "step-start", Time: now, StepID: "s2", Path: "Configure", Name: "Configure"})

	// A dies mid-run; the machine carries on with B.
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	report(mB, client.AgentEvent{Type: "step-end", Time: now, StepID: "s2", Path: "Configure", Name: "Configure", Outcome: "succeeded", ExitCode: &zero})
	report(mB, client.AgentEvent{Type: "run-end", Time: now, State: "succeeded"})
	select {
	case _, ok := <-seen:
		if ok {
			t.Error("the follower printed more than was reported")
		}
	case <-time.After(live):
		t.Error("the follower on B did not end with the run")
	}

	var got deploy.Run
	b.cliJSON(t, &got, "runs", "show", run.ID)
	if got.State != deploy.RunSucceeded || len(got.Steps) != 2 {
		t.Errorf("run on B: state %s, %d steps (%+v), want succeeded with 2", got.State, len(got.Steps), got.Steps)
	}

	// One audit chain, written by both replicas, verifies.
	b.cli(t, "", "audit", "verify")
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Verify(events); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	actions := map[string]int{}
	for _, e := range events {
		actions[e.Action]++
	}
	if actions["sys.startup"] != 2 || actions["run.start"] != 1 {
		t.Errorf("audit actions %v: want both replicas' startups and the run's start", actions)
	}
}

// follow runs `imprint runs events ID --follow --json` on r and sends
// each event it prints; the channel closes when it exits.
func follow(t *testing.T, r *replica, runID string) <-chan deploy.RunEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, r.bin, "--data", r.data, "runs", "events", runID, "--follow", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan deploy.RunEvent, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e deploy.RunEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("follower printed %q: %v", sc.Text(), err)
				continue
			}
			ch <- e
		}
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			t.Errorf("runs events --follow: %v\n%s", err, stderr.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range ch {
		}
		<-done
	})
	return ch
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}
