package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
)

// MachineAPI is the part of the machine client the agent uses
// (*client.Machine implements it).
type MachineAPI interface {
	ContentClient
	AuthMethods(ctx context.Context) (*client.AuthMethods, error)
	Token(ctx context.Context, req client.TokenRequest) (*client.TokenAnswer, error)
	SetToken(tok string)
	TaskSequences(ctx context.Context) ([]client.TSSummary, error)
	TaskSequenceVersion(ctx context.Context, id string, no int) (*deploy.TSVersion, error)
	StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error)
	CreateRun(ctx context.Context, req client.CreateRunRequest) (*deploy.Run, error)
	SendEvents(ctx context.Context, runID string, evs []client.AgentEvent) error
	UploadLogs(ctx context.Context, runID string, tgz io.Reader) error
	ServerScript(ctx context.Context, runID string, req client.ServerScriptRequest) (*client.ServerScriptResult, error)
}

var _ MachineAPI = (*client.Machine)(nil)

// Resumer arranges for the agent to start again after a reboot.
type Resumer interface {
	Install(ctx context.Context, exe, stateDir string) error
	Remove(ctx context.Context) error
}

// Agent runs task sequences on this machine. Construct it with the
// exported fields; only Client, Console and StateDir are required.
type Agent struct {
	Client   MachineAPI
	Console  *Console
	StateDir string
	// Vars are given on the command line (--var); they override gathered
	// inventory.
	Vars map[string]string
	// TS picks the task sequence by id or name (--ts); else the TSID
	// variable; else the console picker.
	TS string
	// BootImage selects the server's bootImageMethods and OSVERSION
	// ImprintPE.
	BootImage bool
	// ClientCert says a client certificate is configured (also true when
	// Client has HasClientCert() returning true, as *client.Machine does
	// with client.WithClientCert).
	ClientCert bool
	// PasscodeTries bounds passcode prompts (0: DefaultPasscodeTries).
	PasscodeTries int
	Gatherer      Gatherer
	// Power reboots or shuts down ("reboot", "shutdown"); nil does nothing
	// (tests record calls with it).
	Power func(ctx context.Context, action string) error
	// Resume arranges the restart after a reboot; nil does nothing.
	Resume Resumer
	// Cleanup removes what was staged for the run once it is over; nil is
	// WindowsCleanup on Windows when StateDir is the staged
	// %SystemDrive%\ProgramData\Imprint\state, else nothing.
	Cleanup Cleaner
	// Executable is imprint-agent's path (for the resume unit and `var set`).
	Executable string
	// HTTPClient is used for Entra ID; nil means http.DefaultClient.
	HTTPClient *http.Client
	// PowerShell evaluates PowerShell conditions (nil: pwsh on PATH).
	PowerShell func(ctx context.Context, expr string, vars *sequence.Vars) (bool, error)
	// Sleep waits (ProgressTimeout, Retry-After, reboot delay); nil uses a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Stopping, when it returns true, stops the run at the next step
	// boundary (the first SIGINT/SIGTERM); the run can be resumed.
	Stopping func() bool
	// Disks lists the target disks for the disk steps; nil reads /sys.
	// Tests give an image file.
	Disks func() ([]disksteps.DiskInfo, error)
	// Registry, when set, replaces DefaultRegistry (custom script steps
	// are still added to it).
	Registry *sequence.Registry

	logs     *Logs
	unlock   func() // releases the state directory's lock (lock.go)
	vars     *sequence.Vars
	st       *State
	reporter *Reporter
	defs     map[string]*deploy.StepDefVersion
	mu       sync.Mutex
	step     int
	steps    int
	lastPct  int64
	token    string
	disks    []deploy.Disk // gathered, sent at login
}

// State is what the agent keeps in StateDir/agent.json between a reboot
// and the resume.
type State struct {
	Server   string `json:"server"`
	CAPEM    string `json:"caPEM,omitempty"`
	CASHA256 string `json:"caSHA256,omitempty"`
	// CertFile and KeyFile are the client certificate (--cert, --key), so
	// that a resumed run can authenticate again the same way.
	CertFile       string `json:"certFile,omitempty"`
	KeyFile        string `json:"keyFile,omitempty"`
	BootImage      bool   `json:"bootImage,omitempty"`
	Token          string `json:"token,omitempty"`
	RunID          string `json:"runId"`
	TaskSequenceID string `json:"taskSequenceId"`
	VersionNo      int    `json:"versionNo"`
	Name           string `json:"name"`
	// Secrets are the run's secret variables (values of Password options)
	// and the variables whose value holds one, kept here rather than in
	// the journal; never staged into the deployed OS, dropped at the end
	// of the run (see secrets.go).
	Secrets []sequence.Var `json:"secrets,omitempty"`
}

// ErrRunFailed is returned by Run and ResumeRun when the sequence failed.
var ErrRunFailed = errors.New("task sequence failed")

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	if a.Sleep != nil {
		return a.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (a *Agent) logf(sev Severity, format string, args ...any) {
	if a.logs != nil {
		msg := fmt.Sprintf(format, args...)
		if a.vars != nil {
			msg = a.vars.Redact(msg)
		}
		a.logs.Log("imprint-agent", sev, "%s", msg)
	}
}

func (a *Agent) statePath() string   { return filepath.Join(a.StateDir, "agent.json") }
func (a *Agent) journalPath() string { return filepath.Join(a.StateDir, "journal.json") }

// LoadState reads StateDir/agent.json.
func LoadState(stateDir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "agent.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, deploy.Errorf(deploy.KindNotFound, "no run to resume in %s", stateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("load state %s: %w", filepath.Join(stateDir, "agent.json"), err)
	}
	return &st, nil
}

func (a *Agent) saveState() error { return writeState(a.statePath(), a.st) }

// writeState writes st to path (mode 0600), replacing it atomically.
func writeState(path string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func (a *Agent) open() error {
	if a.StateDir == "" {
		return deploy.Errorf(deploy.KindInvalid, "state directory is not set")
	}
	if a.Console == nil {
		a.Console = NewConsole(nil, nil)
	}
	if err := os.MkdirAll(a.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	unlock, err := lockState(a.StateDir)
	if err != nil {
		return err
	}
	l, err := OpenLogs(filepath.Join(a.StateDir, "logs"))
	if err != nil {
		unlock()
		return err
	}
	l.Now = a.Now
	a.logs, a.unlock = l, unlock
	return nil
}

// close ends what open began: the logs, then the state lock.
func (a *Agent) close() {
	a.logs.Close()
	a.unlock()
}

// gather sets up the variables: inventory, then --var.
func (a *Agent) gather() error {
	g := a.Gatherer
	if g.OSVersion == "" && a.BootImage {
		g.OSVersion = OSVersionBootImage
	}
	inv, err := g.Gather()
	if err != nil {
		return err
	}
	a.vars = sequence.NewVars()
	a.disks = inv.Disks
	inv.SetVars(a.vars.SetInternal, func(n string, items []string) { _ = a.vars.SetList(n, items) })
	for k, v := range a.Vars {
		if strings.EqualFold(k, "Passcode") {
			a.vars.SetInternalSecret(k, v)
		} else {
			a.vars.SetInternal(k, v)
		}
	}
	a.logf(SevInfo, "Gathered: make %q model %q (MakeAlias %s, ModelAlias %s), UUID %s, serial %s, %s, UEFI %v, %d MB",
		inv.Make, inv.Model, inv.MakeAlias, inv.ModelAlias, inv.UUID, inv.SerialNumber, inv.Architecture, inv.IsUEFI, inv.MemoryMB)
	return nil
}

// device is the identity sent at login, cut to what the server accepts
// (deploy.Device.Normalize): firmware that reports a UUID that is not one,
// or text with control characters, must not keep the machine from logging
// in; such a UUID is left out and the server keys the machine by its MAC.
func (a *Agent) device() client.DeviceInfo {
	name, _ := os.Hostname()
	d := client.DeviceInfo{
		SerialNumber: deploy.CleanDeviceText(a.vars.Value("SerialNumber"), deploy.MaxDeviceSerial),
		Make:         deploy.CleanDeviceText(a.vars.Value("Make"), deploy.MaxDeviceText),
		Model:        deploy.CleanDeviceText(a.vars.Value("Model"), deploy.MaxDeviceText),
		Name:         deploy.CleanDeviceText(name, deploy.MaxDeviceText),
		Disks:        a.disks,
	}
	if u, err := deploy.ParseUUID(a.vars.Value("UUID")); err == nil {
		d.UUID = u
	}
	for _, m := range a.vars.List("MacAddress") {
		if hw, err := net.ParseMAC(m); err == nil && len(d.MACs) < deploy.MaxDeviceMACs {
			d.MACs = append(d.MACs, hw.String())
		}
	}
	return d
}

// selectTS picks the task sequence: --ts, then TSID, then the picker.
func (a *Agent) selectTS(ctx context.Context) (client.TSSummary, error) {
	list, err := a.Client.TaskSequences(ctx)
	if err != nil {
		return client.TSSummary{}, fmt.Errorf("list task sequences: %w", err)
	}
	want := a.TS
	if want == "" {
		want = a.vars.Value("TSID")
	}
	if want != "" {
		id, no, _ := strings.Cut(want, ":")
		for _, s := range list {
			if strings.EqualFold(s.ID, id) || strings.EqualFold(s.Name, want) {
				if n, err := strconv.Atoi(no); err == nil && n > 0 {
					s.VersionNo = n
				}
				return s, nil
			}
		}
		return client.TSSummary{}, deploy.Errorf(deploy.KindNotFound, "task sequence %q is not among the %d this machine may run; %s", want, len(list), notOfferedHint)
	}
	if len(list) == 0 {
		return client.TSSummary{}, deploy.Errorf(deploy.KindNotFound, "the server offers no task sequence to this machine")
	}
	a.Console.Printf("Task sequences:\n")
	for i, s := range list {
		a.Console.Printf("  %2d. %s (version %d)", i+1, s.Name, s.VersionNo)
		if s.Description != "" {
			a.Console.Printf(" - %s", s.Description)
		}
		a.Console.Printf("\n")
	}
	for {
		line, err := a.Console.ReadLine(fmt.Sprintf("Choose 1-%d: ", len(list)))
		if err != nil {
			return client.TSSummary{}, fmt.Errorf("choose a task sequence: %w", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(line))
		if err == nil && n >= 1 && n <= len(list) {
			return list[n-1], nil
		}
		a.Console.Printf("Enter a number from 1 to %d.\n", len(list))
	}
}

// Run authenticates, selects, gathers and runs a task sequence (or, with
// dryRun, prints its plan). It returns ErrRunFailed when the sequence
// failed and nil when it succeeded or stopped for a reboot.
func (a *Agent) Run(ctx context.Context, st State, dryRun bool) error {
	if err := a.open(); err != nil {
		return err
	}
	defer a.close()
	if !dryRun {
		if old, err := LoadState(a.StateDir); err == nil && old.RunID != "" {
			if _, err := os.Stat(a.journalPath()); err == nil {
				return deploy.Errorf(deploy.KindConflict,
					"run %s is not finished in %s: use `imprint-agent resume --state %s`, or remove the directory to start over",
					old.RunID, a.StateDir, a.StateDir)
			}
		}
	}
	if err := a.gather(); err != nil {
		return err
	}
	if err := a.authenticate(ctx, a.device()); err != nil {
		return err
	}
	sum, err := a.selectTS(ctx)
	if err != nil {
		return err
	}
	tsv, err := a.Client.TaskSequenceVersion(ctx, sum.ID, sum.VersionNo)
	if deploy.IsNotFound(err) {
		return deploy.Errorf(deploy.KindNotFound, "load task sequence %s version %d: %s; %s", sum.Name, sum.VersionNo, deploy.ErrorMessage(err), notOfferedHint)
	}
	if err != nil {
		return fmt.Errorf("load task sequence %s: %w", sum.Name, err)
	}
	a.vars.SetInternal("TSID", sum.ID+":"+strconv.Itoa(sum.VersionNo))
	if dryRun {
		plan, err := PlanWith(ctx, tsv, a.vars, loaderFunc(func(ctx context.Context, ref deploy.Ref) (*deploy.TSVersion, error) {
			return a.Client.TaskSequenceVersion(ctx, ref.ID, ref.VersionNo)
		}), a.planCheck(a.dryRunRegistry()))
		if err != nil {
			return err
		}
		a.Console.Printf("Plan for %s (version %d), nothing is run:\n", sum.Name, sum.VersionNo)
		var buf bytes.Buffer
		PrintPlan(&buf, plan)
		a.Console.Printf("%s", buf.String())
		if n := CannotRun(plan); n > 0 {
			a.Console.Printf("%d %s cannot run.\n", n, map[bool]string{true: "step", false: "steps"}[n == 1])
		} else {
			a.Console.Printf("Every step that would be reached can run.\n")
		}
		return nil
	}
	run, err := a.Client.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: sum.ID, VersionNo: sum.VersionNo, Device: a.device()})
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	st.Token = a.token
	st.RunID, st.TaskSequenceID, st.VersionNo, st.Name, st.BootImage = run.ID, sum.ID, sum.VersionNo, sum.Name, a.BootImage
	a.st = &st
	if err := a.saveState(); err != nil {
		return err
	}
	a.logf(SevInfo, "Run %s of %s (version %d) started", run.ID, sum.Name, sum.VersionNo)
	return a.execute(ctx, tsv)
}

// ResumeRun continues the run saved in StateDir after a reboot or crash.
func (a *Agent) ResumeRun(ctx context.Context) error {
	if err := a.open(); err != nil {
		return err
	}
	defer a.close()
	st, err := LoadState(a.StateDir)
	if deploy.IsNotFound(err) {
		return a.orphaned(ctx, err)
	}
	if err != nil {
		return err
	}
	a.st = st
	a.BootImage = st.BootImage
	if err := a.gather(); err != nil {
		return err
	}
	a.logf(SevInfo, "Resuming run %s of %s", st.RunID, st.Name)
	a.Client.SetToken(st.Token)
	tsv, err := a.Client.TaskSequenceVersion(ctx, st.TaskSequenceID, st.VersionNo)
	// At boot the network may come up after the agent starts (Windows
	// runs the continuation whenever setup reaches it, and does so once):
	// a server that cannot be reached is tried again for a while rather
	// than leaving the run stranded.
	for i := 0; i < ResumeAttempts-1 && unreachable(err); i++ {
		a.logf(SevWarning, "The server is not reachable (%v); trying again in %s", err, ResumeRetryDelay)
		if err := a.sleep(ctx, ResumeRetryDelay); err != nil {
			return err
		}
		tsv, err = a.Client.TaskSequenceVersion(ctx, st.TaskSequenceID, st.VersionNo)
	}
	if deploy.ErrorKind(err) == deploy.KindUnauthorized {
		a.logf(SevWarning, "The saved session is no longer valid; authenticating again")
		if err := a.authenticate(ctx, a.device()); err != nil {
			return err
		}
		if err := a.saveState(); err != nil {
			return err
		}
		tsv, err = a.Client.TaskSequenceVersion(ctx, st.TaskSequenceID, st.VersionNo)
	}
	if err != nil {
		return fmt.Errorf("load task sequence %s: %w", st.Name, err)
	}
	return a.execute(ctx, tsv)
}

// orphaned handles a resume with no run to resume. For the agent Prepare
// operating system staged into Windows that means the run ended in the
// boot image without the reboot that stages its state (it failed, or the
// sequence had no Reboot after Prepare operating system): the agent
// removes itself and the answer file as a finished run's would, instead
// of staying on the machine with Setup calling it at every first boot.
func (a *Agent) orphaned(ctx context.Context, err error) error {
	c := a.Cleanup
	if c == nil {
		c = defaultCleaner(a.StateDir)
	}
	if c == nil {
		return err
	}
	a.logf(SevWarning, "No run to resume in %s: the run ended before its reboot into this system; removing the staged agent", a.StateDir)
	if cerr := c.Cleanup(ctx, a.StateDir); cerr != nil {
		a.logf(SevWarning, "%v", cerr)
	}
	return fmt.Errorf("%w; the staged agent was removed", err)
}

// How often, and how far apart, `resume` tries a server it cannot reach
// (5 minutes in all).
const (
	ResumeAttempts   = 30
	ResumeRetryDelay = 10 * time.Second
)

// unreachable reports whether err is a failure to reach the server (no
// answer at all), as opposed to an answer that refuses.
func unreachable(err error) bool {
	var ue *url.Error
	var ne net.Error
	return err != nil && (errors.As(err, &ue) || errors.As(err, &ne))
}

type loaderFunc func(ctx context.Context, ref deploy.Ref) (*deploy.TSVersion, error)

func (f loaderFunc) TaskSequence(ctx context.Context, ref deploy.Ref) (*deploy.TSVersion, error) {
	return f(ctx, ref)
}
