package agent_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// fakeAPI stands in for the server's machine API (the lead's integration
// test drives the real one).
type fakeAPI struct {
	mu       sync.Mutex
	passcode string
	list     []client.TSSummary
	ts       map[string]*deploy.TSVersion
	token    string
	tokens   []string // every token set
	events   []client.AgentEvent
	logs     int
	attempts []string
}

func (f *fakeAPI) ContentInfo(context.Context, string, int) (*client.ContentInfo, error) {
	return nil, deploy.Errorf(deploy.KindNotFound, "no content")
}
func (f *fakeAPI) Download(context.Context, string, int, string, client.Progress) (*client.ContentInfo, error) {
	return nil, deploy.Errorf(deploy.KindNotFound, "no content")
}
func (f *fakeAPI) AuthMethods(context.Context) (*client.AuthMethods, error) {
	return &client.AuthMethods{Methods: []string{"certificate", "passcode"}}, nil
}
func (f *fakeAPI) Token(_ context.Context, req client.TokenRequest) (*client.TokenAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, req.Method+":"+req.Passcode)
	if req.Method != "passcode" || req.Passcode != f.passcode {
		return nil, deploy.Errorf(deploy.KindUnauthorized, "wrong passcode")
	}
	f.token = "tok-1"
	return &client.TokenAnswer{Token: f.token, SessionID: "s1"}, nil
}
func (f *fakeAPI) SetToken(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, tok)
}
func (f *fakeAPI) TaskSequences(context.Context) ([]client.TSSummary, error) { return f.list, nil }
func (f *fakeAPI) TaskSequenceVersion(_ context.Context, id string, no int) (*deploy.TSVersion, error) {
	v, ok := f.ts[id]
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "no task sequence %s", id)
	}
	return v, nil
}
func (f *fakeAPI) StepDefinition(_ context.Context, id string) (*deploy.StepDefinition, error) {
	return nil, deploy.Errorf(deploy.KindNotFound, "no step definition %s", id)
}
func (f *fakeAPI) CreateRun(context.Context, client.CreateRunRequest) (*deploy.Run, error) {
	return &deploy.Run{ID: "run-1"}, nil
}
func (f *fakeAPI) SendEvents(_ context.Context, runID string, evs []client.AgentEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, evs...)
	return nil
}
func (f *fakeAPI) UploadLogs(_ context.Context, runID string, r io.Reader) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs++
	return nil
}
func (f *fakeAPI) ServerScript(context.Context, string, client.ServerScriptRequest) (*client.ServerScriptResult, error) {
	return nil, deploy.Errorf(deploy.KindNotFound, "no scripts")
}

type fakeResume struct{ installed, removed int }

func (r *fakeResume) Install(context.Context, string, string) error { r.installed++; return nil }
func (r *fakeResume) Remove(context.Context) error                  { r.removed++; return nil }

func step(typeID, name string, settings map[string]string) deploy.Step {
	return deploy.Step{ID: strings.ReplaceAll(strings.ToLower(name), " ", "-"), Name: name, TypeID: deploy.StrPtr(typeID), Settings: settings, Enabled: true}
}

func TestAgentRunRebootResume(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "out.txt")
	skipped := step(stepdefs.TypeRunCommandLine, "Only in boot image", map[string]string{"CommandLine": "echo pe >> " + out})
	skipped.Condition = deploy.StrPtr(`{"operator":"and","items":[{"field":"OSVERSION","operator":"equals","value":"WinPE"}]}`)
	failing := step(stepdefs.TypeRunCommandLine, "Fails", map[string]string{"CommandLine": "exit 3"})
	failing.ContinueOnError = true
	tsv := &deploy.TSVersion{TaskSequenceID: "ts-b", VersionNo: 1, Steps: []deploy.Step{
		step(stepdefs.TypeSetVariable, "Set greeting", map[string]string{"VariableName": "Greeting", "VariableValue": "hello"}),
		skipped,
		failing,
		step(stepdefs.TypeRunCommandLine, "Write", map[string]string{"CommandLine": "echo %Greeting% >> " + out}),
		step(stepdefs.TypeReboot, "Reboot", map[string]string{"RebootRequested": "HD"}),
		step(stepdefs.TypeRunCommandLine, "After", map[string]string{"CommandLine": "echo after >> " + out}),
	}}
	api := &fakeAPI{passcode: "secret",
		list: []client.TSSummary{{ID: "ts-a", Name: "Other", VersionNo: 1}, {ID: "ts-b", Name: "Deploy", VersionNo: 1}},
		ts:   map[string]*deploy.TSVersion{"ts-b": tsv}}
	state := filepath.Join(work, "state")
	var power []string
	resume := &fakeResume{}
	var console bytes.Buffer
	newAgent := func(in string) *agent.Agent {
		return &agent.Agent{
			Client: api, Console: agent.NewConsole(strings.NewReader(in), &console), StateDir: state,
			Vars:     map[string]string{"FinishAction": "shutdown", "ProgressTimeout": "30"},
			Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
			Power:    func(_ context.Context, action string) error { power = append(power, action); return nil },
			Resume:   resume,
			Sleep:    func(context.Context, time.Duration) error { return nil },
		}
	}
	ctx := context.Background()
	if err := newAgent("wrong\nsecret\n2\n").Run(ctx, agent.State{Server: "https://x"}, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "hello\n" {
		t.Errorf("before reboot out.txt = %q", got)
	}
	if diff := cmp.Diff([]string{"reboot"}, power); diff != "" {
		t.Errorf("power calls (-want +got):\n%s", diff)
	}
	if resume.installed != 1 {
		t.Errorf("resume unit installed %d times", resume.installed)
	}
	for _, want := range []string{"Wrong passcode.", "2. Deploy", "Step 1 of 6: Set greeting", "Step 3 of 6: Fails", "Step 4 of 6: Write"} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, console.String())
		}
	}
	st, err := agent.LoadState(state)
	if err != nil || st.Token != "tok-1" || st.RunID != "run-1" {
		t.Fatalf("saved state = %+v, %v", st, err)
	}

	// After the reboot: a new process resumes from the journal.
	if err := newAgent("").ResumeRun(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(console.String(), "Step 6 of 6: After") {
		t.Errorf("console after resume:\n%s", console.String())
	}
	if got, _ := os.ReadFile(out); string(got) != "hello\nafter\n" {
		t.Errorf("after resume out.txt = %q", got)
	}
	if diff := cmp.Diff([]string{"reboot", "shutdown"}, power); diff != "" {
		t.Errorf("power calls (-want +got):\n%s", diff)
	}
	if api.tokens[len(api.tokens)-1] != "tok-1" {
		t.Errorf("resume did not reuse the saved token: %v", api.tokens)
	}
	if api.logs != 1 || resume.removed != 1 {
		t.Errorf("logs uploaded %d times, resume unit removed %d times", api.logs, resume.removed)
	}
	var got []string
	for _, e := range api.events {
		s := e.Type + " " + e.Path + " " + string(e.Outcome) + string(e.State)
		if e.ExitCode != nil && *e.ExitCode != 0 {
			s += " exit " + string(rune('0'+*e.ExitCode))
		}
		got = append(got, strings.Join(strings.Fields(s), " "))
	}
	want := []string{
		"step-start Set greeting", "step-end Set greeting succeeded",
		"step-end Only in boot image skipped",
		"step-start Fails", "step-end Fails ignored exit 3",
		"step-start Write", "step-end Write succeeded",
		"step-start Reboot", "step-end Reboot succeeded",
		"progress",
		"step-start After", "step-end After succeeded",
		"run-end succeeded",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	plain, _ := os.ReadFile(filepath.Join(state, "logs", "imprint-agent.log"))
	if strings.Contains(string(plain), "secret") || !strings.Contains(string(plain), "End Fails: ignored") {
		t.Errorf("plain log:\n%s", plain)
	}
	// A finished run lets a new one start.
	if _, err := agent.LoadState(state); !deploy.IsNotFound(err) {
		t.Errorf("state after the run: %v", err)
	}
}

func TestAgentDryRun(t *testing.T) {
	tsv := &deploy.TSVersion{TaskSequenceID: "ts-b", VersionNo: 1, Steps: []deploy.Step{
		step(stepdefs.TypeRunCommandLine, "Would run", map[string]string{"CommandLine": "false"}),
	}}
	tsv.Steps[0].Condition = deploy.StrPtr(`{"operator":"and","items":[{"field":"OSVERSION","operator":"equals","value":"Linux"}]}`)
	api := &fakeAPI{passcode: "pc", list: []client.TSSummary{{ID: "ts-b", Name: "Deploy", VersionNo: 1}}, ts: map[string]*deploy.TSVersion{"ts-b": tsv}}
	var console bytes.Buffer
	a := &agent.Agent{Client: api, Console: agent.NewConsole(strings.NewReader(""), &console), StateDir: t.TempDir(),
		Vars: map[string]string{"Passcode": "pc", "OSVERSION": "Linux"}, TS: "Deploy",
		Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }}}
	if err := a.Run(context.Background(), agent.State{}, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(console.String(), `RUN        Would run  [if OSVERSION equals "Linux"]`) {
		t.Errorf("console:\n%s", console.String())
	}
	if len(api.events) != 0 {
		t.Errorf("a dry run reported %d events", len(api.events))
	}
}
