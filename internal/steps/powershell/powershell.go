// Package powershell is the Run PowerShell script step. The script is the
// file ScriptName inside the Content option's folder, or else the inline
// Script option, which is written to a temporary .ps1 file.
//
// On Windows it runs with Windows PowerShell 5.1 (powershell.exe, always
// present) unless the step or a variable asks for PowerShell 7 with
// PowerShellVersion=7 (or "pwsh"), which needs pwsh installed. Elsewhere
// only pwsh exists. The command line is built by Command, shared by every
// OS and golden-tested on Linux (testdata/*.golden).
package powershell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// ErrNoPwsh is returned when pwsh is not installed.
var ErrNoPwsh = errors.New("Run PowerShell script needs pwsh, which is not installed on this machine")

// VersionSetting is the option, or else the variable, that picks the
// PowerShell: "5" or "5.1" (Windows PowerShell, Windows only), "7" or
// "pwsh" (PowerShell 7); empty is the OS default.
const VersionSetting = "PowerShellVersion"

// Step runs a PowerShell script.
type Step struct {
	// LookPath finds pwsh; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// TempDir holds inline scripts; "" means os.TempDir().
	TempDir string
	// GOOS is the OS the command is built for; "" means runtime.GOOS.
	GOOS string
	// SystemRoot is Windows' folder; "" means %SystemRoot%, else C:\Windows.
	SystemRoot string
}

var _ sequence.Step = Step{}

func (s Step) goos() string {
	if s.GOOS != "" {
		return s.GOOS
	}
	return runtime.GOOS
}

// WindowsPowerShell is Windows PowerShell 5.1 below SystemRoot.
func WindowsPowerShell(systemRoot string) string {
	return strings.TrimRight(systemRoot, `\`) + `\System32\WindowsPowerShell\v1.0\powershell.exe`
}

// program picks the PowerShell executable for version.
func (s Step) program(version string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(version))
	windows := s.goos() == "windows"
	var pwsh bool
	switch v {
	case "":
		pwsh = !windows
	case "5", "5.1", "windows", "desktop", "powershell", "windows powershell":
		if !windows {
			return "", fmt.Errorf("run PowerShell script: %s %q: Windows PowerShell exists only on Windows; use 7 (pwsh)", VersionSetting, version)
		}
	case "7", "pwsh", "core", "powershell 7":
		pwsh = true
	default:
		return "", fmt.Errorf("run PowerShell script: %s %q: want 5.1 (Windows PowerShell) or 7 (pwsh)", VersionSetting, version)
	}
	if !pwsh {
		root := s.SystemRoot
		if root == "" {
			root = os.Getenv("SystemRoot")
		}
		if root == "" {
			root = `C:\Windows`
		}
		return WindowsPowerShell(root), nil
	}
	look := s.LookPath
	if look == nil {
		look = exec.LookPath
	}
	p, err := look("pwsh")
	if err != nil {
		return "", ErrNoPwsh
	}
	return p, nil
}

// Command returns the process that runs script (a .ps1 file) with the
// step's Parameters, in dir. On Windows, CmdLine carries Parameters as
// typed, so that quoted parameters reach the script as the author wrote
// them; elsewhere they are split at white space.
func (s Step) Command(env *sequence.Env, script, dir string) (proc.Cmd, error) {
	version := env.Setting(VersionSetting)
	if strings.TrimSpace(version) == "" && env.Vars != nil {
		version = env.Vars.Value(VersionSetting)
	}
	prog, err := s.program(version)
	if err != nil {
		return proc.Cmd{}, err
	}
	timeout, err := proc.Minutes(env.Setting("Timeout"))
	if err != nil {
		return proc.Cmd{}, fmt.Errorf("run PowerShell script: Timeout: %w", err)
	}
	args := []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", script}
	params := strings.TrimSpace(env.Setting("Parameters"))
	c := proc.Cmd{Path: prog, Args: append(args, strings.Fields(params)...), Dir: dir, Timeout: timeout,
		Log: env.Log, Env: []string{"IMPRINT_PROCESS=1"}}
	if s.goos() == "windows" {
		c.CmdLine = proc.WindowsCommandLine(prog, args...)
		if params != "" {
			c.CmdLine += " " + params
		}
	}
	return c, nil
}

// Run runs the script.
func (s Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	if _, err := s.Command(env, "check.ps1", ""); err != nil {
		return sequence.Result{}, err
	}
	dir := env.Content["Content"]
	script := ""
	if name := strings.TrimSpace(env.Setting("ScriptName")); name != "" && dir != "" {
		script = filepath.Join(dir, filepath.FromSlash(name))
	} else if body := env.Setting("Script"); strings.TrimSpace(body) != "" {
		f, err := os.CreateTemp(s.TempDir, "imprint-*.ps1")
		if err != nil {
			return sequence.Result{}, fmt.Errorf("run PowerShell script: %w", err)
		}
		defer os.Remove(f.Name())
		if s.goos() == "windows" {
			// Windows PowerShell 5.1 reads a .ps1 without a byte-order
			// mark in the ANSI code page; the mark makes it UTF-8.
			body = "\ufeff" + body
		}
		if _, err := f.WriteString(body); err != nil {
			f.Close()
			return sequence.Result{}, fmt.Errorf("run PowerShell script: %w", err)
		}
		if err := f.Close(); err != nil {
			return sequence.Result{}, fmt.Errorf("run PowerShell script: %w", err)
		}
		script = f.Name()
	} else {
		return sequence.Result{}, fmt.Errorf("run PowerShell script: neither Script nor ScriptName (with Content) is set")
	}
	c, err := s.Command(env, script, dir)
	if err != nil {
		return sequence.Result{}, err
	}
	res, err := proc.Run(ctx, c)
	out := sequence.Result{ExitCode: res.ExitCode, Output: res.Tail}
	if err != nil {
		return out, err
	}
	return out, proc.CheckCodes(res.ExitCode, []int{0})
}
