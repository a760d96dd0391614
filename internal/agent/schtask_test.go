package agent_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/imprint-osd/imprint/internal/golden"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// decodeUTF16 reads a task file as schtasks.exe does.
func decodeUTF16(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xFE || len(b)%2 != 0 {
		t.Fatalf("task file is not UTF-16LE with a byte-order mark: % x", b[:min(len(b), 8)])
	}
	u := make([]uint16, 0, len(b)/2-1)
	for i := 2; i < len(b); i += 2 {
		u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
	}
	return string(utf16.Decode(u))
}

// taskDef is the part of the Task Scheduler schema the test reads back.
type taskDef struct {
	XMLName  xml.Name                `xml:"http://schemas.microsoft.com/windows/2004/02/mit/task Task"`
	URI      string                  `xml:"RegistrationInfo>URI"`
	Boot     *struct{ Enabled bool } `xml:"Triggers>BootTrigger"`
	UserID   string                  `xml:"Principals>Principal>UserId"`
	RunLevel string                  `xml:"Principals>Principal>RunLevel"`
	Limit    string                  `xml:"Settings>ExecutionTimeLimit"`
	Command  string                  `xml:"Actions>Exec>Command"`
	Args     string                  `xml:"Actions>Exec>Arguments"`
}

func TestGoldenResumeTaskXML(t *testing.T) {
	const exe, state = `C:\ProgramData\Imprint\imprint-agent.exe`, `C:\ProgramData\Imprint\state`
	x := agent.ResumeTaskXML(exe, state)
	golden.Check(t, "resume-task.golden", []byte(x))

	for _, tc := range []struct{ exe, state, args string }{
		{exe, state, `resume --state C:\ProgramData\Imprint\state`},
		{`D:\Tools & Co\imprint-agent.exe`, `D:\Imprint State\`, `resume --state "D:\Imprint State\\"`},
	} {
		var d taskDef
		text := decodeUTF16(t, agent.UTF16File(agent.ResumeTaskXML(tc.exe, tc.state)))
		// encoding/xml refuses a UTF-16 declaration; the bytes were
		// decoded above.
		text = strings.Replace(text, `encoding="UTF-16"`, `encoding="UTF-8"`, 1)
		if err := xml.Unmarshal([]byte(text), &d); err != nil {
			t.Fatalf("task XML does not parse: %v\n%s", err, text)
		}
		if !strings.Contains(text, "\r\n") || strings.Contains(strings.ReplaceAll(text, "\r\n", ""), "\n") {
			t.Error("task file lines do not end in CR LF")
		}
		want := taskDef{XMLName: d.XMLName, URI: `\Imprint\Resume`, Boot: d.Boot, UserID: "S-1-5-18", RunLevel: "HighestAvailable",
			Limit: "PT0S", Command: tc.exe, Args: tc.args}
		if d.Boot == nil || !d.Boot.Enabled {
			t.Error("no enabled boot trigger")
		}
		if diff := cmp.Diff(want, d); diff != "" {
			t.Errorf("task (-want +got):\n%s", diff)
		}
	}
}

func TestGoldenPowerCommands(t *testing.T) {
	var b strings.Builder
	for _, goos := range []string{"windows", "linux"} {
		for _, action := range []string{"reboot", "shutdown", "logoff", "reseal", "hibernate"} {
			prog, args, err := agent.PowerCommand(goos, action, `C:\Windows\`)
			if err != nil {
				fmt.Fprintf(&b, "%s %s: error: %v (unsupported: %v)\n", goos, action, err, errors.Is(err, agent.ErrPowerUnsupported))
				continue
			}
			fmt.Fprintf(&b, "%s %s: %s %s\n", goos, action, prog, strings.Join(args, " "))
		}
	}
	golden.Check(t, "power-commands.golden", []byte(b.String()))
}

func TestFinishPowerAction(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "Nothing": "", "none": "", "Restart": "reboot", "reboot": "reboot", "Shutdown": "shutdown",
		"poweroff": "shutdown", "Log Off": "logoff", "logoff": "logoff", "Reseal": "reseal", "dance": "dance",
	} {
		if got := agent.FinishPowerAction(in); got != want {
			t.Errorf("FinishPowerAction(%q) = %q, want %q", in, got, want)
		}
	}
}

// schtasksRecorder stands in for schtasks.exe (Windows'): it records the
// calls, keeps the task registered between Create and Delete, and reads
// the XML file given to /Create while it exists.
type schtasksRecorder struct {
	calls      []string
	registered bool
	xml        string
}

func (r *schtasksRecorder) exec(_ context.Context, prog string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, prog+" "+strings.Join(args, " "))
	switch args[0] {
	case "/Create":
		b, err := os.ReadFile(args[2])
		if err != nil {
			return nil, err
		}
		r.xml, r.registered = string(b), true
	case "/Query":
		if !r.registered {
			return []byte("ERROR: The system cannot find the file specified."), errors.New("exit status 1")
		}
	case "/Delete":
		r.registered = false
	}
	return nil, nil
}

// TestWindowsRebootAndResume runs a sequence with the Windows resumer:
// the Reboot step registers the scheduled task (from its XML file, gone
// once registered), the machine reboots, `resume` continues after the
// last completed step with the saved session, and the end of the run
// deletes the task and reseals.
func TestWindowsRebootAndResume(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "out.txt")
	tsv := &deploy.TSVersion{TaskSequenceID: "ts-w", VersionNo: 1, Steps: []deploy.Step{
		step(stepdefs.TypeRunCommandLine, "Before", map[string]string{"CommandLine": "echo before >> " + out}),
		step(stepdefs.TypeReboot, "Reboot", map[string]string{"RebootRequested": "HD"}),
		step(stepdefs.TypeRunCommandLine, "After", map[string]string{"CommandLine": "echo after >> " + out}),
	}}
	api := &fakeAPI{passcode: "pc", list: []client.TSSummary{{ID: "ts-w", Name: "Windows", VersionNo: 1}},
		ts: map[string]*deploy.TSVersion{"ts-w": tsv}}
	state := filepath.Join(work, "state")
	const exe = `C:\ProgramData\Imprint\imprint-agent.exe`
	rec := &schtasksRecorder{}
	var power []string
	newAgent := func() *agent.Agent {
		return &agent.Agent{Client: api, Console: agent.NewConsole(strings.NewReader(""), &strings.Builder{}), StateDir: state,
			Vars: map[string]string{"Passcode": "pc", "FinishAction": "Reseal"}, TS: "Windows", Executable: exe,
			Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
			Power:    func(_ context.Context, action string) error { power = append(power, action); return nil },
			Resume:   agent.ScheduledTaskResume{Exec: rec.exec},
			Sleep:    func(context.Context, time.Duration) error { return nil }}
	}
	ctx := context.Background()
	if err := newAgent().Run(ctx, agent.State{Server: "https://x"}, false); err != nil {
		t.Fatal(err)
	}
	xmlPath := filepath.Join(state, agent.ResumeTaskFile)
	if diff := cmp.Diff([]string{`schtasks.exe /Create /XML ` + xmlPath + ` /TN Imprint\Resume /F`}, rec.calls); diff != "" {
		t.Errorf("schtasks calls before the reboot (-want +got):\n%s", diff)
	}
	if got := decodeUTF16(t, []byte(rec.xml)); got != strings.ReplaceAll(agent.ResumeTaskXML(exe, state), "\n", "\r\n") {
		t.Errorf("registered task:\n%s", got)
	}
	if _, err := os.Stat(xmlPath); !os.IsNotExist(err) {
		t.Errorf("task XML left in the state directory: %v", err)
	}
	if got, _ := os.ReadFile(out); string(got) != "before\n" || !cmp.Equal(power, []string{"reboot"}) {
		t.Fatalf("before the reboot: out %q, power %v", got, power)
	}

	// The task starts `imprint-agent.exe resume` at boot.
	rec.calls = nil
	if err := newAgent().ResumeRun(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "before\nafter\n" {
		t.Errorf("after the resume out.txt = %q", got)
	}
	if api.tokens[len(api.tokens)-1] != "tok-1" {
		t.Errorf("resume did not reuse the saved session: %v", api.tokens)
	}
	want := []string{`schtasks.exe /Query /TN Imprint\Resume`, `schtasks.exe /Delete /TN Imprint\Resume /F`}
	if diff := cmp.Diff(want, rec.calls); diff != "" || rec.registered {
		t.Errorf("schtasks calls at the end (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"reboot", "reseal"}, power); diff != "" {
		t.Errorf("power calls (-want +got):\n%s", diff)
	}
}

// TestFinishActionUnsupported: logoff where the OS has none is a warning,
// not a failed run.
func TestFinishActionUnsupported(t *testing.T) {
	tsv := &deploy.TSVersion{TaskSequenceID: "ts-l", VersionNo: 1, Steps: []deploy.Step{
		step(stepdefs.TypeSetVariable, "Set", map[string]string{"VariableName": "A", "VariableValue": "1"}),
	}}
	api := &fakeAPI{passcode: "pc", list: []client.TSSummary{{ID: "ts-l", Name: "L", VersionNo: 1}}, ts: map[string]*deploy.TSVersion{"ts-l": tsv}}
	state := t.TempDir()
	var asked []string
	a := &agent.Agent{Client: api, Console: agent.NewConsole(strings.NewReader(""), &strings.Builder{}), StateDir: state,
		Vars: map[string]string{"Passcode": "pc", "FinishAction": "Log Off"}, TS: "L",
		Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
		Power: func(_ context.Context, action string) error {
			asked = append(asked, action)
			_, _, err := agent.PowerCommand("linux", action, "")
			return err
		}}
	if err := a.Run(context.Background(), agent.State{Server: "https://x"}, false); err != nil {
		t.Fatalf("run failed over an unsupported FinishAction: %v", err)
	}
	if !cmp.Equal(asked, []string{"logoff"}) {
		t.Errorf("power asked %v", asked)
	}
}

// refusingAPI refuses the saved session once, as a server does whose
// token has expired while the machine rebooted.
type refusingAPI struct {
	*fakeAPI
	refuse bool
}

func (r *refusingAPI) TaskSequenceVersion(ctx context.Context, id string, no int) (*deploy.TSVersion, error) {
	if r.refuse {
		r.refuse = false
		return nil, deploy.Errorf(deploy.KindUnauthorized, "token expired")
	}
	return r.fakeAPI.TaskSequenceVersion(ctx, id, no)
}

// TestResumeAuthenticatesAgain: `resume` (what the Windows continuation
// and scheduled task run) first tries the saved session; refused, it
// authenticates again and continues after the last completed step.
func TestResumeAuthenticatesAgain(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "out.txt")
	tsv := &deploy.TSVersion{TaskSequenceID: "ts-r", VersionNo: 1, Steps: []deploy.Step{
		step(stepdefs.TypeRunCommandLine, "Before", map[string]string{"CommandLine": "echo before >> " + out}),
		step(stepdefs.TypeReboot, "Reboot", map[string]string{"RebootRequested": "HD"}),
		step(stepdefs.TypeRunCommandLine, "After", map[string]string{"CommandLine": "echo after >> " + out}),
	}}
	api := &refusingAPI{fakeAPI: &fakeAPI{passcode: "pc", list: []client.TSSummary{{ID: "ts-r", Name: "R", VersionNo: 1}},
		ts: map[string]*deploy.TSVersion{"ts-r": tsv}}}
	state := filepath.Join(work, "state")
	newAgent := func(console string) *agent.Agent {
		return &agent.Agent{Client: api, Console: agent.NewConsole(strings.NewReader(console), &strings.Builder{}), StateDir: state,
			TS:       "R",
			Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
			Resume:   &fakeResume{}, Power: func(context.Context, string) error { return nil },
			Sleep: func(context.Context, time.Duration) error { return nil }}
	}
	ctx := context.Background()
	if err := newAgent("pc\n").Run(ctx, agent.State{Server: "https://x"}, false); err != nil {
		t.Fatal(err)
	}
	api.refuse = true
	api.attempts = nil
	if err := newAgent("pc\n").ResumeRun(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "before\nafter\n" {
		t.Errorf("out.txt = %q", got)
	}
	if !cmp.Equal(api.attempts, []string{"passcode:pc"}) || api.tokens[0] != "tok-1" {
		t.Errorf("after the refusal: auth attempts %v, tokens %v", api.attempts, api.tokens)
	}
}

// unreachableAPI cannot be reached the first times, as a server is while
// the network comes up at boot.
type unreachableAPI struct {
	*fakeAPI
	fails int
}

func (u *unreachableAPI) TaskSequenceVersion(ctx context.Context, id string, no int) (*deploy.TSVersion, error) {
	if u.fails > 0 {
		u.fails--
		return nil, &url.Error{Op: "Get", URL: "https://x/v1/ts", Err: errors.New("connect: network is unreachable")}
	}
	return u.fakeAPI.TaskSequenceVersion(ctx, id, no)
}

func TestResumeWaitsForTheServer(t *testing.T) {
	work := t.TempDir()
	tsv := &deploy.TSVersion{TaskSequenceID: "ts-u", VersionNo: 1, Steps: []deploy.Step{
		step(stepdefs.TypeReboot, "Reboot", map[string]string{"RebootRequested": "HD"}),
		step(stepdefs.TypeSetVariable, "Set", map[string]string{"VariableName": "A", "VariableValue": "1"}),
	}}
	api := &unreachableAPI{fakeAPI: &fakeAPI{passcode: "pc", list: []client.TSSummary{{ID: "ts-u", Name: "U", VersionNo: 1}},
		ts: map[string]*deploy.TSVersion{"ts-u": tsv}}}
	state := filepath.Join(work, "state")
	var slept []time.Duration
	newAgent := func() *agent.Agent {
		return &agent.Agent{Client: api, Console: agent.NewConsole(strings.NewReader(""), &strings.Builder{}), StateDir: state,
			TS: "U", Vars: map[string]string{"Passcode": "pc"},
			Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
			Resume:   &fakeResume{}, Power: func(context.Context, string) error { return nil },
			Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	}
	ctx := context.Background()
	if err := newAgent().Run(ctx, agent.State{Server: "https://x"}, false); err != nil {
		t.Fatal(err)
	}
	api.fails = 3
	if err := newAgent().ResumeRun(ctx); err != nil {
		t.Fatalf("resume gave up on a server that answered the fourth time: %v", err)
	}
	if want := []time.Duration{agent.ResumeRetryDelay, agent.ResumeRetryDelay, agent.ResumeRetryDelay}; !cmp.Equal(slept, want) {
		t.Errorf("waits = %v, want %v", slept, want)
	}

	// A server that never answers: resume gives up after ResumeAttempts
	// with the error, and the run stays resumable.
	if err := newAgent().Run(ctx, agent.State{Server: "https://x"}, false); err != nil {
		t.Fatal(err)
	}
	api.fails, slept = 1000, nil
	err := newAgent().ResumeRun(ctx)
	if err == nil || !strings.Contains(err.Error(), "network is unreachable") || len(slept) != agent.ResumeAttempts-1 {
		t.Errorf("err = %v after %d waits", err, len(slept))
	}
	if _, err := agent.LoadState(state); err != nil {
		t.Errorf("state after giving up: %v", err)
	}
}
