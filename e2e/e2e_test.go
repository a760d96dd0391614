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

// linuxSteps are the steps of the linux-bare-metal template, in order.
var linuxSteps = []string{"Format disk", "Apply operating system", "Prepare operating system", "Reboot"}

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
	i, m, err := c.ExpectFirst(ctx, reDeployed, reOSFailed, rePanic, rePasscode)
	if err != nil {
		t.Fatal(err)
	}
	if i != 0 {
		t.Fatalf("after the reboot the machine did not come up in the deployed OS: %s", m)
	}
	if want := "hostname=" + osimg.Hostname + " marker=" + osimg.Marker; !strings.Contains(m, want) {
		t.Fatalf("deployed OS printed %q, want %q", m, want)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Logf("deployed OS booted and powered off at %.1fs", c.Elapsed().Seconds())

	run, err := e.lastRun(ctx, ts.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRun(run, linuxSteps); err != nil {
		t.Error(err)
	}
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}
	t.Logf("TestUEFIBareMetal took %.1fs", time.Since(start).Seconds())
}
