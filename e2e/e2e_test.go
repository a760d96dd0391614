//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
	checkLinuxDisk(t, ctx, disk, osimg, "gpt", true)
	t.Logf("TestUEFIBareMetal took %.1fs", time.Since(start).Seconds())
}

// checkLinuxDisk checks a disk the Linux layout was deployed to: the
// table (ESP + Linux root on GPT, or the MBR equivalent), the root
// partition's bytes against the image, fsck, and (with esp) the ESP's
// boot file against the UKI.
func checkLinuxDisk(t *testing.T, ctx context.Context, disk string, osimg *TestOS, label string, esp bool) {
	t.Helper()
	pt, err := readTable(ctx, disk)
	if err != nil {
		t.Fatal(err)
	}
	if pt.Label != label {
		t.Fatalf("partition table %q, want %q", pt.Label, label)
	}
	if len(pt.Partitions) != 2 {
		t.Fatalf("partitions %+v, want 2 (ESP and root)", pt.Partitions)
	}
	if label == "gpt" {
		if err := sgdiskVerify(ctx, disk); err != nil {
			t.Error(err)
		}
		codes, table, err := sgdiskCodes(ctx, disk)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"EF00", "8300"}, codes); diff != "" {
			t.Errorf("partition type codes (-want +got):\n%s\n%s", diff, table)
		}
	}
	root := pt.Partitions[1]
	if root.Bytes() < osimg.Size {
		t.Fatalf("root partition holds %d bytes, smaller than the %d-byte image", root.Bytes(), osimg.Size)
	}
	got, err := rangeSHA256(disk, root.Offset(), osimg.Size)
	if err != nil {
		t.Fatal(err)
	}
	if got != osimg.SHA256 {
		t.Errorf("root partition: SHA-256 of the first %d bytes %s, want the image's %s", osimg.Size, got, osimg.SHA256)
	}
	part := filepath.Join(filepath.Dir(disk), "root-part.img")
	if err := extract(disk, root.Offset(), osimg.Size, part); err != nil {
		t.Fatal(err)
	}
	if out, err := e2fsckClean(ctx, part); err != nil {
		t.Errorf("e2fsck -fn on the root partition: %v\n%s", err, out)
	}
	if h, err := debugfsCat(ctx, part, "/etc/imprint-marker"); err != nil || strings.TrimSpace(h) != osimg.Marker {
		t.Errorf("root partition /etc/imprint-marker = %q (%v), want %q", h, err, osimg.Marker)
	}
	if !esp {
		return
	}
	espOff := pt.Partitions[0].Offset()
	list, err := mdir(ctx, disk, espOff, "/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, "EFI") {
		t.Errorf("ESP root has no EFI directory:\n%s", list)
	}
	bootFile := filepath.Join(filepath.Dir(disk), "esp-bootx64.efi")
	if err := mcopyOut(ctx, disk, espOff, "/EFI/BOOT/BOOTX64.EFI", bootFile); err != nil {
		t.Fatal(err)
	}
	if same, err := sameFile(bootFile, osimg.UKI); err != nil || !same {
		t.Errorf("ESP \\EFI\\BOOT\\BOOTX64.EFI differs from the deployed root's UKI (%v)", err)
	}
}
