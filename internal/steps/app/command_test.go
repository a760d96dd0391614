package app

import (
	"fmt"
	"github.com/imprint-osd/imprint/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWindowsInstallCommands pins what Windows runs for an application
// (it cannot run here): .msi packages through msiexec with a verbose log,
// anything else through cmd.exe as the administrator typed it.
func TestWindowsInstallCommands(t *testing.T) {
	one := t.TempDir()
	if err := os.WriteFile(filepath.Join(one, "App Setup.msi"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	two := t.TempDir()
	for _, n := range []string{"a.msi", "b.MSI"} {
		if err := os.WriteFile(filepath.Join(two, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ name, line, content string }{
		{"msi program", `7z2600-x64.msi`, ""},
		{"quoted msi with properties", `"My App.msi" TRANSFORMS=corp.mst ALLUSERS=1`, ""},
		{"no line, one msi in the folder", "", one},
		{"exe", `setup.exe /S /v"/qn REBOOT=ReallySuppress"`, ""},
		{"msiexec typed by the admin", `msiexec.exe /i "7z2600-x64.msi" /quiet /norestart`, ""},
	}
	var b strings.Builder
	for _, tc := range cases {
		in, err := InstallCommand("windows", tc.line, tc.content, `C:\ProgramData\Imprint\state\logs\`, "aaaaaaaa-0000-0000-0000-000000000001-1")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fmt.Fprintf(&b, "%s:\n  program: %s\n  cmdline: %s\n", tc.name, in.Cmd.Path, in.Cmd.CmdLine)
	}
	golden.Check(t, "windows-install.golden", []byte(b.String()))

	for _, tc := range []struct{ goos, line, content, wantErr string }{
		{"windows", "", two, "the content is not one .msi package"},
		{"windows", "", "", "no installation command line"},
		{"linux", "app.msi", "", "installs only on Windows"},
	} {
		if _, err := InstallCommand(tc.goos, tc.line, tc.content, "/tmp", "x"); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s %q: err = %v, want %q", tc.goos, tc.line, err, tc.wantErr)
		}
	}
}

func TestRebootCodes(t *testing.T) {
	for _, tc := range []struct {
		goos string
		code int
		want bool
	}{
		{"windows", 3010, true}, {"windows", 1641, true}, {"windows", 194, false}, {"windows", 0, false},
		{"linux", 3010, true}, {"linux", 194, true}, {"linux", 1641, false}, {"linux", 1, false},
	} {
		if got := RebootCode(tc.goos, tc.code); got != tc.want {
			t.Errorf("RebootCode(%s, %d) = %v", tc.goos, tc.code, got)
		}
	}
}
