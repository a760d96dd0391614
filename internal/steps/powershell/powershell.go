// Package powershell is the Run PowerShell script step. It needs pwsh
// (PowerShell 7) on PATH; Windows PowerShell is not used. The script is the
// file ScriptName inside the Content option's folder, or else the inline
// Script option, which is written to a temporary .ps1 file.
package powershell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// ErrNoPwsh is returned when pwsh is not installed.
var ErrNoPwsh = errors.New("Run PowerShell script needs pwsh, which is not installed on this machine")

// Step runs a PowerShell script.
type Step struct {
	// LookPath finds pwsh; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// TempDir holds inline scripts; "" means os.TempDir().
	TempDir string
}

var _ sequence.Step = Step{}

// Run runs the script with pwsh.
func (s Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	look := s.LookPath
	if look == nil {
		look = exec.LookPath
	}
	pwsh, err := look("pwsh")
	if err != nil {
		return sequence.Result{}, ErrNoPwsh
	}
	timeout, err := proc.Minutes(env.Setting("Timeout"))
	if err != nil {
		return sequence.Result{}, fmt.Errorf("run PowerShell script: Timeout: %w", err)
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
	args := []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", script}
	args = append(args, strings.Fields(env.Setting("Parameters"))...)
	res, err := proc.Run(ctx, proc.Cmd{Path: pwsh, Args: args, Dir: dir, Timeout: timeout, Log: env.Log, Env: []string{"IMPRINT_PROCESS=1"}})
	out := sequence.Result{ExitCode: res.ExitCode, Output: res.Tail}
	if err != nil {
		return out, err
	}
	return out, proc.CheckCodes(res.ExitCode, []int{0})
}
