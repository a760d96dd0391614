package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
	"github.com/imprint-osd/imprint/internal/sequence"
)

const compatDir = "../../../shared/compat/deployr/tasksequences"

// compatLoader serves the compat task sequences by id.
type compatLoader map[string]*deploy.TaskSequence

func (l compatLoader) TaskSequence(_ context.Context, ref deploy.Ref) (*deploy.TSVersion, error) {
	ts, ok := l[strings.ToLower(ref.ID)]
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "task sequence %s not found", ref)
	}
	v, ok := ts.Version(ref.VersionNo)
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "task sequence %s not found", ref)
	}
	return v, nil
}

func loadCompat(t *testing.T) compatLoader {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(compatDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("compat corpus not found at %s (../shared must sit beside the repository): %v", compatDir, err)
	}
	l := compatLoader{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := deployrjson.DecodeTaskSequence(fh, 64<<20)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		l[strings.ToLower(ts.ID)] = ts
	}
	return l
}

func TestDryRunPlanOnCompatSequences(t *testing.T) {
	l := loadCompat(t)
	const (
		refresh   = "80e8121b-c426-4bb9-866e-faf06af2c398"
		bareMetal = "8770d276-96ee-4c2b-b8c4-38d4ad54670c"
	)
	tests := map[string]struct {
		ts   string
		vars map[string]string
		want map[string]string // path -> action (only the paths listed are checked)
	}{
		"refresh from installed Linux": {ts: refresh, vars: map[string]string{"OSVERSION": "Linux"}, want: map[string]string{
			"In-place Refresh":                     agent.PlanRun,
			"In-place Refresh/Set Deployment Type": agent.PlanRun,
			"In-place Refresh/Suspend BitLocker":   agent.PlanUnknown,
			"In-place Refresh/Reboot":              agent.PlanRun,
			// DeploymentType is REFRESH now, but OSVERSION is not WinPE.
			"Prepare Refresh Scenario": agent.PlanSkip,
		}},
		"refresh resumed in the boot image": {ts: refresh, vars: map[string]string{"OSVERSION": "WinPE", "DeploymentType": "REFRESH"}, want: map[string]string{
			"In-place Refresh":                     agent.PlanSkip,
			"In-place Refresh/Set Deployment Type": agent.PlanSkip,
			"In-place Refresh/Reboot":              agent.PlanSkip,
			"Prepare Refresh Scenario":             agent.PlanRun,
		}},
		"refresh in the boot image without the variable": {ts: refresh, vars: map[string]string{"OSVERSION": "WinPE"}, want: map[string]string{
			"In-place Refresh":         agent.PlanSkip,
			"Prepare Refresh Scenario": agent.PlanSkip,
		}},
		"bare metal on Hyper-V": {ts: bareMetal, vars: map[string]string{"MakeAlias": "Microsoft", "ModelAlias": "Virtual Machine"}, want: map[string]string{
			"Pre Reqs/Readiness Checker - VMs":                        agent.PlanRun,
			"Pre Reqs/Readiness Checker - Physicals":                  agent.PlanSkip,
			"Windows PE/Drivers":                                      agent.PlanSkip,
			"Windows PE/Drivers/Inject cloud drivers":                 agent.PlanSkip,
			"OEM Tools (Non-VMs)":                                     agent.PlanSkip,
			"OEM Tools (Non-VMs)/Dell":                                agent.PlanSkip,
			"OS Configuration/Module - Configure OS":                  agent.PlanRun,
			"OS Configuration/Module - Configure OS/Set-HyperVName":   agent.PlanRun,
			"OS Configuration/Module - Configure OS/Set-ComputerName": agent.PlanSkip,
		}},
		"bare metal on a Dell": {ts: bareMetal, vars: map[string]string{"Make": "Dell Inc.", "MakeAlias": "Dell", "ModelAlias": "Latitude 7440"}, want: map[string]string{
			"Pre Reqs/Readiness Checker - VMs":                        agent.PlanSkip,
			"Pre Reqs/Readiness Checker - Physicals":                  agent.PlanRun,
			"Windows PE/Drivers":                                      agent.PlanRun,
			"OEM Tools (Non-VMs)":                                     agent.PlanRun,
			"OEM Tools (Non-VMs)/Dell":                                agent.PlanRun,
			"OEM Tools (Non-VMs)/HP":                                  agent.PlanSkip,
			"OS Configuration/Module - Configure OS/Set-HyperVName":   agent.PlanSkip,
			"OS Configuration/Module - Configure OS/Set-ComputerName": agent.PlanRun,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, _ := l.TaskSequence(context.Background(), deploy.Ref{ID: tc.ts, VersionNo: 1})
			plan, err := agent.Plan(context.Background(), v, sequence.VarsFrom(tc.vars), l)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range plan {
				if _, ok := tc.want[s.Path]; ok {
					got[s.Path] = s.Action
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				var buf bytes.Buffer
				agent.PrintPlan(&buf, plan)
				t.Errorf("actions (-want +got):\n%s\nplan:\n%s", diff, buf.String())
			}
		})
	}
}

func TestPrintPlan(t *testing.T) {
	l := loadCompat(t)
	v, _ := l.TaskSequence(context.Background(), deploy.Ref{ID: "80e8121b-c426-4bb9-866e-faf06af2c398", VersionNo: 1})
	plan, err := agent.Plan(context.Background(), v, sequence.VarsFrom(map[string]string{"OSVERSION": "Linux"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	agent.PrintPlan(&buf, plan)
	want := `RUN        In-place Refresh/  [if OSVERSION notEquals "WinPE"]
RUN          In-place Refresh/Set Deployment Type
UNKNOWN      In-place Refresh/Suspend BitLocker  [if PowerShell: get-ciminstance`
	if !strings.HasPrefix(buf.String(), want) {
		t.Errorf("plan:\n%s\nwant prefix:\n%s", buf.String(), want)
	}
	if !strings.Contains(buf.String(), `SKIP       Prepare Refresh Scenario  [if DeploymentType equals "REFRESH" and OSVERSION equals "WinPE"]  (condition is false)`) {
		t.Errorf("plan lacks the skipped step with its condition:\n%s", buf.String())
	}
}
