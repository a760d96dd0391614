package script

import (
	"errors"
	"testing"
)

func TestProgram(t *testing.T) {
	none := func(string) (string, error) { return "", errors.New("not found") }
	found := func(p string) (string, error) { return "/usr/bin/" + p, nil }
	for _, tc := range []struct {
		goos, prog string
		look       func(string) (string, error)
		want       string
		wantErr    bool
	}{
		{"windows", "pwsh", none, `D:\Win\System32\WindowsPowerShell\v1.0\powershell.exe`, false},
		{"windows", "pwsh", found, "/usr/bin/pwsh", false},
		{"windows", "python3", none, "", true},
		{"linux", "pwsh", none, "", true},
		{"linux", "sh", found, "/usr/bin/sh", false},
	} {
		got, err := Program(tc.goos, tc.prog, tc.look, `D:\Win`)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Program(%s, %s) = %q, %v", tc.goos, tc.prog, got, err)
		}
	}
}
