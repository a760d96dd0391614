package stepdefs

import (
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Validation rules shared by several options.
const (
	ruleVariableName = `^[A-Za-z_][A-Za-z0-9_.\-]*$`
	ruleRef          = `^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}:[1-9][0-9]*$`
	ruleGUID         = `^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`
	ruleSuccessCodes = `^\s*-?[0-9]+(\s*[,; ]\s*-?[0-9]+)*\s*$`
	ruleFileName     = `^[A-Za-z0-9][A-Za-z0-9 ._-]*$`
	ruleLanguage     = `^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`
	ruleDomain       = `^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`

	// A disk rule is a comma-separated list of "key op value" clauses; the
	// agent picks the first disk matching all of them. Keys: size (bytes or
	// with a K/M/G/T suffix), bus (nvme, sata, scsi, usb, virtio, mmc), model,
	// serial, vendor, rotational; ops: = != < > <= >= and ~ (glob match).
	ruleDisk = `^\s*(size|bus|model|serial|vendor|rotational)\s*(=|!=|<=|>=|<|>|~)\s*[^,]+(,\s*(size|bus|model|serial|vendor|rotational)\s*(=|!=|<=|>=|<|>|~)\s*[^,]+)*$`
)

// continueMethods are the ways the sequence resumes in the applied Windows
// installation (DeployR's Apply OS doc lists four; the numeric values are
// inferred from the "1" seen in exports).
var continueMethods = []string{
	"0", "Custom unattend.xml",
	"1", "SetupComplete.cmd",
	"2", "Specialize RunSynchronous",
	"3", "AutoAdminLogon and RunOnce",
}

func diskSelection() []opt {
	return []opt{
		number("DiskIndex", "Disk index", "Index of the target disk (0 is the first); ignored when a disk rule is set").withDefault("0"),
		text("DiskRule", "Disk rule", "Pick the disk by rule instead of index, e.g. \"bus=nvme,size>=100G\"").
			validate(ruleDisk, "disk rule must be comma-separated clauses like size>=100G, bus=nvme or model~Samsung*"),
	}
}

// catalogue lists every built-in in a stable order.
func catalogue() []def {
	return []def{
		{TypeSetVariable, "ba5a045d-2392-4ad1-f8ba-08dc9ff6a5e9", "Set variable", "General",
			"Sets a task-sequence variable; the value may reference other variables as %NAME%.", []opt{
				text("VariableName", "Variable name", "Name of the variable to set").required().
					validate(ruleVariableName, "variable names start with a letter or _ and use letters, digits, _ . -"),
				text("VariableValue", "Variable value", "Value to assign"),
			}},
		{TypeRunCommandLine, ourVersion(TypeRunCommandLine), "Run command line", "General",
			"Runs a command line, optionally from a content item's folder.", []opt{
				text("CommandLine", "Command line", "Command to run").required(),
				text("WorkingDirectory", "Working directory", "Directory to run in; defaults to the content folder, if any"),
				content("Content", "Content", "Content item expanded before the command runs", deploy.PurposeOther),
				text("SuccessCodes", "Success codes", "Exit codes that mean success").withDefault("0").
					validate(ruleSuccessCodes, "success codes must be whole numbers separated by commas"),
				number("Timeout", "Timeout (minutes)", "Fail the step after this many minutes; 0 waits forever").withDefault("60"),
			}},
		{TypeRunPowerShell, "5f666533-9e61-407c-f8bb-08dc9ff6a5e9", "Run PowerShell script", "General",
			"Runs an inline PowerShell script or a script file from a content item.", []opt{
				script("Script", "Script", "Inline PowerShell script; used when no script name is given"),
				script("ScriptName", "Script name", "Script file inside the content item"),
				text("Parameters", "Parameters", "Parameters passed to the script"),
				number("Timeout", "Timeout (minutes)", "Fail the step after this many minutes").withDefault("15"),
				content("Content", "Content", "Content item holding the script; its folder is the working directory", deploy.PurposeOther),
			}},
		{TypeRunTaskSequence, "3fb5489a-856e-468e-89df-b64643868e22", "Run task sequence", "General",
			"Runs another task sequence inline.", []opt{
				text("childTaskSequenceId", "Task sequence", "Task sequence to run, as id:version").required().
					validate(ruleRef, "must be a task sequence reference of the form guid:version"),
			}},
		{TypeRunServerScript, ourVersion(TypeRunServerScript), "Run server-side script", "General",
			"Runs a script from the server's scripts folder with the sequence's variables; objects it returns become variables.", []opt{
				text("ScriptName", "Script name", "File name in the server's scripts folder").required().
					validate(ruleFileName, "script name must be a plain file name without a path"),
				number("Timeout", "Timeout (minutes)", "Fail the step after this many minutes").withDefault("5"),
			}},
		{TypeReboot, "df9e5075-5038-4462-87ae-e46b12907570", "Reboot", "General",
			"Restarts the machine and resumes the sequence afterwards.", []opt{
				dropdown("RebootRequested", "Restart into", "Where the machine boots next",
					"HD", "The installed operating system", "WinPE", "The boot image").withDefault("HD").required(),
				text("RebootMessage", "Message", "Message shown before restarting"),
				number("RebootDelay", "Delay (seconds)", "Seconds to wait before restarting").withDefault("0"),
				scriptName("Reboot.ps1"), deployrContent(),
			}},
		{TypeFormatDisk, "1b0e136e-9ef2-4702-84b4-36aa68a32dff", "Format disk", "Disk",
			"Partitions and formats the target disk for the operating system.", append(diskSelection(),
				dropdown("Layout", "Layout", "Partition layout to create",
					"Windows", "Windows (EFI, MSR, Windows, Recovery)", "Linux", "Linux (EFI, root)").withDefault("Windows"),
				dropdown("PartitionStyle", "Partition style", "Partition table type; Auto picks GPT on UEFI and MBR on BIOS",
					"Auto", "Auto", "GPT", "GPT", "MBR", "MBR").withDefault("Auto"),
				boolean("AllowRemovable", "Allow removable disks", "Let the disk rule or index select USB and other removable disks", false),
				scriptName("Format.ps1"), deployrContent(),
			)},
		{TypeApplyOS, ourVersion(TypeApplyOS), "Apply operating system", "Operating system",
			"Applies an operating-system image to the formatted disk.", []opt{
				content("Image", "Image", "Operating-system image to apply", deploy.PurposeOperatingSystem).required(),
				number("ImageIndex", "Image index", "Index of the image inside a WIM").withDefault("1"),
				dropdown("ImageFormat", "Image format", "Format of the image; Auto detects it",
					"Auto", "Auto", "WIM", "WIM", "Raw", "Raw disk image (optionally zstd-compressed)", "Tar", "Tar archive").withDefault("Auto"),
				text("TargetPartition", "Target partition", "Partition to apply to; empty uses the one Format disk created"),
				boolean("VerifyWrite", "Read back and compare", "After writing a raw image, read it back from the disk and compare (slower; catches disks that lose writes). The image's SHA-256 is always checked", false),
				boolean("Multicast", "Join a multicast session", "Receive the image from the multicast session started for it (imprint multicast start) when one is waiting; what the session loses, or a machine that comes too late, is downloaded by unicast. The SHA-256 is checked either way", false),
				content("Unattend", "Unattend file", "Custom unattend.xml (Windows)", deploy.PurposeOther),
				dropdown("ContinueMethod", "Continuation method", "How the sequence resumes in the new Windows installation",
					continueMethods...).withDefault("1"),
			}},
		{TypeApplyOSFromCloud, "c7080de9-f4c3-465f-88c0-96b550217dc5", "Apply operating system from cloud", "Operating system",
			"Downloads Windows from Microsoft's catalogue and applies it.", []opt{
				dropdown("OS", "Operating system", "Windows release", "Windows 11", "Windows 11", "Windows 10", "Windows 10").withDefault("Windows 11").required(),
				text("Version", "Version", "Feature update, e.g. 24H2").withDefault("24H2").required(),
				text("Edition", "Edition", "Edition, e.g. Enterprise, Education, Professional").withDefault("Enterprise").required(),
				dropdown("Architecture", "Architecture", "Processor architecture", "x64", "x64", "arm64", "ARM64").withDefault("x64").required(),
				text("LanguageCode", "Language", "Language code, e.g. en-us").withDefault("en-us").required().
					validate(ruleLanguage, "language must be a code like en-us"),
				dropdown("ContinueMethod", "Continuation method", "How the sequence resumes in the new Windows installation",
					continueMethods...).withDefault("1"),
				content("Manifest", "Manifest", "Catalogue of cloud images", deploy.PurposeOther).withDefault(ContentDeployRManifest).required().hidden(),
				scriptName("ApplyWU.ps1"), deployrContent(),
			}},
		{TypeApplyChromeOSFlex, ourVersion(TypeApplyChromeOSFlex), "Apply ChromeOS Flex", "Operating system",
			"Writes a ChromeOS Flex image to the whole target disk.", append([]opt{
				content("Image", "Image", "ChromeOS Flex image (raw .bin, optionally zstd-compressed)", deploy.PurposeOperatingSystem).required(),
				boolean("VerifyWrite", "Read back and compare", "Read the written image back from the disk and compare (slower)", false),
			}, diskSelection()...)},
		{TypeApplyIGEL, ourVersion(TypeApplyIGEL), "Apply IGEL image", "Operating system",
			"Writes an IGEL OS 12 image to the whole target disk.", append([]opt{
				content("Image", "Image", "IGEL OS image (raw, optionally zstd-compressed)", deploy.PurposeOperatingSystem).required(),
				boolean("VerifyWrite", "Read back and compare", "Read the written image back from the disk and compare (slower)", false),
			}, diskSelection()...)},
		{TypeCaptureImage, ourVersion(TypeCaptureImage), "Capture image", "Operating system",
			"Captures a partition into a new version of an operating-system content item.", []opt{
				text("Source", "Source", "Partition to capture; empty captures the operating-system partition"),
				dropdown("Compression", "Compression", "Compression of the captured image",
					"LZX", "LZX (WIM)", "XPRESS", "XPRESS (WIM)", "LZMS", "LZMS (WIM)", "None", "None", "Zstd", "zstd (raw image)").withDefault("LZX"),
				text("TargetContentItem", "Target content item", "Id of the content item that receives the new version; empty creates a new item").
					validate(ruleGUID, "target content item must be a content item id (GUID)"),
			}},
		{TypePrepareForCapture, ourVersion(TypePrepareForCapture), "Prepare for capture", "Operating system",
			"Generalizes the installed operating system (sysprep) so it can be captured.", []opt{
				boolean("Generalize", "Generalize", "Run sysprep /generalize", true),
			}},
		{TypePrepareOS, "bf2ba180-b81f-493d-9394-22552bc0900a", "Prepare operating system", "Operating system",
			"Makes the applied operating system bootable and stages the agent so the sequence continues after the reboot.", []opt{
				content("Bootstrap", "Bootstrap", "Bootstrap that restarts the agent in the new OS", deploy.PurposeOther).
					withDefault(ContentDeployRBootstrap).required().hidden(),
				scriptName("Prepare.ps1"), deployrContent(),
			}},
		{TypeConfigureOS, "239c25a5-4760-4c97-bb85-575293799830", "Configure operating system", "Operating system",
			"First step in the new operating system: finishes its configuration.", []opt{
				boolean("ImportRootCerts", "Import root certificates", "Import the boot image's root certificates into the new OS", true),
				scriptName("Configure.ps1"), deployrContent(),
			}},
		{TypeEnableAdministrator, ourVersion(TypeEnableAdministrator), "Enable Administrator account", "Configuration",
			"Enables the built-in local Administrator account.", []opt{
				password("AdminPassword", "Password", "Password to set; empty uses the AdminPassword variable"),
			}},
		{TypeOfflineDomainJoin, ourVersion(TypeOfflineDomainJoin), "Offline domain join", "Configuration",
			"Joins the new installation to Active Directory without contacting a domain controller.", []opt{
				text("DomainName", "Domain", "DNS name of the domain").required().
					validate(ruleDomain, "domain must be a DNS name like corp.example.com"),
				text("OU", "Organizational unit", "Distinguished name of the OU; empty uses the default computers container"),
				text("ComputerName", "Computer name", "Name of the computer account").withDefault("%OSDComputerName%"),
			}},
		{TypeEnableBranchCache, "24300018-79bf-41fb-a57a-1f4dfbbc6cc6", "Enable BranchCache", "Configuration",
			"Enables BranchCache in the new OS so the machine can serve content to peers.", []opt{
				boolean("CacheBootFiles", "Cache boot files", "Keep the boot files in the cache for peers", true),
				number("BCPort", "Port", "BranchCache listen port").withDefault("1337"),
				boolean("ServeOnBattery", "Serve on battery", "Serve peers while on battery", true),
				number("TTL", "Time to live (days)", "Days content stays in the cache").withDefault("180"),
				scriptName("BranchCache.ps1"), deployrContent(),
			}},
		{TypeInjectDriverPack, ourVersion(TypeInjectDriverPack), "Inject driver pack", "Drivers",
			"Injects a chosen driver pack into the applied operating system.", []opt{
				content("DriverPack", "Driver pack", "Driver pack to inject", deploy.PurposeDriverPack).required(),
			}},
		{TypeInjectDrivers, ourVersion(TypeInjectDrivers), "Inject drivers", "Drivers",
			"Picks the driver pack matching the machine's make and model and injects it.", nil},
		{TypeInjectDriversFromCloud, "dd5b9182-e7b6-4245-a94f-b93f4d2be22e", "Inject drivers from cloud", "Drivers",
			"Downloads the OEM driver pack for the machine's model and injects it.", []opt{
				scriptName("CloudDrivers.ps1"), deployrContent(),
			}},
		{TypeInstallApplication, "ce516c5d-c3f5-43cd-90f4-d8610ac7fff3", "Install application", "Applications",
			"Installs an application content item with its installation command line.", []opt{
				content("Application", "Application", "Application to install", deploy.PurposeApplication).required(),
				scriptName("InstallApp.ps1"), deployrContent(),
			}},
		{TypeInstallMultipleApps, ourVersion(TypeInstallMultipleApps), "Install multiple applications", "Applications",
			"Installs several applications in order: those listed here, then those in the list variable.", []opt{
				contentList("Applications", "Applications", "Applications to install", deploy.PurposeApplication),
				text("BaseVariableName", "List variable", "Variable list holding more applications as id:version").withDefault("Applications").
					validate(ruleVariableName, "variable names start with a letter or _ and use letters, digits, _ . -"),
			}},
		{TypeInstallUpdates, "55afbc35-7df4-465c-8b72-8e8261a55c00", "Install updates", "Applications",
			"Installs Windows updates in the new operating system.", []opt{
				boolean("MicrosoftUpdate", "Microsoft Update", "Use Microsoft Update (other Microsoft products too)", true),
				boolean("Updates", "Updates", "Install software updates", true),
				boolean("Drivers", "Drivers", "Install driver updates", false),
				scriptName("WindowsUpdate.ps1"), deployrContent(),
			}},
	}
}

// Builtins returns fresh copies of every built-in step definition, in a
// stable order.
func Builtins() []*deploy.StepDefinition {
	c := catalogue()
	out := make([]*deploy.StepDefinition, len(c))
	for i, d := range c {
		out[i] = d.full()
	}
	return out
}

// Builtin returns a fresh copy of the built-in with the given type id
// (case-insensitive).
func Builtin(id string) (*deploy.StepDefinition, bool) {
	for _, d := range catalogue() {
		if strings.EqualFold(d.id, id) {
			return d.full(), true
		}
	}
	return nil, false
}
