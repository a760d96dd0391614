// Package cmdline is the Run command line step: the command line runs
// through the system shell (sh -c on Linux, cmd.exe /d /s /c on Windows) in
// WorkingDirectory, or the folder of the Content option, with its output
// in the step log; exit codes are checked against SuccessCodes and the
// process is stopped after Timeout minutes.
package cmdline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// Step runs a command line.
type Step struct{}

var _ sequence.Step = Step{}

// Run runs the command line.
func (Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	line := strings.TrimSpace(env.Setting("CommandLine"))
	if line == "" {
		return sequence.Result{}, fmt.Errorf("run command line: option CommandLine is empty")
	}
	codes, err := proc.ParseCodes(env.Setting("SuccessCodes"))
	if err != nil {
		return sequence.Result{}, fmt.Errorf("run command line: SuccessCodes: %w", err)
	}
	timeout, err := proc.Minutes(env.Setting("Timeout"))
	if err != nil {
		return sequence.Result{}, fmt.Errorf("run command line: Timeout: %w", err)
	}
	dir := WorkDir(env.Setting("WorkingDirectory"), env.Content["Content"])
	c := proc.ShellCmd(line)
	c.Dir, c.Timeout, c.Log, c.Env = dir, timeout, env.Log, []string{"IMPRINT_PROCESS=1"}
	fmt.Fprintf(env.Log, "Running: %s (in %s)\n", line, dir)
	res, err := proc.Run(ctx, c)
	out := sequence.Result{ExitCode: res.ExitCode, Output: res.Tail}
	if err != nil {
		return out, err
	}
	return out, proc.CheckCodes(res.ExitCode, codes)
}

// WorkDir picks the directory a command runs in: an absolute working
// directory as given, a relative one below the content folder, else the
// content folder (or, for a File content, its directory); "" is the
// agent's own directory.
func WorkDir(setting, contentPath string) string {
	setting = strings.TrimSpace(setting)
	base := contentPath
	if base != "" && filepath.Ext(base) != "" && !isDir(base) {
		base = filepath.Dir(base)
	}
	switch {
	case setting != "" && filepath.IsAbs(setting):
		return setting
	case setting != "" && base != "":
		return filepath.Join(base, setting)
	case setting != "":
		return setting
	}
	return base
}
