package agent

import (
	"context"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/app"
	"github.com/imprint-osd/imprint/internal/steps/cmdline"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/steps/powershell"
	"github.com/imprint-osd/imprint/internal/steps/reboot"
	"github.com/imprint-osd/imprint/internal/steps/script"
	"github.com/imprint-osd/imprint/internal/steps/serverscript"
	"github.com/imprint-osd/imprint/internal/steps/setvar"
)

// Deps are what the built-in steps need from the agent.
type Deps struct {
	Source  app.Source          // application content
	Server  serverscript.Server // server-side scripts of the current run
	TempDir string              // inline scripts, variables files
	Agent   string              // the imprint-agent executable (for `var set`)
	Sleep   func(ctx context.Context, d time.Duration) error
	// Disk, when set, adds the disk steps (Format disk, Apply operating
	// system, Prepare operating system, Apply ChromeOS Flex, Apply IGEL
	// image, Capture image).
	Disk *disksteps.Deps
}

// DefaultRegistry returns the built-in steps that work in an installed OS,
// and the disk steps when d.Disk is set.
func DefaultRegistry(d Deps) *sequence.Registry {
	r := &sequence.Registry{}
	r.Register(stepdefs.TypeSetVariable, setvar.Step{})
	r.Register(stepdefs.TypeRunCommandLine, cmdline.Step{})
	r.Register(stepdefs.TypeRunPowerShell, powershell.Step{TempDir: d.TempDir})
	r.Register(stepdefs.TypeInstallApplication, app.Step{Source: d.Source})
	r.Register(stepdefs.TypeInstallMultipleApps, app.Step{Source: d.Source, Multiple: true})
	r.Register(stepdefs.TypeReboot, reboot.Step{Sleep: d.Sleep})
	r.Register(stepdefs.TypeRunServerScript, serverscript.Step{Server: d.Server})
	if d.Disk != nil {
		r.Register(stepdefs.TypeFormatDisk, disksteps.Format{D: d.Disk})
		r.Register(stepdefs.TypeApplyOS, disksteps.ApplyOS{D: d.Disk})
		r.Register(stepdefs.TypePrepareOS, disksteps.PrepareOS{D: d.Disk})
		r.Register(stepdefs.TypeApplyChromeOSFlex, disksteps.WholeDisk{D: d.Disk, What: "ChromeOS Flex"})
		r.Register(stepdefs.TypeApplyIGEL, disksteps.WholeDisk{D: d.Disk, What: "IGEL OS"})
		r.Register(stepdefs.TypeCaptureImage, disksteps.Capture{D: d.Disk})
		r.Register(stepdefs.TypeEnableAdministrator, disksteps.EnableAdmin{})
		r.Register(stepdefs.TypeOfflineDomainJoin, disksteps.OfflineDomainJoin{})
		r.Register(stepdefs.TypeInjectDriverPack, disksteps.InjectDriverPack{D: d.Disk})
		r.Register(stepdefs.TypeInjectDrivers, disksteps.InjectDrivers{D: d.Disk})
	}
	return r
}

// ScriptStepFor returns the step that runs a custom step definition whose
// content holds a script: the first option of type Script names the file,
// the first Content option holds it. ok is false when the definition has
// no such pair.
func ScriptStepFor(v *deploy.StepDefVersion, d Deps) (sequence.Step, bool) {
	scriptOpt, contentOpt, ok := stepdefs.ScriptOptions(v)
	if !ok {
		return nil, false
	}
	return script.Step{ScriptOption: scriptOpt, ContentOption: contentOpt, TempDir: d.TempDir, Agent: d.Agent}, true
}

// passwordOption reports whether option is of type Password in def.
func passwordOption(def *deploy.StepDefVersion, option string) bool {
	if def == nil {
		return false
	}
	for _, o := range def.Options {
		if strings.EqualFold(o.Name, option) {
			return o.Type == deploy.OptionPassword
		}
	}
	return false
}
