package powershell

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/imprint-osd/imprint/internal/golden"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

func env(settings map[string]string, vars map[string]string) *sequence.Env {
	v := sequence.NewVars()
	for k, val := range vars {
		v.SetInternal(k, val)
	}
	return &sequence.Env{Vars: v, Settings: settings, Content: map[string]string{}, Log: &bytes.Buffer{},
		Step: &deploy.Step{Name: "test", ContentItems: map[string]string{}}}
}

// TestWindowsCommands pins the command lines Windows runs (it cannot run
// here): Windows PowerShell 5.1 by default, pwsh when asked for by the
// option or the variable, Parameters passed as typed.
func TestWindowsCommands(t *testing.T) {
	pwshAt := func(string) (string, error) { return `C:\Program Files\PowerShell\7\pwsh.exe`, nil }
	cases := []struct {
		name     string
		settings map[string]string
		vars     map[string]string
	}{
		{"default", map[string]string{"Timeout": "15"}, nil},
		{"parameters", map[string]string{"Parameters": `-Name "Jane Doe" -Force`}, nil},
		{"option 7", map[string]string{VersionSetting: "7"}, nil},
		{"variable pwsh", nil, map[string]string{VersionSetting: "pwsh"}},
		{"option 5.1 over variable", map[string]string{VersionSetting: "5.1"}, map[string]string{VersionSetting: "7"}},
	}
	var b strings.Builder
	for _, tc := range cases {
		s := Step{GOOS: "windows", SystemRoot: `C:\Windows`, LookPath: pwshAt}
		c, err := s.Command(env(tc.settings, tc.vars), `C:\ProgramData\Imprint\state\tmp\imprint-1.ps1`, `C:\ProgramData\Imprint\state\content\x`)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fmt.Fprintf(&b, "%s:\n  program: %s\n  cmdline: %s\n  timeout: %s\n", tc.name, c.Path, c.CmdLine, c.Timeout)
	}
	golden.Check(t, "windows-commands.golden", []byte(b.String()))
}

func TestProgramChoice(t *testing.T) {
	none := func(string) (string, error) { return "", errors.New("not found") }
	tests := []struct {
		goos, version string
		look          func(string) (string, error)
		want, wantErr string
	}{
		{goos: "windows", want: `D:\Win\System32\WindowsPowerShell\v1.0\powershell.exe`, look: none},
		{goos: "windows", version: "7", look: none, wantErr: ErrNoPwsh.Error()},
		{goos: "linux", look: none, wantErr: ErrNoPwsh.Error()},
		{goos: "linux", version: "5.1", wantErr: "Windows PowerShell exists only on Windows"},
		{goos: "windows", version: "6", wantErr: "want 5.1 (Windows PowerShell) or 7 (pwsh)"},
		{goos: "linux", look: func(string) (string, error) { return "/usr/bin/pwsh", nil }, want: "/usr/bin/pwsh"},
	}
	for _, tc := range tests {
		got, err := Step{GOOS: tc.goos, SystemRoot: `D:\Win\`, LookPath: tc.look}.program(tc.version)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s %q: err = %v, want %q", tc.goos, tc.version, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %q = %q, %v; want %q", tc.goos, tc.version, got, err, tc.want)
		}
	}
}
