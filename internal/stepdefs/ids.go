package stepdefs

import (
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Type ids of the built-in step definitions. The first group are DeployR's
// own ids; the second are Imprint's, in the 0000000001XX block.
const (
	TypeSetVariable            = deploy.TypeSetVariable                 // 01
	TypeRunPowerShell          = deploy.TypeRunPowerShell               // 02
	TypeConfigureOS            = "00000001-0000-0000-0000-000000000005" // 05
	TypePrepareOS              = "00000001-0000-0000-0000-000000000006" // 06
	TypeReboot                 = "00000001-0000-0000-0000-000000000007" // 07
	TypeApplyOSFromCloud       = "00000001-0000-0000-0000-000000000008" // 08
	TypeInjectDriversFromCloud = "00000001-0000-0000-0000-000000000009" // 09
	TypeInstallApplication     = "00000001-0000-0000-0000-00000000000b" // 0b
	TypeRunTaskSequence        = deploy.TypeRunTaskSequence             // 0d
	TypeFormatDisk             = "00000001-0000-0000-0000-00000000000e" // 0e
	TypeInstallUpdates         = "00000001-0000-0000-0000-000000000011" // 11
	TypeEnableBranchCache      = "00000001-0000-0000-0000-000000000012" // 12

	TypeRunCommandLine      = "00000001-0000-0000-0000-000000000101"
	TypeRunServerScript     = "00000001-0000-0000-0000-000000000102"
	TypeApplyOS             = "00000001-0000-0000-0000-000000000103"
	TypeApplyChromeOSFlex   = "00000001-0000-0000-0000-000000000104"
	TypeApplyIGEL           = "00000001-0000-0000-0000-000000000105"
	TypeCaptureImage        = "00000001-0000-0000-0000-000000000106"
	TypePrepareForCapture   = "00000001-0000-0000-0000-000000000107"
	TypeEnableAdministrator = "00000001-0000-0000-0000-000000000108"
	TypeOfflineDomainJoin   = "00000001-0000-0000-0000-000000000109"
	TypeInjectDriverPack    = "00000001-0000-0000-0000-00000000010a"
	TypeInjectDrivers       = "00000001-0000-0000-0000-00000000010b"
	TypeInstallMultipleApps = "00000001-0000-0000-0000-00000000010c"
)

// Built-in content items DeployR's own built-in steps point at. Imprint does
// not ship them; references to them validate with a warning.
const (
	ContentDeployRWindows   = "00000000-0000-0000-0000-000000000002:1"
	ContentDeployRBootstrap = "00000000-0000-0000-0000-000000000004:1"
	ContentDeployRManifest  = "00000000-0000-0000-0000-000000000005:1"
)

const (
	builtinPrefix = "00000001-0000-0000-0000-"
	deployrBlock  = builtinPrefix + "0000000000" // + two hex digits
	imprintBlock  = builtinPrefix + "0000000001" // + two hex digits
)

// IsImprintID reports whether id lies in Imprint's own built-in block
// (00000001-0000-0000-0000-0000000001XX). No custom definition may use it.
func IsImprintID(id string) bool { return inBlock(id, imprintBlock) }

// IsDeployRID reports whether id has the shape of a DeployR built-in
// (00000001-0000-0000-0000-0000000000XX). DeployR users have stored custom
// definitions there too (the compat corpus references …0021), so an id in
// this block is not necessarily one of ours.
func IsDeployRID(id string) bool { return inBlock(id, deployrBlock) }

func inBlock(id, prefix string) bool {
	id = strings.ToLower(id)
	if len(id) != len(prefix)+2 || !strings.HasPrefix(id, prefix) {
		return false
	}
	return isHex(id[len(prefix)]) && isHex(id[len(prefix)+1])
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
