package disksteps_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/unattend"
)

func env(vars *sequence.Vars, settings map[string]string) (*sequence.Env, *strings.Builder) {
	var log strings.Builder
	return &sequence.Env{Vars: vars, Settings: settings, Log: &log}, &log
}

func TestWindowsConfigurationSteps(t *testing.T) {
	ctx := context.Background()
	vars := sequence.NewVars()
	e, _ := env(vars, map[string]string{"DomainName": "corp.example.com", "ComputerName": "PC-7"})
	if _, err := (disksteps.OfflineDomainJoin{}).Run(ctx, e); err == nil || !strings.Contains(err.Error(), "OfflineDomainJoinBlob") {
		t.Errorf("no blob: err = %v", err)
	}
	vars.SetInternal("OfflineDomainJoinBlob", "ARAIAMzMzMyQ\r\n")
	if _, err := (disksteps.OfflineDomainJoin{}).Run(ctx, e); err != nil {
		t.Fatal(err)
	}
	if !vars.IsSecret("OfflineDomainJoinBlob") || vars.Value("OSDComputerName") != "PC-7" {
		t.Errorf("blob secret %v, OSDComputerName %q", vars.IsSecret("OfflineDomainJoinBlob"), vars.Value("OSDComputerName"))
	}
	e, _ = env(vars, map[string]string{})
	if _, err := (disksteps.EnableAdmin{}).Run(ctx, e); err == nil || !strings.Contains(err.Error(), "needs a password") {
		t.Errorf("no password: err = %v", err)
	}
	e, log := env(vars, map[string]string{"AdminPassword": "pw-1234"})
	if _, err := (disksteps.EnableAdmin{}).Run(ctx, e); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "pw-1234") || !vars.IsSecret("AdminPassword") {
		t.Errorf("password logged or not secret: %s", log)
	}
	// Prepare's answer file takes all of it.
	vars.SetInternal(disksteps.VarContinueMethod, "2")
	o, err := disksteps.AnswerOptions(&sequence.Env{Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	if o.ComputerName != "PC-7" || o.DomainJoinBlob != "ARAIAMzMzMyQ" || o.AdminPassword != "pw-1234" || o.Method != unattend.SpecializeRunSync {
		t.Errorf("answer options %+v", o)
	}
	// AdminPassword alone (no Enable Administrator step) enables nothing.
	v2 := sequence.NewVars()
	v2.SetInternal("AdminPassword", "x")
	if o, _ := disksteps.AnswerOptions(&sequence.Env{Vars: v2}); o.AdminPassword != "" {
		t.Error("the Administrator is enabled without Enable Administrator account")
	}
	v2.SetInternal(disksteps.VarContinueMethod, "7")
	if _, err := disksteps.AnswerOptions(&sequence.Env{Vars: v2}); err == nil {
		t.Error("ContinueMethod 7 accepted")
	}
}
