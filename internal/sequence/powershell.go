package sequence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoPwsh is the failure of a PowerShell condition where pwsh is missing.
var ErrNoPwsh = errors.New("PowerShell condition needs pwsh, which is not installed")

// PwshEvaluator evaluates a PowerShell-expression condition with pwsh from
// PATH: the expression holds when PowerShell considers its output true
// (non-empty, not $false, not 0). The variables are readable as
// $TSEnv:NAME, as in DeployR (a drive over a private temporary folder
// holding one file per variable). Without pwsh it returns ErrNoPwsh.
func PwshEvaluator(ctx context.Context, expr string, vars *Vars) (bool, error) {
	return evalPwsh(ctx, "pwsh", expr, vars)
}

func evalPwsh(ctx context.Context, program, expr string, vars *Vars) (bool, error) {
	bin, err := exec.LookPath(program)
	if err != nil {
		return false, ErrNoPwsh
	}
	dir, err := os.MkdirTemp("", "imprint-tsenv-")
	if err != nil {
		return false, fmt.Errorf("powershell condition: %w", err)
	}
	defer os.RemoveAll(dir)
	for _, v := range vars.Snapshot() {
		if strings.ContainsAny(v.Name, `/\:*?"<>|`) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, v.Name), []byte(v.Value), 0o600); err != nil {
			return false, fmt.Errorf("powershell condition: %w", err)
		}
	}
	script := "$ErrorActionPreference = 'Stop'\n" +
		"$null = New-PSDrive -Name TSEnv -PSProvider FileSystem -Root $env:IMPRINT_TSENV_DIR -Scope Global\n" +
		"$__r = . {\n" + expr + "\n}\n" +
		"if ($__r) { 'True' } else { 'False' }\n"
	cmd := exec.CommandContext(ctx, bin, "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "IMPRINT_TSENV_DIR="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(vars.Redact(stderr.String()))
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return false, fmt.Errorf("powershell condition: %w: %s", err, msg)
	}
	lines := strings.Fields(stdout.String())
	if len(lines) == 0 {
		return false, fmt.Errorf("powershell condition: pwsh printed nothing")
	}
	return lines[len(lines)-1] == "True", nil
}
