//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain gives the shared artifacts a directory and removes it at the
// end (IMPRINT_E2E_KEEP=1 keeps it).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imprint-e2e-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	shared.dir = dir
	code := m.Run()
	if os.Getenv("IMPRINT_E2E_KEEP") == "" {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "e2e: kept", dir)
	}
	os.Exit(code)
}

const passcode = "e2e-Passcode-4821"

// linuxSteps are the steps of the linux-bare-metal template as the run
// record lists them: the group, then its steps.
var linuxSteps = []string{"Linux", "Format disk", "Apply operating system", "Prepare operating system", "Reboot"}

// TestUEFIBareMetal is the whole promise: an empty UEFI machine
// network-boots, is refused a wrong passcode and accepts the right one,
// runs the Linux bare-metal template, reboots from its own disk into the
// deployed OS, which prints the marker of this run. The host then checks
// the disk and the server's run record.
func TestUEFIBareMetal(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	osimg := e.buildTestOS(ctx, 200)
	imageID := e.uploadImage(ctx, "e2e test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux UEFI", imageID, nil)

	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "uefi", Firmware: UEFI, Disk: disk, DiskSize: 1 << 30})
	c := vm.Console
	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	t.Logf("passcode accepted at %.1fs", c.Elapsed().Seconds())
	if err := awaitRun(ctx, c, ts.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("run succeeded at %.1fs; rebooting into the deployed disk", c.Elapsed().Seconds())
	if strings.Contains(c.Output(), passcode) {
		t.Errorf("the passcode was echoed on the console")
	}
	i, m, err := c.ExpectFirst(ctx, reDeployed, reOSFailed, rePanic, rePasscode)
	if err != nil {
		t.Fatal(err)
	}
	if i != 0 {
		t.Fatalf("after the reboot the machine did not come up in the deployed OS: %s", m)
	}
	if want := "IMPRINT-DEPLOYED-OK hostname=" + osimg.Hostname + " marker=" + osimg.Marker; strings.TrimSpace(m) != want {
		t.Fatalf("deployed OS printed %q, want %q", m, want)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Logf("deployed OS booted and powered off at %.1fs", c.Elapsed().Seconds())

	e.checkLastRun(t, ctx, ts.ID, linuxSteps)
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}
	t.Logf("TestUEFIBareMetal took %.1fs", time.Since(start).Seconds())
}

// deployToEnd authenticates (wrong passcode, then right), picks ts when
// asked, and waits for the run's success marker and for QEMU to exit (the
// VM runs with NoReboot, so the agent's restart ends it).
func deployToEnd(t *testing.T, ctx context.Context, vm *VM, tsName string) {
	t.Helper()
	c := vm.Console
	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	t.Logf("passcode accepted at %.1fs", c.Elapsed().Seconds())
	if err := awaitRun(ctx, c, tsName); err != nil {
		t.Fatal(err)
	}
	t.Logf("run succeeded at %.1fs", c.Elapsed().Seconds())
	if strings.Contains(c.Output(), passcode) {
		t.Errorf("the passcode was echoed on the console")
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu: %v", err)
	}
}

// TestBIOSBareMetal runs the Linux template on a legacy-BIOS machine
// (SeaBIOS, iPXE's PXE ROM): MBR layout. Prepare operating system refuses
// a Linux BIOS target whose image carries no boot loader of its own (the
// test image has none), so the sequence leaves that step out and the disk
// is checked on the host after the run.
func TestBIOSBareMetal(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	osimg := e.buildTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux BIOS", imageID, nil, "Prepare operating system")
	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "bios", Firmware: BIOS, Disk: disk, DiskSize: 1 << 30, NoReboot: true})
	deployToEnd(t, ctx, vm, ts.Name)
	e.checkLastRun(t, ctx, ts.ID, []string{"Linux", "Format disk", "Apply operating system", "Reboot"})
	for _, p := range linuxDiskProblems(ctx, disk, osimg, BIOS) {
		t.Error(p)
	}
	t.Logf("TestBIOSBareMetal took %.1fs", time.Since(start).Seconds())
}

// TestWIMOnNTFS applies a pipable WIM onto NTFS with DeployR's Windows
// layout (GPT on UEFI: ESP, MSR, Windows, Recovery). Prepare operating
// system needs bcdboot, which only the Windows agent has, so the sequence
// leaves it out; the host checks the Windows partition with ntfs-3g's
// tools.
func TestWIMOnNTFS(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	needTools(t, "wimlib-imagex", "ntfsls", "ntfscat")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	wim := e.buildWIM(ctx)
	imageID := e.uploadImage(ctx, "e2e Windows WIM", wim.Path)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Windows WIM", imageID,
		map[string]string{"Layout": "Windows", "ImageFormat": "WIM", "ImageIndex": "1"}, "Prepare operating system")
	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "wim", Firmware: UEFI, Disk: disk, DiskSize: 3 << 30, NoReboot: true})
	deployToEnd(t, ctx, vm, ts.Name)
	e.checkLastRun(t, ctx, ts.ID, []string{"Linux", "Format disk", "Apply operating system", "Reboot"})
	if err := sgdiskVerify(ctx, disk); err != nil {
		t.Error(err)
	}
	pt, err := readTable(ctx, disk)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range pt.Partitions {
		types = append(types, p.Type)
	}
	if diff := cmp.Diff([]string{GUIDESP, GUIDMSR, GUIDBasic, "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"}, types); diff != "" {
		t.Fatalf("Windows layout partition types (-want +got):\n%s", diff)
	}
	win := pt.Partitions[2]
	vol := filepath.Join(e.Dir, "windows.ntfs")
	if err := extractSparse(disk, win.Offset(), win.Bytes(), vol); err != nil {
		t.Fatal(err)
	}
	for _, p := range ntfsProblems(ctx, vol, wim) {
		t.Error(p)
	}
	t.Logf("TestWIMOnNTFS took %.1fs", time.Since(start).Seconds())
}

// TestISOBoot boots the boot image from `imprint bootimage iso` as a CD
// (no network boot) on an empty UEFI machine: the agent finds the server
// from the ISO's command line, asks for the passcode and runs the Linux
// template to the end.
func TestISOBoot(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	needTools(t, "grub-mkrescue", "xorriso", "mformat")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	iso := filepath.Join(e.Dir, "imprint.iso")
	if _, err := e.imprint(ctx, "", "bootimage", "iso", "--out", iso); err != nil {
		t.Fatal(err)
	}
	osimg := e.buildTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux ISO", imageID, nil)
	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "iso", Firmware: UEFI, Disk: disk, DiskSize: 1 << 30, ISO: iso, NoReboot: true})
	deployToEnd(t, ctx, vm, ts.Name)
	if b, _ := os.ReadFile(e.srvLog); strings.Contains(string(b), "boot script") {
		t.Errorf("the machine network-booted; it should have booted from the ISO")
	}
	e.checkLastRun(t, ctx, ts.ID, linuxSteps)
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}
	t.Logf("TestISOBoot took %.1fs", time.Since(start).Seconds())
}
