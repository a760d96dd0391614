package stepdefs

import (
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// implemented lists the built-ins imprint-agent has a step for (its
// DefaultRegistry, with the disk steps of the boot image) plus Run task
// sequence, which the engine runs itself. A test in internal/agent keeps
// the two in step.
var implemented = []string{
	TypeSetVariable, TypeRunCommandLine, TypeRunPowerShell, TypeInstallApplication, TypeInstallMultipleApps,
	TypeReboot, TypeRunServerScript, TypeRunTaskSequence,
	TypeFormatDisk, TypeApplyOS, TypePrepareOS, TypeApplyChromeOSFlex, TypeApplyIGEL, TypeCaptureImage,
	TypeEnableAdministrator, TypeOfflineDomainJoin, TypeInjectDriverPack, TypeInjectDrivers,
}

// IsImplemented reports whether the agent has its own step for typeID.
func IsImplemented(typeID string) bool {
	for _, id := range implemented {
		if strings.EqualFold(id, typeID) {
			return true
		}
	}
	return false
}

// ScriptOptions returns the options through which a step definition runs
// as a script: the first Script option names the file, the first Content
// option holds it (DeployR's convention for script-backed steps). ok is
// false when the definition has no such pair.
func ScriptOptions(v *deploy.StepDefVersion) (script, content string, ok bool) {
	for _, o := range v.Options {
		switch {
		case o.Type == deploy.OptionScript && script == "":
			script = o.Name
		case o.Type == deploy.OptionContent && content == "":
			content = o.Name
		}
	}
	return script, content, script != "" && content != ""
}

// unsupported are the ids in DeployR's built-in range seen in public
// DeployR material that Imprint does not implement yet, by type id. The
// others seen there (…01, 02, 05–09, 0b, 0d, 0e, 11, 12) are in the
// catalogue. …0021 is referenced by the shared corpus under the name of a
// community step; its definition was never published.
var unsupported = map[string]string{
	"00000001-0000-0000-0000-000000000003": "Run command line (DeployR variant)",
	"00000001-0000-0000-0000-000000000019": "Register with Autopilot",
	"00000001-0000-0000-0000-000000000021": "Customize - Configure Initial Variables",
}

// Unsupported returns the name of a DeployR built-in step type Imprint
// knows of but does not implement yet.
func Unsupported(typeID string) (name string, ok bool) {
	name, ok = unsupported[strings.ToLower(typeID)]
	return name, ok
}

// UnsupportedMessage says why a step of typeID, a DeployR built-in id with
// no definition here, cannot run. Users cannot import DeployR's built-ins,
// so it never suggests doing so.
func UnsupportedMessage(typeID string) string {
	if name, ok := Unsupported(typeID); ok {
		return "DeployR built-in step type " + typeID + " (" + name + ") is not supported by this server yet"
	}
	return "DeployR built-in step type " + typeID + " is not supported by this server"
}

// IsDeployRContent reports whether a content item id is one of DeployR's
// own built-in content items (00000000-0000-0000-0000-…, its PowerShell
// scripts and bootstrap), which Imprint does not ship.
func IsDeployRContent(id string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(id)), "00000000-0000-0000-0000-")
}

// DeployRContentReason says why a step of typeID (its definition named
// name) that references DeployR's built-in content cannot run, or "" when
// it can: a step Imprint's agent implements natively does not need
// DeployR's scripts, any other one runs only from them.
func DeployRContentReason(typeID, name string) string {
	if IsImplemented(typeID) {
		return ""
	}
	return "\"" + name + "\" runs DeployR's own script from DeployR's built-in content, which Imprint does not ship, " +
		"and Imprint's agent has no implementation of it yet"
}
