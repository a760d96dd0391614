package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
)

func TestSystemdResumeUnit(t *testing.T) {
	dir := t.TempDir()
	var calls []string
	r := agent.SystemdResume{UnitDir: dir, Systemctl: func(_ context.Context, args ...string) error {
		calls = append(calls, strings.Join(args, " "))
		return nil
	}}
	if err := r.Install(context.Background(), "/usr/local/bin/imprint-agent", "/var/lib/imprint agent"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, agent.ResumeUnitName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nExecStart=/usr/local/bin/imprint-agent resume --state \"/var/lib/imprint agent\"\n") ||
		!strings.Contains(string(b), "WantedBy=multi-user.target") {
		t.Errorf("unit:\n%s", b)
	}
	if err := r.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, agent.ResumeUnitName)); !os.IsNotExist(err) {
		t.Error("unit left after Remove")
	}
	want := []string{"daemon-reload", "enable imprint-agent-resume.service", "disable imprint-agent-resume.service"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("systemctl calls (-want +got):\n%s", diff)
	}
}
