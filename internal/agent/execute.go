package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/wire"
)

// runServer binds server-side scripts to the current run.
type runServer struct{ a *Agent }

func (r runServer) ServerScript(ctx context.Context, req client.ServerScriptRequest) (*client.ServerScriptResult, error) {
	return r.a.Client.ServerScript(ctx, r.a.st.RunID, req)
}

// execute runs tsv with the engine and reports; it is shared by Run and
// ResumeRun.
func (a *Agent) execute(ctx context.Context, tsv *deploy.TSVersion) error {
	// The passcode was needed for the session only: no step, journal or
	// log gets it (PC-10).
	_ = a.vars.Delete(passcodeVar)
	a.vars.SetInternal("_IMPRINTRUNID", a.st.RunID)
	a.vars.SetInternal("TSID", a.st.TaskSequenceID+":"+strconv.Itoa(a.st.VersionNo))
	a.vars.SetInternal("IMPRINTSTATE", a.StateDir)
	a.vars.SetInternal("_IMPRINTLOGS", a.logs.Dir)
	a.reporter = &Reporter{
		Outbox: &Outbox{Path: filepath.Join(a.StateDir, "outbox.jsonl")}, Sender: a.Client, RunID: a.st.RunID,
		OnError: func(err error) {
			a.logf(SevWarning, "Reporting to the server: %v (events are kept and sent later)", err)
		},
		Note: func(format string, args ...any) { a.logf(SevWarning, format, args...) },
	}
	a.reporter.Start(ctx)
	defer a.reporter.Stop()

	fetcher := &Fetcher{Client: a.Client, Dir: filepath.Join(a.StateDir, "content"), Progress: a.progress,
		Log: func(f string, args ...any) { a.logf(SevInfo, f, args...) }}
	tmp := filepath.Join(a.StateDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	deps := Deps{Source: fetcher, Server: runServer{a}, TempDir: tmp, Agent: a.Executable, Sleep: a.Sleep}
	// The disk steps stream their images (never staged in the boot
	// image's RAM), so the engine must not fetch those options; they need
	// a client that can stream (*client.Machine).
	streamer, canStream := a.Client.(disksteps.Content)
	if canStream {
		up, _ := a.Client.(disksteps.Uploader)
		mc, _ := a.Client.(disksteps.Multicaster)
		pc, _ := a.Client.(disksteps.Peering)
		deps.Disk = &disksteps.Deps{Content: streamer, Uploader: up, Multicast: mc, Peers: pc, TempDir: tmp, Disks: a.Disks,
			Progress: func(name string, done, total int64) { a.progress(deploy.Ref{}, name, done, total) },
			Fetch:    fetcher.Fetch, TSInDevelopment: tsv.Status == deploy.StatusInDevelopment}
		deps.Disk.Packs, _ = a.Client.(disksteps.DriverPacks)
		if src, ok := a.Client.(WindowsAgentSource); ok {
			deps.Disk.StageWindows = func(ctx context.Context, root string) (string, error) {
				ca := []byte(a.st.CAPEM)
				if c, ok := a.Client.(interface{ CACertPEM() []byte }); ok && len(ca) == 0 {
					ca = c.CACertPEM() // the pinned CA, as the connection showed it
				}
				return StageWindowsAgent(ctx, root, src, ca, nil)
			}
		}
	}
	reg := a.Registry
	if reg == nil {
		reg = DefaultRegistry(deps)
	}
	a.defs = map[string]*deploy.StepDefVersion{}
	if err := a.registerCustom(ctx, reg, tsv.Steps, deps); err != nil {
		return err
	}
	a.steps = countSteps(tsv.Steps)
	a.step = completedSteps(a.journalPath(), tsv.Steps)
	eng := &sequence.Engine{
		Registry: reg,
		Loader: loaderFunc(func(ctx context.Context, ref deploy.Ref) (*deploy.TSVersion, error) {
			child, err := a.Client.TaskSequenceVersion(ctx, ref.ID, ref.VersionNo)
			if err != nil {
				return nil, err
			}
			if err := a.registerCustom(ctx, reg, child.Steps, deps); err != nil {
				return nil, err
			}
			a.mu.Lock()
			a.steps += countSteps(child.Steps)
			a.mu.Unlock()
			return child, nil
		}),
		Fetcher:      fetcher,
		Journal:      stateJournal{a: a, file: &sequence.FileJournal{Path: a.journalPath()}},
		OnEvent:      a.onEvent,
		PowerShell:   a.PowerShell,
		SecretOption: a.secretOption,
		Options: func(s *deploy.Step) []deploy.Option {
			if s.TypeID == nil {
				return nil
			}
			if v := a.defs[strings.ToLower(*s.TypeID)]; v != nil {
				return v.Options
			}
			return nil
		},
		Stopping: a.Stopping,
		StreamOption: func(s *deploy.Step, opt string) bool {
			return canStream && s.TypeID != nil && disksteps.Streamed(*s.TypeID, opt)
		},
		Log: a.logs.Writer("step"),
		Now: a.Now,
	}
	a.Console.Printf("Running %s\n", a.st.Name)
	out, err := eng.Run(ctx, tsv, a.vars)
	if err != nil {
		a.logf(SevError, "Run stopped: %v", err)
		return err
	}
	if out.Reboot {
		if LastReboot(tsv.Steps, journalDone(a.journalPath())) {
			// Nothing would run after the restart: the run is over.
			a.logf(SevInfo, "The reboot is the last step: finishing the run before restarting")
			return a.finish(ctx, sequence.Outcome{State: deploy.RunSucceeded}, "reboot")
		}
		return a.rebootForResume(ctx)
	}
	return a.finish(ctx, out, "")
}

// journalDone returns the ids of the steps the journal records complete.
func journalDone(path string) map[string]bool {
	done := map[string]bool{}
	st, err := (&sequence.FileJournal{Path: path}).Load()
	if err != nil || st == nil {
		return done
	}
	for _, c := range st.Completed {
		done[c.ID] = true
	}
	return done
}

// LastReboot reports whether no enabled step is left to run in walk order
// once the steps in done have completed: a Reboot that requested the
// restart was then the last thing that would run. Conditions are not
// evaluated (a step whose condition might be false still counts), and a
// Run task sequence step not yet completed counts as work left.
func LastReboot(steps []deploy.Step, done map[string]bool) bool {
	for at := range deploy.Steps(steps) {
		if at.Step.IsGroup || at.Disabled {
			continue
		}
		left := true
		for p := &at; p != nil; p = p.Parent {
			if done[p.ID] {
				left = false // it or a group around it has completed
				break
			}
		}
		if left {
			return false
		}
	}
	return true
}

// countSteps counts the non-group steps (a Run task sequence step counts
// once until its child is loaded).
func countSteps(steps []deploy.Step) int {
	n := 0
	for at := range deploy.Steps(steps) {
		if !at.Step.IsGroup && !isRunTS(at.Step) {
			n++
		}
	}
	return n
}

// completedSteps counts the non-group steps the journal records as done,
// so that "Step n of m" goes on after a resume.
func completedSteps(journal string, steps []deploy.Step) int {
	st, err := (&sequence.FileJournal{Path: journal}).Load()
	if err != nil || st == nil {
		return 0
	}
	leaves := map[string]bool{}
	for at := range deploy.Steps(steps) {
		if !at.Step.IsGroup && !isRunTS(at.Step) {
			leaves[at.ID] = true
		}
	}
	n := 0
	for _, c := range st.Completed {
		if leaves[c.ID] {
			n++
		}
	}
	return n
}

// registerCustom registers a script step for every type in steps that has
// no step yet and whose definition holds a script in its content.
func (a *Agent) registerCustom(ctx context.Context, reg *sequence.Registry, steps []deploy.Step, deps Deps) error {
	for at := range deploy.Steps(steps) {
		s := at.Step
		if s.IsGroup {
			continue
		}
		if s.TypeID == nil || *s.TypeID == "" {
			continue
		}
		typeID := strings.ToLower(*s.TypeID)
		if _, ok := a.defs[typeID]; ok {
			continue
		}
		var v *deploy.StepDefVersion
		if def, ok := stepdefs.Builtin(typeID); ok {
			v = def.Latest()
		} else if !s.Enabled {
			continue
		} else {
			def, err := a.Client.StepDefinition(ctx, typeID)
			if err != nil {
				a.logf(SevWarning, "Step definition %s of step %q: %v", typeID, s.Name, err)
				continue
			}
			v = def.Latest()
			if vv, ok := def.ResolveVersion(deploy.Str(s.StepDefinitionVersionID), s.StepDefinitionVersionNo); ok {
				v = vv
			}
		}
		a.defs[typeID] = v
		if _, ok := reg.Lookup(typeID); ok || v == nil {
			continue
		}
		if step, ok := ScriptStepFor(v, deps); ok {
			reg.Register(typeID, step)
		}
	}
	return nil
}

func (a *Agent) secretOption(s *deploy.Step, option string) bool {
	if s.TypeID == nil {
		return false
	}
	return passwordOption(a.defs[strings.ToLower(*s.TypeID)], option)
}

// onEvent shows progress, logs and reports an engine event.
func (a *Agent) onEvent(ev sequence.Event) {
	ae := client.AgentEvent{Type: string(ev.Type), Time: ev.Time.UTC(), StepID: ev.ID, Path: ev.Path, Name: ev.Name}
	switch ev.Type {
	case sequence.EventStart:
		if !ev.Group {
			a.mu.Lock()
			a.step++
			n, m := a.step, a.steps
			a.mu.Unlock()
			a.Console.Printf("Step %d of %d: %s\n", n, max(m, n), ev.Name)
		}
		a.logf(SevInfo, "Start %s", ev.Path)
	case sequence.EventEnd:
		ae.Outcome = ev.Outcome
		ae.Message = ev.Message
		ae.OutputTail = ev.Output
		ae.Downloads = ev.Downloads
		if !ev.Started.IsZero() {
			ae.DurationSeconds = ev.Time.Sub(ev.Started).Seconds()
			if !ev.Group {
				code := ev.ExitCode
				ae.ExitCode = &code
			}
		}
		if ev.Started.IsZero() && !ev.Group {
			a.mu.Lock()
			a.step++ // skipped or disabled: counted, not shown
			a.mu.Unlock()
		}
		sev := SevInfo
		switch ev.Outcome {
		case deploy.StepFailed:
			sev = SevError
			a.Console.Printf("Step %s failed: %s\n", ev.Path, ev.Message)
		case deploy.StepIgnored:
			sev = SevWarning
			a.Console.Printf("Step %s failed (continuing): %s\n", ev.Path, ev.Message)
		}
		a.logf(sev, "End %s: %s %s", ev.Path, ev.Outcome, ev.Message)
	}
	if err := a.reporter.Report(ae); err != nil {
		a.logf(SevError, "Queue event: %v", err)
	}
}

// progress draws the download bar, at most once per percent.
func (a *Agent) progress(ref deploy.Ref, name string, done, total int64) {
	pct := int64(-1)
	if total > 0 {
		pct = done * 100 / total
	}
	a.mu.Lock()
	same := pct == a.lastPct && done != total
	a.lastPct = pct
	a.mu.Unlock()
	if same {
		return
	}
	end := ""
	if done == total {
		end = "\n"
	}
	a.Console.Printf("\r  %s %s%s", name, Bar(done, total, 30), end)
	// The server (and its console) hears of it every 5 %: at most 21
	// events per transfer.
	if a.reporter != nil && (pct%5 == 0 || done == total) {
		_ = a.reporter.Report(client.AgentEvent{Type: wire.EventProgress, Time: a.now().UTC(), Name: name,
			BytesDone: done, BytesTotal: total})
	}
}

// report queues a non-step event.
func (a *Agent) report(typ, msg string, state deploy.RunState) {
	_ = a.reporter.Report(client.AgentEvent{Type: typ, Time: a.now().UTC(), Message: msg, State: state})
}

// flush sends what is queued, trying for a while.
func (a *Agent) flush(ctx context.Context) {
	for i := 0; i < 3; i++ {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.reporter.Flush(fctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		a.logf(SevWarning, "Sending events: %v", err)
		if a.sleep(ctx, time.Duration(i+1)*2*time.Second) != nil {
			return
		}
	}
}

func (a *Agent) uploadLogs(ctx context.Context) {
	a.logf(SevInfo, "Uploading logs")
	tgz, err := Bundle(a.logs.Dir)
	if err == nil {
		err = a.Client.UploadLogs(ctx, a.st.RunID, bytes.NewReader(tgz))
	}
	if err != nil {
		a.logf(SevWarning, "Uploading logs: %v", err)
	}
}

func (a *Agent) rebootForResume(ctx context.Context) error {
	a.logf(SevInfo, "Restarting to continue the sequence after boot")
	if vr, ok := a.Resume.(VarsResumer); ok {
		// The journal on disk records every step before the reboot as
		// done; that is the state the deployed OS continues from. Events
		// are sent first so that the copied outbox holds none twice.
		a.report(wire.EventProgress, "rebooting", "")
		a.flush(ctx)
		if err := vr.InstallVars(ctx, a.vars, a.Executable, a.StateDir); err != nil {
			a.logf(SevError, "Arrange resume: %v", err)
			a.Console.Printf("Cannot arrange to continue after the reboot: %v\n", err)
			return fmt.Errorf("arrange resume: %w", err)
		}
	} else if a.Resume != nil {
		if err := a.Resume.Install(ctx, a.Executable, a.StateDir); err != nil {
			a.logf(SevError, "Arrange resume: %v", err)
			a.Console.Printf("Cannot arrange to resume after a reboot: %v\nRestart the machine and run `imprint-agent resume --state %s`.\n", err, a.StateDir)
		}
	}
	if err := a.saveState(); err != nil {
		return err
	}
	if _, staged := a.Resume.(VarsResumer); !staged {
		a.report(wire.EventProgress, "rebooting", "")
		a.flush(ctx)
	}
	a.Console.Printf("Restarting the machine; the sequence continues after boot.\n")
	if a.Power != nil {
		if err := a.Power(ctx, "reboot"); err != nil {
			return fmt.Errorf("reboot: %w", err)
		}
	}
	return nil
}

func (a *Agent) finish(ctx context.Context, out sequence.Outcome, forceAction string) error {
	failed := out.State == deploy.RunFailed
	msg := "Task sequence finished successfully"
	if failed {
		msg = fmt.Sprintf("Task sequence failed at %s: %s", out.FailedPath, out.Message)
	}
	a.logf(map[bool]Severity{true: SevError, false: SevInfo}[failed], "%s", msg)
	a.Console.Printf("%s\n", msg)
	a.report(wire.EventRunEnd, out.Message, out.State)
	a.flush(ctx)
	a.uploadLogs(ctx)
	if a.Resume != nil {
		if err := a.Resume.Remove(ctx); err != nil {
			a.logf(SevWarning, "%v", err)
		}
	}
	// The run is over: a later `run` starts afresh, and nothing of the
	// session or of the secrets stays on disk (TK-7).
	a.retire()
	a.cleanup(ctx)
	if a.BootImage {
		// The e2e harness and people at the console look for these lines.
		if failed {
			a.Console.Printf("\n%s %s\n", MarkerFailed, oneLine(msg))
		} else {
			a.Console.Printf("\n%s\n", MarkerSucceeded)
		}
	}
	timeout := strings.TrimSpace(a.vars.Value("ProgressTimeout"))
	if timeout == "" && a.BootImage && failed {
		timeout = strconv.Itoa(DefaultBootImageFailWait)
	}
	if n, err := strconv.Atoi(timeout); err == nil && n > 0 && forceAction == "" {
		a.Console.Printf("Closing in %d seconds.\n", n)
		if err := a.sleep(ctx, time.Duration(n)*time.Second); err != nil {
			return err
		}
	}
	action := strings.ToLower(strings.TrimSpace(a.vars.Value("FinishAction")))
	if forceAction != "" {
		action = forceAction
	} else if action == "" && a.BootImage {
		// In the boot image: restart into the deployed OS on success; on
		// failure leave the machine off rather than boot into a half-written
		// disk or loop through the boot image.
		action = map[bool]string{true: "shutdown", false: "reboot"}[failed]
	}
	switch action = FinishPowerAction(action); action {
	case "":
	case "reboot", "shutdown", "logoff", "reseal":
		a.logf(SevInfo, "FinishAction: %s", action)
		if a.Power != nil {
			err := a.Power(ctx, action)
			if errors.Is(err, ErrPowerUnsupported) {
				a.logf(SevWarning, "FinishAction %s: %v; doing nothing", action, err)
			} else if err != nil {
				return fmt.Errorf("finish action %s: %w", action, err)
			}
		}
	default:
		a.logf(SevWarning, "FinishAction %q is not supported; doing nothing", action)
	}
	if failed {
		return fmt.Errorf("%w: %s: %s", ErrRunFailed, out.FailedPath, out.Message)
	}
	return nil
}

// cleanup removes what was staged for the run (the Windows
// continuation); a failure is logged, the run is over either way.
func (a *Agent) cleanup(ctx context.Context) {
	c := a.Cleanup
	if c == nil {
		c = defaultCleaner(a.StateDir)
	}
	if c == nil {
		return
	}
	if err := c.Cleanup(ctx, a.StateDir); err != nil {
		a.logf(SevWarning, "%v", err)
	}
}

// FinishPowerAction maps a FinishAction value (DeployR's shutdown,
// reboot, reseal, logoff, and the console's Restart, Log Off, Nothing) to
// the power action; "" does nothing, an unknown value comes back as is.
func FinishPowerAction(v string) string {
	switch strings.Join(strings.Fields(strings.ToLower(v)), " ") {
	case "", "none", "nothing":
		return ""
	case "reboot", "restart":
		return "reboot"
	case "shutdown", "poweroff", "shut down":
		return "shutdown"
	case "logoff", "log off":
		return "logoff"
	case "reseal":
		return "reseal"
	}
	return v
}

// Console markers printed in the boot image at the end of a run, each on
// a line of its own (the failure marker is followed by the reason).
const (
	MarkerSucceeded = "IMPRINT-RUN-SUCCEEDED"
	MarkerFailed    = "IMPRINT-RUN-FAILED:"
)

// DefaultBootImageFailWait is how long (seconds) the boot image shows a
// failure before powering off when ProgressTimeout is not set.
const DefaultBootImageFailWait = 30

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
