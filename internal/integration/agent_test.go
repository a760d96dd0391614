package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/secrettest"
)

// binaries builds imprint and imprint-agent once per test binary run.
func binaries(t *testing.T) (imprint, agent string) {
	t.Helper()
	dir := t.TempDir()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"imprint", "imprint-agent"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	return filepath.Join(dir, "imprint"), filepath.Join(dir, "imprint-agent")
}

// server is `imprint server` running as a process.
type server struct {
	bin, data, url string
	log            *bytes.Buffer
}

func startServer(t *testing.T, bin string) *server {
	t.Helper()
	return startServerWith(t, nil, bin, "--listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0")
}

// startServerWith starts `imprint server` with args, its command line
// prefixed by wrap (e.g. ip netns exec NS).
func startServerWith(t *testing.T, wrap []string, bin string, args ...string) *server {
	t.Helper()
	s := &server{bin: bin, data: t.TempDir(), log: &bytes.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	argv := append(append(append([]string{}, wrap...), bin, "--data", s.data, "server", "--log-format", "json"), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.log.WriteString(line + "\n")
			var rec struct{ Msg, API string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "imprint server started" {
				started <- rec.API
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	select {
	case api := <-started:
		s.url = api
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start:\n%s", s.log)
	}
	return s
}

// cli runs the admin CLI and returns stdout; it fails the test on a
// non-zero exit.
func (s *server) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"--data", s.data}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("imprint %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func (s *server) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := s.cli(t, "", append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("imprint %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func step(id, name, typeID string, settings, content map[string]string) map[string]any {
	if settings == nil {
		settings = map[string]string{}
	}
	if content == nil {
		content = map[string]string{}
	}
	return map[string]any{"id": id, "name": name, "isGroup": false, "typeId": typeID,
		"settings": settings, "contentItems": content, "enabled": true, "continueOnError": false, "condition": nil}
}

func taskSequence(id, name string, steps ...map[string]any) map[string]any {
	return map[string]any{"id": id, "name": name, "architecture": "Any", "versions": []any{map[string]any{
		"id": id[:8] + "-v1", "taskSequenceId": id, "versionNo": 1, "status": "Active", "steps": steps}}}
}

const (
	typeSetVariable = "00000001-0000-0000-0000-000000000001"
	typeRunTS       = "00000001-0000-0000-0000-00000000000d"
	typeInstallApp  = "00000001-0000-0000-0000-00000000000b"
	typeReboot      = "00000001-0000-0000-0000-000000000007"
	typeCommandLine = "00000001-0000-0000-0000-000000000101"
)

// TestAgentRunsSequenceAcrossReboot runs a sequence with a false
// condition, a failure under continueOnError, a nested sequence, an
// application from a content item and a reboot (the agent process stops
// where the machine would restart and is started again), and checks the
// server's run record step by step.
func TestAgentRunsSequenceAcrossReboot(t *testing.T) {
	imprintBin, agentBin := binaries(t)
	srv := startServer(t, imprintBin)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	os.MkdirAll(out, 0o755)

	const passcode = "Lab-Bench-Orbit-4417"
	srv.cli(t, passcode+"\n"+passcode+"\n", "passcode", "set")

	// An application: a folder whose install script leaves a marker.
	app := filepath.Join(work, "app")
	os.MkdirAll(app, 0o755)
	os.WriteFile(filepath.Join(app, "install.sh"), []byte("#!/bin/sh\necho installed-from-content > "+filepath.Join(out, "app")+"\n"), 0o755)
	var item deploy.ContentItem
	srv.cliJSON(t, &item, "content", "add", "--name", "Marker app", "--type", "Folder", "--purpose", "Application")
	srv.cli(t, "", "content", "version", item.ID, app, "--install-cmd", "sh install.sh", "--status", "Active")

	const childID, parentID = "c0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000001"
	child := taskSequence(childID, "Child module",
		step("c1", "Set child variable", typeSetVariable, map[string]string{"VariableName": "ChildVar", "VariableValue": "from-child"}, nil),
		step("c2", "Write child variable", typeCommandLine, map[string]string{"CommandLine": "echo %ChildVar% > " + filepath.Join(out, "child")}, nil))
	skipped := step("p2", "Never runs", typeCommandLine, map[string]string{"CommandLine": "touch " + filepath.Join(out, "skipped")}, nil)
	skipped["condition"] = `{"operator":"and","items":[{"field":"Flag","operator":"equals","value":"2"}]}`
	failing := step("p3", "Fails but continues", typeCommandLine, map[string]string{"CommandLine": "exit 7"}, nil)
	failing["continueOnError"] = true
	parent := taskSequence(parentID, "Lab parent",
		step("p1", "Set flag", typeSetVariable, map[string]string{"VariableName": "Flag", "VariableValue": "1"}, nil),
		skipped, failing,
		step("p4", "Run child", typeRunTS, map[string]string{"childTaskSequenceId": childID + ":1"}, nil),
		step("p5", "Install marker app", typeInstallApp, nil, map[string]string{"Application": item.ID + ":1"}),
		step("p6", "Restart", typeReboot, map[string]string{"RebootRequested": "HD"}, nil),
		step("p7", "After restart", typeCommandLine, map[string]string{"CommandLine": "echo %Flag% > " + filepath.Join(out, "after")}, nil))
	writeJSON(t, filepath.Join(work, "child.json"), child)
	writeJSON(t, filepath.Join(work, "parent.json"), parent)
	srv.cli(t, "", "ts", "import", filepath.Join(work, "child.json"))
	srv.cli(t, "", "ts", "import", filepath.Join(work, "parent.json"))

	state := filepath.Join(work, "agent-state")
	agentCmd := func(args ...string) (string, int) {
		cmd := exec.Command(agentBin, args...)
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		cmd.Stdin = strings.NewReader("")
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return b.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("agent: %v", err)
		}
		return b.String(), 0
	}
	log, code := agentCmd("run", "--server", srv.url, "--ca", filepath.Join(srv.data, "tls", "ca.crt"),
		"--ts", "Lab parent", "--var", "Passcode="+passcode, "--state", state, "--power", "exit")
	if code != 3 {
		t.Fatalf("first agent run: exit %d, want 3 (reboot requested)\n%s", code, log)
	}
	if _, err := os.Stat(filepath.Join(out, "after")); err == nil {
		t.Fatalf("the step after the reboot ran before the restart")
	}
	// What survives the reboot: the session token (to resume with), never
	// the passcode (PC-10).
	var saved struct{ Token string }
	if b, err := os.ReadFile(filepath.Join(state, "agent.json")); err != nil || json.Unmarshal(b, &saved) != nil || saved.Token == "" {
		t.Fatalf("agent.json at the reboot: %s %v", b, err)
	}
	if hits := filesHolding(t, state, passcode); len(hits) > 0 {
		t.Errorf("the passcode is on disk at the reboot: %q", hits)
	}
	log2, code := agentCmd("resume", "--state", state, "--power", "exit")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n--- first run ---\n%s", code, log2, log)
	}

	// After the run neither the passcode nor the token is anywhere in the
	// state directory (TK-7).
	for what, secret := range map[string]string{"passcode": passcode, "session token": saved.Token} {
		if hits := filesHolding(t, state, secret); len(hits) > 0 {
			t.Errorf("the %s is on disk after the run: %q", what, hits)
		}
	}

	for file, want := range map[string]string{"app": "installed-from-content", "child": "from-child", "after": "1"} {
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q (%v), want %q", file, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "skipped")); err == nil {
		t.Errorf("the step with a false condition ran")
	}

	var runs []deploy.Run
	srv.cliJSON(t, &runs, "runs", "list")
	if len(runs) != 1 {
		t.Fatalf("runs = %+v", runs)
	}
	var run deploy.Run
	srv.cliJSON(t, &run, "runs", "show", runs[0].ID)
	if run.State != deploy.RunSucceeded {
		t.Errorf("run state = %s (%s)", run.State, run.Error)
	}
	got := map[string]deploy.StepOutcome{}
	for _, s := range run.Steps {
		got[lastElem(s.Path)] = s.Outcome
	}
	want := map[string]deploy.StepOutcome{
		"Set flag": deploy.StepSucceeded, "Never runs": deploy.StepSkipped, "Fails but continues": deploy.StepIgnored,
		"Run child": deploy.StepSucceeded, "Set child variable": deploy.StepSucceeded, "Write child variable": deploy.StepSucceeded,
		"Install marker app": deploy.StepSucceeded, "Restart": deploy.StepSucceeded, "After restart": deploy.StepSucceeded,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("run record steps (-want +got):\n%s\nagent:\n%s\n%s", d, log, log2)
	}
	for _, s := range run.Steps {
		if lastElem(s.Path) == "Fails but continues" && (s.ExitCode == nil || *s.ExitCode != 7) {
			t.Errorf("failing step exit code = %v, want 7", s.ExitCode)
		}
	}
	// Each step is recorded once, even though the agent process restarted.
	if len(run.Steps) != len(want) {
		t.Errorf("run has %d step records, want %d: %s", len(run.Steps), len(want), fmt.Sprint(run.Steps))
	}
}

func lastElem(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// filesHolding returns the files under root that hold secret as it is,
// JSON-escaped or in UTF-16LE.
func filesHolding(t *testing.T, root, secret string) []string {
	t.Helper()
	return secrettest.FilesWith(t, root, secret)
}
