package agent

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// This file holds what restarts the agent on Windows and what powers the
// machine off there, with no build tag: the Task Scheduler XML, the
// schtasks.exe and shutdown.exe command lines are built and golden-tested
// on Linux (testdata/*.golden); resume_windows.go only wires them in.

// ResumeTaskName is the scheduled task that restarts the agent after a
// reboot in Windows.
const ResumeTaskName = `Imprint\Resume`

// ResumeTaskFile is the task's XML, written in the state directory for
// schtasks /Create /XML and removed once registered.
const ResumeTaskFile = "resume-task.xml"

// ResumeTaskXML returns the Task Scheduler definition that runs
// `EXE resume --state DIR` as SYSTEM (S-1-5-18) with the highest
// privileges at every boot, once a network is available, with no time
// limit and never twice at once.
func ResumeTaskXML(exe, stateDir string) string {
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	dir := ""
	if i := strings.LastIndexAny(exe, `\/`); i >= 0 {
		dir = exe[:i]
	}
	args := "resume --state " + quoteWindows(stateDir)
	return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>Imprint</Author>
    <Description>Resumes the Imprint task sequence after a reboot; removed when the run ends.</Description>
    <URI>\` + esc(ResumeTaskName) + `</URI>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger>
      <Enabled>true</Enabled>
      <Delay>PT30S</Delay>
    </BootTrigger>
  </Triggers>
  <Principals>
    <Principal id="System">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>true</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
  </Settings>
  <Actions Context="System">
    <Exec>
      <Command>` + esc(exe) + `</Command>
      <Arguments>` + esc(args) + `</Arguments>
      <WorkingDirectory>` + esc(dir) + `</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
`
}

// quoteWindows quotes a path argument for the Windows command line when
// it holds a space or a tab (a path has no quotes; a trailing backslash
// is doubled so that it does not escape the closing quote).
func quoteWindows(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t") {
		return s
	}
	if strings.HasSuffix(s, `\`) {
		s += `\`
	}
	return `"` + s + `"`
}

// UTF16File encodes s as schtasks.exe reads a task file: UTF-16
// little-endian with a byte-order mark, CR LF line ends.
func UTF16File(s string) []byte {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	u := utf16.Encode([]rune(s))
	out := make([]byte, 2, 2+2*len(u))
	out[0], out[1] = 0xFF, 0xFE
	for _, c := range u {
		out = append(out, byte(c), byte(c>>8))
	}
	return out
}

// SchtasksCreate, SchtasksQuery and SchtasksDelete are the arguments of
// schtasks.exe that register, look up and delete the resume task.
func SchtasksCreate(xmlPath string) []string {
	return []string{"/Create", "/XML", xmlPath, "/TN", ResumeTaskName, "/F"}
}

// SchtasksQuery looks the resume task up (exit status 1 when absent).
func SchtasksQuery() []string { return []string{"/Query", "/TN", ResumeTaskName} }

// SchtasksDelete deletes the resume task without asking.
func SchtasksDelete() []string { return []string{"/Delete", "/TN", ResumeTaskName, "/F"} }

// Schtasks is the Task Scheduler's command-line tool.
const Schtasks = "schtasks.exe"

// ScheduledTaskResume is the Resumer of Windows: a scheduled task that
// starts `imprint-agent.exe resume` at boot as SYSTEM, deleted when the
// run ends.
type ScheduledTaskResume struct {
	// Exec runs a program and returns its combined output; nil runs it
	// with os/exec (tests record the calls: schtasks is Windows').
	Exec func(ctx context.Context, prog string, args ...string) ([]byte, error)
}

var _ Resumer = ScheduledTaskResume{}

func (s ScheduledTaskResume) exec(ctx context.Context, args ...string) error {
	run := s.Exec
	if run == nil {
		run = func(ctx context.Context, prog string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, prog, args...).CombinedOutput()
		}
	}
	out, err := run(ctx, Schtasks, args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", Schtasks, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Install writes the task's XML to stateDir and registers it, replacing
// an older registration.
func (s ScheduledTaskResume) Install(ctx context.Context, exe, stateDir string) error {
	if exe == "" {
		return errors.New("install resume task: the agent's path is unknown")
	}
	path := filepath.Join(stateDir, ResumeTaskFile)
	if err := os.WriteFile(path, UTF16File(ResumeTaskXML(exe, stateDir)), 0o600); err != nil {
		return fmt.Errorf("install resume task: %w", err)
	}
	defer os.Remove(path)
	if err := s.exec(ctx, SchtasksCreate(path)...); err != nil {
		return fmt.Errorf("install resume task: %w", err)
	}
	return nil
}

// Remove deletes the task; a task that is not registered is not an
// error.
func (s ScheduledTaskResume) Remove(ctx context.Context) error {
	if err := s.exec(ctx, SchtasksQuery()...); err != nil {
		return nil
	}
	if err := s.exec(ctx, SchtasksDelete()...); err != nil {
		return fmt.Errorf("remove resume task: %w", err)
	}
	return nil
}

// ErrPowerUnsupported is returned (wrapped) for a power action the OS
// does not have, such as logoff or reseal outside Windows.
var ErrPowerUnsupported = errors.New("power action not supported here")

// PowerCommand returns the program and arguments that carry out a power
// action on goos: reboot and shutdown everywhere; logoff and reseal
// (sysprep to OOBE, then power off) on Windows. systemRoot is Windows'
// folder (%SystemRoot%).
func PowerCommand(goos, action, systemRoot string) (string, []string, error) {
	if goos == "windows" {
		root := strings.TrimRight(systemRoot, `\`)
		if root == "" {
			root = `C:\Windows`
		}
		shutdown := root + `\System32\shutdown.exe`
		switch action {
		case "reboot":
			return shutdown, []string{"/r", "/t", "0"}, nil
		case "shutdown":
			return shutdown, []string{"/s", "/t", "0"}, nil
		case "logoff":
			return shutdown, []string{"/l"}, nil
		case "reseal":
			return root + `\System32\Sysprep\sysprep.exe`, []string{"/generalize", "/oobe", "/shutdown", "/quiet"}, nil
		}
		return "", nil, fmt.Errorf("unknown power action %q", action)
	}
	switch action {
	case "reboot":
		if goos == "linux" {
			return "systemctl", []string{"reboot"}, nil
		}
	case "shutdown":
		if goos == "linux" {
			return "systemctl", []string{"poweroff"}, nil
		}
	case "logoff", "reseal":
	default:
		return "", nil, fmt.Errorf("unknown power action %q", action)
	}
	return "", nil, fmt.Errorf("%s on %s: %w", action, goos, ErrPowerUnsupported)
}
