//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// The machine's SMBIOS make and model. gather reports MakeAlias "QEMU"
// (the make holds "qemu") and ModelAlias the product, so only the alias
// pair (MAKEALIAS+MODELALIAS) matches the driver pack below: its
// Manufacturer is "QEMU", not the make.
const (
	winMake  = "Imprint QEMU Lab"
	winModel = "Imprint E2E PC"
	// Canaries: the Administrator password (a secret variable) must not be
	// anywhere on the disk in clear, nor the passcode.
	adminCanary  = "Canary-Admin-Secret-7391"
	computerName = "IMPRINT-E2E"
)

var reArrangeFailed = regexp.MustCompile(`Cannot arrange to continue[^\r\n]*\r?\n`)

// winPESteps are the leaf steps of the Windows PE group as the run record
// lists them up to the reboot into Windows.
var winPESteps = []string{"Set computer name", "Enable Administrator account", "Format disk", "Apply operating system",
	"Inject drivers", "Prepare OS", "Reboot"}

// addWinPESteps puts a Set variable (OSDComputerName) and Enable
// Administrator account (its password a secret) at the start of the
// template's Windows PE group.
func addWinPESteps(steps []deploy.Step) []deploy.Step {
	for i := range steps {
		g := &steps[i]
		if !g.IsGroup || g.Name != stepdefs.GroupWinPE {
			continue
		}
		mk := func(typeID, name string, settings map[string]string) deploy.Step {
			return deploy.Step{ID: uuid.NewString(), Name: name, Description: deploy.StrPtr(""), GroupID: deploy.StrPtr(g.ID),
				TypeID: deploy.StrPtr(typeID), Settings: settings, ContentItems: map[string]string{}, Enabled: true, Condition: deploy.StrPtr("")}
		}
		g.GroupMembers = append([]deploy.Step{
			mk(stepdefs.TypeSetVariable, "Set computer name", map[string]string{"VariableName": "OSDComputerName", "VariableValue": computerName}),
			mk(stepdefs.TypeEnableAdministrator, "Enable Administrator account", map[string]string{"AdminPassword": adminCanary}),
		}, g.GroupMembers...)
	}
	return steps
}

// TestWindowsBareMetal deploys Windows from the Linux boot image: an empty
// UEFI machine network-boots, takes the passcode and runs the "Windows
// bare metal" template with a synthetic install.wim (Windows' boot layout,
// hives made with hivex, a bootmgfw.efi that prints a marker) and a driver
// pack chosen by Inject drivers through DeployR's alias rule. After the
// reboot the firmware starts \EFI\Microsoft\Boot\bootmgfw.efi from the
// Boot#### entry the agent wrote to efivars, which prints the marker and
// powers off. The host then checks the disk with tools of its own.
func TestWindowsBareMetal(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	needTools(t, "wimlib-imagex", "ntfsls", "ntfscat", "hivexml", "hivexsh", "mcopy", "grub-mkstandalone")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	img := e.buildWindowsImage(ctx)
	imageID := e.uploadImage(ctx, "e2e Windows", img.WIM)
	e.uploadDriverPack(ctx, "QEMU", winModel)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequenceEdit(ctx, "windows-bare-metal", "E2E Windows", imageID, nil, addWinPESteps)
	t.Logf("image, driver pack and task sequence ready at %.1fs", time.Since(start).Seconds())

	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "windows", Firmware: UEFI, Disk: disk, DiskSize: 3 << 30,
		SMBIOS: []string{"type=1,manufacturer=" + winMake + ",product=" + winModel}})
	c := vm.Console
	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	t.Logf("passcode accepted at %.1fs", c.Elapsed().Seconds())
	for done := false; !done; {
		i, m, err := c.ExpectFirst(ctx, reWindowsBoot, reFailed, rePanic, rePicker, rePasscode, reArrangeFailed)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			done = true
		case 3:
			n, err := pickerChoice(m, ts.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Send(n + "\r"); err != nil {
				t.Fatal(err)
			}
		case 4:
			t.Fatal("agent asked for the passcode again: the right passcode was refused")
		default:
			t.Fatalf("before the Windows boot marker: %s", strings.TrimSpace(m))
		}
	}
	t.Logf("the firmware started the Windows boot manager at %.1fs", c.Elapsed().Seconds())
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	out := c.Output()
	if strings.Contains(out, passcode) {
		t.Errorf("the passcode was echoed on the console")
	}
	// Which path the firmware took: OVMF names the Boot#### entry it
	// starts. The last one before the marker must be ours.
	entries := reBootEntry.FindAllStringSubmatch(out[:strings.LastIndex(out, WindowsBootMarker)], -1)
	if len(entries) == 0 {
		t.Errorf("OVMF named no boot entry before the marker")
	} else if last := entries[len(entries)-1]; last[2] != "Windows Boot Manager" || !strings.Contains(last[3], `\EFI\Microsoft\Boot\bootmgfw.efi`) {
		t.Errorf("the firmware started %s %q from %s, want the agent's \"Windows Boot Manager\" entry for \\EFI\\Microsoft\\Boot\\bootmgfw.efi", last[1], last[2], last[3])
	} else {
		t.Logf("firmware entry %s %q from %s", last[1], last[2], last[3])
		// The entry's device path names our ESP by its GPT unique GUID.
		if _, espGUID, err := gptGUIDs(ctx, disk, 1); err != nil {
			t.Error(err)
		} else if !strings.Contains(strings.ToUpper(last[3]), "HD(1,GPT,"+strings.ToUpper(espGUID)+",") {
			t.Errorf("the boot entry's device path %s does not name the ESP (partition 1, GUID %s)", last[3], espGUID)
		}
	}

	e.checkWindowsRun(t, ctx, ts.ID)
	for _, p := range e.windowsDiskProblems(t, ctx, disk, img) {
		t.Error(p)
	}
	t.Logf("TestWindowsBareMetal took %.1fs", time.Since(start).Seconds())
}

// checkWindowsRun checks the server's record: the Windows PE steps
// succeeded (the rest runs in Windows), Inject drivers by the alias rule.
func (e *Env) checkWindowsRun(t *testing.T, ctx context.Context, tsID string) {
	t.Helper()
	var runs []*deploy.Run
	if err := e.adminDo(ctx, "GET", "/admin/v1/runs?ts="+tsID, nil, &runs); err != nil || len(runs) != 1 {
		t.Fatalf("runs of the task sequence: %v (%v)", runs, err)
	}
	var run deploy.Run
	if err := e.adminDo(ctx, "GET", "/admin/v1/runs/"+runs[0].ID, nil, &run); err != nil {
		t.Fatal(err)
	}
	if run.State == deploy.RunFailed {
		t.Errorf("run %s failed: %s", run.ID, run.Error)
	}
	got := map[string]deploy.StepResult{}
	for _, s := range run.Steps {
		got[s.Name] = s
	}
	for _, name := range winPESteps {
		s, ok := got[name]
		if !ok {
			t.Errorf("run record has no step %q; it has %v", name, run.Steps)
			continue
		}
		if s.Outcome != deploy.StepSucceeded {
			t.Errorf("step %s: %s (%s)", s.Path, s.Outcome, s.Message)
		}
	}
	if s := got["Inject drivers"]; !strings.Contains(s.OutputTail, `"e2e storage drivers"`) || !strings.Contains(s.OutputTail, "matched by MAKEALIAS+MODELALIAS") ||
		!strings.Contains(s.OutputTail, "1 boot-critical storage drivers registered") {
		t.Errorf("Inject drivers said %q, want the e2e pack matched by MAKEALIAS+MODELALIAS and its storage driver registered", s.OutputTail)
	}
	for _, s := range run.Steps {
		if s.Path != "" && strings.Contains(s.Path, "Full OS/") && s.Outcome != "" {
			t.Errorf("step %s ran in the boot image (%s); it belongs to Windows", s.Path, s.Outcome)
		}
	}
}

// windowsDiskProblems checks the deployed disk with independent tools:
// sgdisk for the GUIDs, mtools for the ESP, hivex for the BCD and the
// offline hives, ntfs-3g's ntfsls/ntfscat for the Windows volume, and a
// byte search of the whole image for the canaries.
func (e *Env) windowsDiskProblems(t *testing.T, ctx context.Context, disk string, img *WindowsImage) []string {
	t.Helper()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if err := sgdiskVerify(ctx, disk); err != nil {
		add("%v", err)
	}
	pt, err := readTable(ctx, disk)
	if err != nil || len(pt.Partitions) < 3 {
		return append(problems, fmt.Sprintf("partition table: %v %+v", err, pt))
	}
	esp, win := pt.Partitions[0], pt.Partitions[2]
	diskGUID, partGUID, err := gptGUIDs(ctx, disk, 3)
	if err != nil {
		return append(problems, err.Error())
	}

	// ESP: the boot manager as bcdboot copies it, the fallback path, BCD.
	dir := filepath.Join(e.Dir, "check")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/EFI/Microsoft/Boot/bootmgfw.efi", "/EFI/Boot/bootx64.efi"} {
		dst := filepath.Join(dir, filepath.Base(p))
		if err := mcopyOut(ctx, disk, esp.Offset(), p, dst); err != nil {
			add("ESP %s: %v", p, err)
			continue
		}
		if b, _ := os.ReadFile(dst); !bytes.Equal(b, img.BootMgr) {
			add("ESP %s is not the image's bootmgfw.efi (%d bytes, want %d)", p, len(b), len(img.BootMgr))
		}
	}
	bcd := filepath.Join(dir, "BCD")
	if err := mcopyOut(ctx, disk, esp.Offset(), "/EFI/Microsoft/Boot/BCD", bcd); err != nil {
		add("ESP BCD: %v", err)
	} else {
		problems = append(problems, bcdProblems(t, bcd, diskGUID, partGUID)...)
	}

	// The Windows volume.
	vol := filepath.Join(e.Dir, "windows.ntfs")
	if err := extractSparse(disk, win.Offset(), win.Bytes(), vol); err != nil {
		return append(problems, err.Error())
	}
	defer os.Remove(vol)
	read := func(p string) []byte {
		dst := filepath.Join(dir, strings.ReplaceAll(strings.Trim(p, "/"), "/", "_"))
		if err := ntfscat(ctx, vol, p, dst); err != nil {
			add("%v", err)
			return nil
		}
		b, _ := os.ReadFile(dst)
		return b
	}
	unattend := string(read("/Windows/Panther/unattend.xml"))
	for _, want := range []string{"<ComputerName>" + computerName + "</ComputerName>", "<AdministratorPassword>", "<PlainText>false</PlainText>"} {
		if !strings.Contains(unattend, want) {
			add("unattend.xml has no %s:\n%s", want, unattend)
		}
	}
	setup := string(read("/Windows/Setup/Scripts/SetupComplete.cmd"))
	for _, want := range []string{`del /f /q "%WINDIR%\Panther\unattend.xml"`, `"%SystemDrive%\ProgramData\Imprint\imprint-agent.exe" resume`} {
		if !strings.Contains(setup, want) {
			add("SetupComplete.cmd (ContinueMethod SetupComplete.cmd) has no %s:\n%s", want, setup)
		}
	}
	if sw := read("/Windows/System32/config/SOFTWARE"); sw != nil {
		p := filepath.Join(dir, "SOFTWARE")
		os.WriteFile(p, sw, 0o644)
		dp := hivextest.Dump(t, p)[`Microsoft\Windows\CurrentVersion`]["DevicePath"]
		if !strings.Contains(dp, `%SystemRoot%\inf`) || !strings.Contains(dp, `%SystemRoot%\Imprint\Drivers`) {
			add("offline SOFTWARE DevicePath = %q, want %%SystemRoot%%\\inf and the staged packs", dp)
		}
	}
	if sys := read("/Windows/System32/config/SYSTEM"); sys != nil {
		p := filepath.Join(dir, "SYSTEM")
		os.WriteFile(p, sys, 0o644)
		svc := hivextest.Dump(t, p)[`ControlSet001\Services\vstor`]
		if svc["Start"] != "int32:0" || svc["Type"] != "int32:1" || !strings.Contains(strings.ToLower(svc["ImagePath"]), `vstor.sys`) {
			add("offline SYSTEM: the pack's storage driver is not a boot-start service: %v", svc)
		}
	}
	listing, err := run(ctx, "ntfsls", "-R", "-p", "/Windows/Imprint/Drivers", vol)
	if err != nil || !strings.Contains(strings.ToLower(string(listing)), "vstor.inf") {
		add("the driver pack is not staged under Windows\\Imprint\\Drivers: %v\n%s", err, listing)
	}
	// The continuation's contract with the Windows agent (branch wincont):
	// the agent at ProgramData\Imprint\imprint-agent.exe, the run's state
	// under ProgramData\Imprint\state.
	if exe := read("/ProgramData/Imprint/imprint-agent.exe"); !bytes.HasPrefix(exe, []byte("MZ")) {
		add("no Windows agent staged at ProgramData\\Imprint\\imprint-agent.exe (%d bytes)", len(exe))
	}
	if st, err := run(ctx, "ntfsls", "-p", "/ProgramData/Imprint/state", vol); err != nil || len(bytes.TrimSpace(st)) == 0 {
		add("no run state staged at ProgramData\\Imprint\\state: %v", err)
	}

	// No secret anywhere on the disk, in clear or as Windows' UTF-16LE.
	found, err := findInImage(disk, map[string][]byte{
		"passcode": []byte(passcode), "passcode (UTF-16LE)": utf16le(passcode),
		"AdminPassword": []byte(adminCanary), "AdminPassword (UTF-16LE)": utf16le(adminCanary),
	})
	if err != nil {
		add("search the disk: %v", err)
	}
	for what, off := range found {
		add("the %s is on the disk at byte %d", what, off)
	}
	return problems
}
