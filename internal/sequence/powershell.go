package sequence

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode/utf16"
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

// PowerShellEvaluator is PwshEvaluator with another PowerShell, such as
// Windows PowerShell 5.1 (…\WindowsPowerShell\v1.0\powershell.exe), which
// the Windows agent uses where pwsh is not installed.
func PowerShellEvaluator(program string) func(ctx context.Context, expr string, vars *Vars) (bool, error) {
	return func(ctx context.Context, expr string, vars *Vars) (bool, error) {
		return evalPwsh(ctx, program, expr, vars)
	}
}

// powerShellArgs returns how program gets script: pwsh reads it on
// standard input (-Command -); Windows PowerShell, which runs standard
// input line by line like a console (a block spanning lines would wait
// for an empty line), gets it as -EncodedCommand (base64 of UTF-16LE).
func powerShellArgs(program, script string) (args []string, stdin string) {
	base := strings.ToLower(program[strings.LastIndexAny(program, `\/`)+1:])
	if base == "powershell.exe" || base == "powershell" {
		u := utf16.Encode([]rune(script))
		b := make([]byte, 0, 2*len(u))
		for _, c := range u {
			b = append(b, byte(c), byte(c>>8))
		}
		return []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", base64.StdEncoding.EncodeToString(b)}, ""
	}
	return []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-"}, script
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
	args, stdin := powerShellArgs(bin, script)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
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
