package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
)

// TestImplementedMatchesRegistry: what validation on the server believes
// the agent implements is what the agent registers (boot image included).
func TestImplementedMatchesRegistry(t *testing.T) {
	reg := agent.DefaultRegistry(agent.Deps{Disk: &disksteps.Deps{}})
	for _, d := range stepdefs.Builtins() {
		_, registered := reg.Lookup(d.ID)
		if d.ID == stepdefs.TypeRunTaskSequence {
			registered = true // the engine runs it
		}
		if registered != stepdefs.IsImplemented(d.ID) {
			t.Errorf("%s (%s): registered %v, stepdefs.IsImplemented %v", d.Name, d.ID, registered, stepdefs.IsImplemented(d.ID))
		}
	}
}

// TestDryRunMarksWhatCannotRun: against a real server holding DeployR's
// bare-metal export, the dry run marks each step that cannot run here with
// the reason and ends with the count.
func TestDryRunMarksWhatCannotRun(t *testing.T) {
	rs := startRealServer(t, nil)
	rs.setPasscode(t)
	ctx := context.Background()
	shared := filepath.Join("..", "..", "..", "shared", "compat", "deployr")
	importFile(t, filepath.Join(shared, "stepdefinitions", "readiness-checker-7e12116e.json"), func(r *strings.Reader) error {
		_, err := rs.admin.ImportStepDefinition(ctx, r, client.ImportNew)
		return err
	})
	importFile(t, filepath.Join(shared, "contentitems", "custom-step-definitions-scripts-d819ff51.json"), func(r *strings.Reader) error {
		_, err := rs.admin.ImportContentItem(ctx, r, client.ImportNew)
		return err
	})
	importFile(t, filepath.Join(shared, "tasksequences", "windows-bare-metal-from-cloud-github-8770d276.json"), func(r *strings.Reader) error {
		_, _, err := rs.admin.ImportTaskSequence(ctx, r, client.ImportNew)
		return err
	})
	var out syncBuffer
	a := newE2EAgent(t, rs.machine(t), &out)
	a.TS = "8770d276-96ee-4c2b-b8c4-38d4ad54670c"
	a.Vars = map[string]string{"Passcode": e2ePasscode, "ModelAlias": "Virtual Machine"}
	if err := a.Run(ctx, agent.State{}, true); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"CANNOT RUN Customize - Configure Initial Variables  (DeployR built-in step type 00000001-0000-0000-0000-000000000021 (Customize - Configure Initial Variables) is not supported by this server yet)",
		"CANNOT RUN   Pre Reqs/Readiness Checker - VMs  [if ModelAlias equals \"Virtual Machine\"]  (content d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab:1 unresolved: content d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab:1 is awaiting content",
		// Format disk is implemented natively: DeployR's script content it
		// names is not needed. Apply OS from Cloud runs only from it.
		"RUN          Windows PE/Format disk\n",
		"CANNOT RUN   Windows PE/Apply OS from Cloud  (\"Apply operating system from cloud\" runs DeployR's own script from DeployR's built-in content, which Imprint does not ship, and Imprint's agent has no implementation of it yet)",
		"CANNOT RUN   Full OS/Configure new OS  (\"Configure operating system\" runs DeployR's own script",
		"UI Modification/Customize - Configure Default Start Menu Layout  (step definition 49ddc4a3-5ec3-480b-a609-fc380587b20c is not on the server)",
		"OS Configuration/Module - Configure OS/  (child task sequence b09560a1-ae6d-48c2-b3d1-5177ee89a53f:1: ",
		" steps cannot run.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dry run lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "CANNOT RUN   Pre Reqs/Readiness Checker - Physicals") {
		t.Errorf("a step whose condition is false was checked:\n%s", got)
	}
}

// TestDryRunOfInDevelopmentSaysHowToRunIt: a sequence whose only version is
// In_Development is not offered; the agent says why and what to do.
func TestDryRunOfInDevelopmentSaysHowToRunIt(t *testing.T) {
	rs := startRealServer(t, nil)
	rs.setPasscode(t)
	ctx := context.Background()
	shared := filepath.Join("..", "..", "..", "shared", "compat", "deployr")
	importFile(t, filepath.Join(shared, "tasksequences", "module-os-configuration-b09560a1.json"), func(r *strings.Reader) error {
		_, _, err := rs.admin.ImportTaskSequence(ctx, r, client.ImportNew)
		return err
	})
	var out syncBuffer
	a := newE2EAgent(t, rs.machine(t), &out)
	a.TS = "Module - OS Configuration"
	a.Vars = map[string]string{"Passcode": e2ePasscode}
	err := a.Run(ctx, agent.State{}, true)
	if deploy.ErrorKind(err) != deploy.KindNotFound || !strings.Contains(err.Error(), "In_Development") ||
		!strings.Contains(err.Error(), "imprint ts status ID VERSION Active") {
		t.Errorf("err = %v", err)
	}
}

// importFile hands the file's text to imp and fails the test on an error.
func importFile(t *testing.T, path string, imp func(*strings.Reader) error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := imp(strings.NewReader(string(b))); err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
}
