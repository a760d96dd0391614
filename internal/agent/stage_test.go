package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

func TestStageResumeIntoDirectoryTree(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	exe := filepath.Join(t.TempDir(), "imprint-agent")
	if err := os.WriteFile(exe, []byte("#!agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(state, "agent.json"), `{"server":"https://s","runId":"r1","taskSequenceId":"ts","versionNo":2,"name":"n","bootImage":true}`)
	write(filepath.Join(state, "journal.json"), `{"format":1}`)
	write(filepath.Join(state, "logs", "imprint-agent.log"), "line\n")

	var mounted, unmounted []string
	r := agent.BootImageResume{Mount: func(spec, _ string) (string, func() error, error) {
		mounted = append(mounted, spec)
		return root, func() error { unmounted = append(unmounted, spec); return nil }, nil
	}}
	vars := sequence.NewVars()
	vars.SetInternal("OSPartition", "/dev/vda2")
	if err := r.InstallVars(context.Background(), vars, exe, state); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"/dev/vda2"}, {"/dev/vda2"}}, [][]string{mounted, unmounted}); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/local/sbin/imprint-agent")); err != nil || string(b) != "#!agent" {
		t.Errorf("staged agent: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/local/sbin/imprint-agent")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("staged agent is not executable: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "var/lib/imprint-agent/logs/imprint-agent.log")); err != nil || string(b) != "line\n" {
		t.Errorf("staged log: %q %v", b, err)
	}
	st, err := agent.LoadState(filepath.Join(root, "var/lib/imprint-agent"))
	if err != nil {
		t.Fatal(err)
	}
	if st.BootImage || st.RunID != "r1" {
		t.Errorf("staged state = %+v, want run r1 outside the boot image", st)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", agent.ResumeUnitName))
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/local/sbin/imprint-agent resume --state /var/lib/imprint-agent\n") {
		t.Errorf("unit: %v\n%s", err, unit)
	}
	link, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants", agent.ResumeUnitName))
	if err != nil || link != "/etc/systemd/system/"+agent.ResumeUnitName {
		t.Errorf("enable symlink = %q, %v", link, err)
	}

	if err := r.InstallVars(context.Background(), sequence.NewVars(), exe, state); err == nil || !strings.Contains(err.Error(), "OSPartition") {
		t.Errorf("without OSPartition: err = %v", err)
	}
}

func TestLastReboot(t *testing.T) {
	reboot := func(id string) deploy.Step { return deploy.Step{ID: id, Name: id, Enabled: true} }
	off := func(s deploy.Step) deploy.Step { s.Enabled = false; return s }
	grp := func(id string, m ...deploy.Step) deploy.Step {
		return deploy.Step{ID: id, Name: id, Enabled: true, IsGroup: true, GroupMembers: m}
	}
	tests := []struct {
		name  string
		steps []deploy.Step
		done  []string
		want  bool
	}{
		{"reboot last", []deploy.Step{reboot("a"), reboot("r")}, []string{"a", "r"}, true},
		{"step after", []deploy.Step{reboot("r"), reboot("b")}, []string{"r"}, false},
		{"only disabled after", []deploy.Step{reboot("r"), off(reboot("b"))}, []string{"r"}, true},
		{"in a group, group sibling after", []deploy.Step{grp("g", reboot("r"), reboot("x"))}, []string{"g/r"}, false},
		{"in a group, nothing after", []deploy.Step{grp("g", reboot("a"), reboot("r")), grp("h", off(reboot("y")))}, []string{"g/a", "g/r"}, true},
		{"group after", []deploy.Step{reboot("r"), grp("h", reboot("y"))}, []string{"r"}, false},
		{"skipped group counted done", []deploy.Step{reboot("r"), grp("h", reboot("y"))}, []string{"r", "h"}, true},
		{"ids from position", []deploy.Step{{Name: "r", Enabled: true}, {Name: "z", Enabled: true}}, []string{"#1"}, false},
		{"disabled group after", []deploy.Step{reboot("r"), off(grp("h", grp("i", reboot("y"))))}, []string{"r"}, true},
		{"done outer group covers its nested groups", []deploy.Step{reboot("r"), grp("h", grp("i", reboot("y")))}, []string{"r", "h"}, true},
		{"two deep after", []deploy.Step{grp("g", reboot("r")), grp("h", grp("i", reboot("y")))}, []string{"g/r"}, false},
		{"two deep, done", []deploy.Step{grp("h", grp("i", reboot("y"), reboot("r")))}, []string{"h/i/y", "h/i/r"}, true},
	}
	for _, tt := range tests {
		done := map[string]bool{}
		for _, d := range tt.done {
			done[d] = true
		}
		if got := agent.LastReboot(tt.steps, done); got != tt.want {
			t.Errorf("%s: LastReboot = %v, want %v", tt.name, got, tt.want)
		}
	}
}
