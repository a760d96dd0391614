package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/steps/script"
)

func TestVarSetWritesTheVarsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "vars")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(script.EnvVarsFile, f)
	if err := run(context.Background(), []string{"var", "set", "OSDComputerName", "PC-7"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	got, err := script.ReadVars(f)
	if err != nil || len(got) != 1 || got[0] != [2]string{"OSDComputerName", "PC-7"} {
		t.Fatalf("vars = %v, %v", got, err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage:"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"run"}, "--server is required"},
		{[]string{"run", "--server", "https://x:7281"}, "--ca FILE or --ca-sha256 HEX is required"},
		{[]string{"run", "--server", "https://x:7281", "--ca-sha256", "abc"}, "is not a SHA-256"},
		{[]string{"run", "--var", "novalue"}, `--var "novalue": want NAME=VALUE`},
		{[]string{"var", "set", "A"}, "usage: imprint-agent var set NAME VALUE"},
		{[]string{"resume", "--state", "/nonexistent-imprint"}, "no run to resume"},
	} {
		err := run(context.Background(), tc.args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "imprint-agent ") {
		t.Errorf("version: %q, %v", out.String(), err)
	}
}
