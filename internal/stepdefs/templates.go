package stepdefs

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Template is a ready-made task sequence an admin starts from. Build makes
// a new task sequence (fresh ids, version 1 In_Development) each call.
type Template struct {
	Slug        string
	Name        string
	Description string
	Build       func(now time.Time) *deploy.TaskSequence
}

// Group names DeployR's Windows templates use.
const (
	GroupWinPE  = "Windows PE"
	GroupFullOS = "Full OS"
	GroupLinux  = "Linux"
)

// Templates returns the built-in templates in a stable order. Their steps
// carry every option of the step definition (defaults filled in, as
// DeployR's editor does); content options the admin must choose — the
// Image of Apply operating system, Apply ChromeOS Flex and Apply IGEL image
// — are left empty.
func Templates() []Template {
	return []Template{
		tmpl("windows-bare-metal", "Windows bare metal",
			"Perform a bare metal deployment using your own operating-system image",
			func(b *builder) []deploy.Step {
				return []deploy.Step{
					b.group(GroupWinPE,
						b.step(TypeFormatDisk, "Format disk", nil),
						b.step(TypeApplyOS, "Apply operating system", map[string]string{"ImageFormat": "WIM"}),
						b.step(TypeInjectDrivers, "Inject drivers", nil),
						b.step(TypePrepareOS, "Prepare OS", nil),
						b.step(TypeReboot, "Reboot", map[string]string{"RebootMessage": "Rebooting..."}),
					),
					b.group(GroupFullOS, b.fullOS()...),
				}
			}),
		tmpl("windows-bare-metal-cloud", "Windows bare metal from cloud",
			"Perform a bare metal deployment using a cloud OS image",
			func(b *builder) []deploy.Step {
				return []deploy.Step{
					b.group(GroupWinPE, b.cloudWinPE()...),
					b.group(GroupFullOS, b.fullOS()...),
				}
			}),
		tmpl("windows-build-capture", "Windows build and capture",
			"Install Windows and updates, generalize it and capture a reference image",
			func(b *builder) []deploy.Step {
				return []deploy.Step{
					b.group(GroupWinPE,
						b.step(TypeFormatDisk, "Format disk", nil),
						b.step(TypeApplyOS, "Apply operating system", map[string]string{"ImageFormat": "WIM"}),
						b.step(TypePrepareOS, "Prepare OS", nil),
						b.step(TypeReboot, "Reboot", map[string]string{"RebootMessage": "Rebooting..."}),
					),
					b.group(GroupFullOS,
						b.step(TypeConfigureOS, "Configure new OS", nil),
						b.step(TypeInstallUpdates, "Install updates", nil),
						b.step(TypePrepareForCapture, "Prepare for capture", nil),
						b.step(TypeReboot, "Reboot to boot image", map[string]string{"RebootRequested": "WinPE"}),
					),
					b.group("Capture",
						b.step(TypeCaptureImage, "Capture image", nil),
					),
				}
			}),
		tmpl("autopilot-cloud", "Autopilot from cloud",
			"Deploy Windows from the cloud, register the device with Autopilot and hand it to OOBE",
			func(b *builder) []deploy.Step {
				return []deploy.Step{
					b.group(GroupWinPE, b.cloudWinPE()...),
					b.group(GroupFullOS, b.autopilot()...),
				}
			}),
		tmpl("autopilot-preprovision", "Autopilot pre-provisioning",
			"Deploy Windows from the cloud, pre-install applications, register with Autopilot and reseal to OOBE",
			func(b *builder) []deploy.Step {
				full := append([]deploy.Step{
					b.step(TypeInstallMultipleApps, "Install applications", nil),
				}, b.autopilot()...)
				return []deploy.Step{
					b.group(GroupWinPE, b.cloudWinPE()...),
					b.group(GroupFullOS, full...),
				}
			}),
		tmpl("chromeos-flex", "ChromeOS Flex",
			"Write ChromeOS Flex to the machine's disk from the Linux boot image",
			func(b *builder) []deploy.Step {
				return []deploy.Step{b.group(GroupLinux,
					b.step(TypeApplyChromeOSFlex, "Apply ChromeOS Flex", nil),
					b.step(TypeReboot, "Reboot", nil),
				)}
			}),
		tmpl("igel-12", "IGEL 12",
			"Write IGEL OS 12 to the machine's disk from the Linux boot image",
			func(b *builder) []deploy.Step {
				return []deploy.Step{b.group(GroupLinux,
					b.step(TypeApplyIGEL, "Apply IGEL image", nil),
					b.step(TypeReboot, "Reboot", nil),
				)}
			}),
		tmpl("linux-bare-metal", "Linux bare metal",
			"Partition the disk and apply a raw (optionally zstd-compressed) Linux image",
			func(b *builder) []deploy.Step {
				return []deploy.Step{b.group(GroupLinux,
					b.step(TypeFormatDisk, "Format disk", map[string]string{"Layout": "Linux"}),
					b.step(TypeApplyOS, "Apply operating system", map[string]string{"ImageFormat": "Raw"}),
					b.step(TypePrepareOS, "Prepare operating system", nil),
					b.step(TypeReboot, "Reboot", nil),
				)}
			}),
	}
}

func tmpl(slug, name, desc string, steps func(*builder) []deploy.Step) Template {
	return Template{Slug: slug, Name: name, Description: desc, Build: func(now time.Time) *deploy.TaskSequence {
		b := &builder{now: now.Unix()}
		tsID, verID := uuid.NewString(), uuid.NewString()
		top := steps(b)
		for i := range top {
			top[i].TaskSequenceVersionID = deploy.StrPtr(verID)
		}
		return &deploy.TaskSequence{
			ID:               tsID,
			Name:             name,
			Description:      deploy.StrPtr(desc),
			Architecture:     "Any",
			Tags:             []string{},
			VersionsCount:    1,
			CreatedDate:      b.now,
			LastModifiedDate: b.now,
			Versions: []deploy.TSVersion{{
				ID:               verID,
				TaskSequenceID:   tsID,
				VersionNo:        1,
				Status:           deploy.StatusInDevelopment,
				Description:      deploy.StrPtr(""),
				Tags:             []string{},
				Steps:            top,
				CreatedDate:      b.now,
				LastModifiedDate: b.now,
			}},
		}
	}}
}

// builder makes steps with fresh ids.
type builder struct{ now int64 }

func (b *builder) cloudWinPE() []deploy.Step {
	return []deploy.Step{
		b.step(TypeFormatDisk, "Format disk", nil),
		b.step(TypeApplyOSFromCloud, "Apply OS from Cloud", nil),
		withCondition(b.step(TypeInjectDriversFromCloud, "Inject cloud drivers", nil),
			`{"operator":"and","items":[{"field":"ModelAlias","operator":"notEquals","value":"Virtual Machine"}]}`),
		b.step(TypePrepareOS, "Prepare OS", nil),
		b.step(TypeReboot, "Reboot", map[string]string{"RebootMessage": "Rebooting..."}),
	}
}

func (b *builder) fullOS() []deploy.Step {
	return []deploy.Step{
		b.step(TypeConfigureOS, "Configure new OS", nil),
		b.step(TypeEnableBranchCache, "Enable BranchCache", nil),
		b.step(TypeInstallUpdates, "Install updates", nil),
	}
}

func (b *builder) autopilot() []deploy.Step {
	return []deploy.Step{
		b.step(TypeConfigureOS, "Configure new OS", nil),
		b.step(TypeInstallUpdates, "Install updates", nil),
		b.step(TypeRunServerScript, "Register with Autopilot", map[string]string{"ScriptName": "Register-AutopilotDevice.ps1"}),
		b.step(TypeSetVariable, "Reseal to OOBE", map[string]string{"VariableName": "FinishAction", "VariableValue": "reseal"}),
	}
}

func (b *builder) group(name string, members ...deploy.Step) deploy.Step {
	id := uuid.NewString()
	for i := range members {
		members[i].GroupID = deploy.StrPtr(id)
	}
	return deploy.Step{
		ID:               id,
		Name:             name,
		Description:      deploy.StrPtr(""),
		IsGroup:          true,
		GroupMembers:     members,
		Settings:         map[string]string{},
		ContentItems:     map[string]string{},
		Enabled:          true,
		Condition:        deploy.StrPtr(""),
		CreatedDate:      b.now,
		LastModifiedDate: b.now,
	}
}

// step instantiates a built-in with every option set to its default, then
// applies set. It panics on a programming error in this file (unknown type
// or option), which the tests catch.
func (b *builder) step(typeID, name string, set map[string]string) deploy.Step {
	d, ok := Builtin(typeID)
	if !ok {
		panic(fmt.Sprintf("template step %q: no built-in %s", name, typeID))
	}
	v := d.Latest()
	s := deploy.Step{
		ID:                      uuid.NewString(),
		Name:                    name,
		Description:             deploy.StrPtr(""),
		TypeID:                  deploy.StrPtr(d.ID),
		StepDefinitionVersionID: deploy.StrPtr(v.ID),
		StepDefinitionVersionNo: &v.VersionNo,
		Settings:                map[string]string{},
		ContentItems:            map[string]string{},
		Enabled:                 true,
		Condition:               deploy.StrPtr(""),
		CreatedDate:             b.now,
		LastModifiedDate:        b.now,
	}
	known := map[string]bool{}
	for _, o := range v.Options {
		known[o.Name] = true
		val := deploy.Str(o.DefaultValue)
		if x, ok := set[o.Name]; ok {
			val = x
		}
		if o.IsContent() {
			s.ContentItems[o.Name] = val
		} else {
			s.Settings[o.Name] = val
		}
	}
	for k := range set {
		if !known[k] {
			panic(fmt.Sprintf("template step %q: %s has no option %q", name, d.Name, k))
		}
	}
	return s
}

func withCondition(s deploy.Step, c string) deploy.Step { s.Condition = deploy.StrPtr(c); return s }
