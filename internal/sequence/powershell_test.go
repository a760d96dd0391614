package sequence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakePwsh installs a shell script named pwsh on PATH that stands in for
// PowerShell: it checks the script arrives on stdin with the expression in
// it and answers from the variable files the evaluator exported.
func fakePwsh(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell script stand-in needs a POSIX shell")
	}
	dir := t.TempDir()
	script := `#!/bin/sh
script=$(cat)
case "$script" in *"New-PSDrive -Name TSEnv"*) ;; *) echo "no TSEnv drive" >&2; exit 3;; esac
case "$script" in *BOOM*) echo "boom: $(cat "$IMPRINT_TSENV_DIR/Pw")" >&2; exit 1;; esac
if [ "$(cat "$IMPRINT_TSENV_DIR/IsUEFI" 2>/dev/null)" = "True" ]; then echo True; else echo False; fi
`
	if err := os.WriteFile(filepath.Join(dir, "pwsh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestPwshEvaluator(t *testing.T) {
	fakePwsh(t)
	v := VarsFrom(map[string]string{"IsUEFI": "True", "Odd/Name": "skipped"})
	if err := v.SetSecret("Pw", "hush"); err != nil {
		t.Fatal(err)
	}
	ok, err := PwshEvaluator(context.Background(), "$TSEnv:IsUEFI -eq 'True'", v)
	if err != nil || !ok {
		t.Errorf("IsUEFI=True: got %v, %v; want true", ok, err)
	}
	v.SetInternal("IsUEFI", "False")
	if ok, err := PwshEvaluator(context.Background(), "$TSEnv:IsUEFI", v); err != nil || ok {
		t.Errorf("IsUEFI=False: got %v, %v; want false", ok, err)
	}
	_, err = PwshEvaluator(context.Background(), "BOOM", v)
	if err == nil || strings.Contains(err.Error(), "hush") || !strings.Contains(err.Error(), "boom: ********") {
		t.Errorf("failing expression: err = %v, want pwsh's stderr with the secret redacted", err)
	}
}

func TestPwshEvaluatorMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := PwshEvaluator(context.Background(), "$true", NewVars())
	if !errors.Is(err, ErrNoPwsh) {
		t.Errorf("err = %v, want ErrNoPwsh", err)
	}
}

// TestWindowsPowerShellEvaluator: Windows PowerShell 5.1 gets the
// condition as -EncodedCommand (it runs standard input line by line);
// the stand-in decodes it (base64 of UTF-16LE; the script is ASCII, so
// dropping the zero bytes decodes it) and answers from the variables.
func TestWindowsPowerShellEvaluator(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell script stand-in needs a POSIX shell")
	}
	dir := t.TempDir()
	script := `#!/bin/sh
[ "$6" = "-EncodedCommand" ] || { echo "args: $*" >&2; exit 2; }
[ -z "$(cat)" ] || { echo "unexpected stdin" >&2; exit 2; }
decoded=$(printf '%s' "$7" | base64 -d | tr -d '\000')
case "$decoded" in *"New-PSDrive -Name TSEnv"*) ;; *) echo "no TSEnv drive" >&2; exit 3;; esac
case "$decoded" in *'$TSEnv:IsUEFI'*) ;; *) echo "no expression" >&2; exit 3;; esac
if [ "$(cat "$IMPRINT_TSENV_DIR/IsUEFI" 2>/dev/null)" = "True" ]; then echo True; else echo False; fi
`
	prog := filepath.Join(dir, "powershell.exe")
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	v := NewVars()
	v.SetInternal("IsUEFI", "True")
	ok, err := PowerShellEvaluator(prog)(context.Background(), "$TSEnv:IsUEFI -eq 'True'", v)
	if err != nil || !ok {
		t.Fatalf("ok = %v, err = %v", ok, err)
	}
	v.SetInternal("IsUEFI", "False")
	if ok, err := PowerShellEvaluator(prog)(context.Background(), "$TSEnv:IsUEFI", v); err != nil || ok {
		t.Errorf("false condition: ok = %v, err = %v", ok, err)
	}
}
