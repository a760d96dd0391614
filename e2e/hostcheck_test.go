//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/disk"
)

// TestHostDiskChecks proves the host checks on a disk written on the host
// with internal/disk (no VM): a correct deployment passes, and each kind
// of damage is reported.
func TestHostDiskChecks(t *testing.T) {
	a := artifacts(t)
	e := &Env{t: t, A: a, Dir: t.TempDir()}
	ctx := context.Background()
	osimg := e.buildTestOS(ctx, 64)

	write := func(t *testing.T) string {
		t.Helper()
		img := filepath.Join(t.TempDir(), "disk.img")
		hostDeploy(t, ctx, osimg, img)
		return img
	}

	t.Run("good", func(t *testing.T) {
		if p := linuxDiskProblems(ctx, write(t), osimg, UEFI); len(p) > 0 {
			t.Errorf("problems on a correct disk:\n%s", strings.Join(p, "\n"))
		}
	})
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, img string)
		want   string
	}{
		{"flipped byte in root", func(t *testing.T, img string) {
			pt, err := readTable(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			flip(t, img, pt.Partitions[1].Offset()+osimg.Size/2)
		}, "SHA-256"},
		{"no BOOTX64.EFI", func(t *testing.T, img string) {
			pt, _ := readTable(ctx, img)
			if _, err := run(ctx, "mdel", "-i", img+"@@"+itoa(pt.Partitions[0].Offset()), "::/EFI/BOOT/BOOTX64.EFI"); err != nil {
				t.Fatal(err)
			}
		}, "BOOTX64.EFI"},
		{"primary GPT header damaged", func(t *testing.T, img string) { flip(t, img, 512+20) }, "sgdisk"},
		{"BIOS check on a GPT disk", nil, "want dos"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := write(t)
			fw := UEFI
			if tc.damage == nil {
				fw = BIOS
			} else {
				tc.damage(t, img)
			}
			p := strings.Join(linuxDiskProblems(ctx, img, osimg, fw), "\n")
			if !strings.Contains(p, tc.want) {
				t.Errorf("problems %q, want one mentioning %q", p, tc.want)
			}
		})
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// hostDeploy does on the host what the linux-bare-metal template does in
// the guest, with the same library: the Linux UEFI layout on a 1 GiB image
// file, the zstd image into the root partition, the UKI into the ESP.
func hostDeploy(t *testing.T, ctx context.Context, osimg *TestOS, img string) {
	t.Helper()
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	res, err := disk.Format(ctx, img, disk.LinuxUEFI)
	if err != nil {
		t.Fatal(err)
	}
	root, ok := res.Part("root")
	if !ok {
		t.Fatalf("layout has no root partition: %+v", res.Partitions)
	}
	zst, err := os.Open(osimg.Zst)
	if err != nil {
		t.Fatal(err)
	}
	defer zst.Close()
	if _, err := disk.ApplyRaw(ctx, img, root.Start, root.Size, zst, disk.Zstd, "", nil); err != nil {
		t.Fatal(err)
	}
	esp, _ := res.Part("ESP")
	// What Prepare operating system does: the root's /boot/efi tree
	// into the ESP.
	fat := img + "@@" + itoa(esp.Start)
	for _, d := range []string{"::/EFI", "::/EFI/BOOT"} {
		if _, err := run(ctx, "mmd", "-i", fat, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run(ctx, "mcopy", "-i", fat, osimg.UKI, "::/EFI/BOOT/BOOTX64.EFI"); err != nil {
		t.Fatal(err)
	}

}

// TestDeployedOSBoots boots a disk deployed on the host in OVMF: the test
// OS (UKI, osinit) itself works, so a failure of TestUEFIBareMetal after
// IMPRINT-RUN-SUCCEEDED is the deployment's.
func TestDeployedOSBoots(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	osimg := e.buildTestOS(ctx, 64)
	img := filepath.Join(e.Dir, "disk.img")
	hostDeploy(t, ctx, osimg, img)
	vm := e.StartVM(VMOptions{Name: "testos", Firmware: UEFI, Disk: img})
	i, m, err := vm.Console.ExpectFirst(ctx, reDeployed, reOSFailed, rePanic)
	if err != nil {
		t.Fatal(err)
	}
	if want := "IMPRINT-DEPLOYED-OK hostname=" + osimg.Hostname + " marker=" + osimg.Marker; i != 0 || strings.TrimSpace(m) != want {
		t.Fatalf("deployed OS printed %q, want %q", m, want)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Logf("TestDeployedOSBoots took %.1fs", time.Since(start).Seconds())
}

// TestHostNTFSChecks proves the NTFS checks on a volume made on the host:
// mkntfs and wimlib-imagex apply of the test WIM pass, a changed file is
// reported.
func TestHostNTFSChecks(t *testing.T) {
	a := artifacts(t)
	needTools(t, "wimlib-imagex", "mkntfs", "ntfsls", "ntfscat")
	e := &Env{t: t, A: a, Dir: t.TempDir()}
	ctx := context.Background()
	wim := e.buildWIM(ctx)
	vol := filepath.Join(e.Dir, "vol.ntfs")
	if err := os.WriteFile(vol, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol, 64<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, "mkntfs", "-q", "-F", "-f", vol); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, "wimlib-imagex", "apply", wim.Path, "1", vol); err != nil {
		t.Fatal(err)
	}
	if p := ntfsProblems(ctx, vol, wim); len(p) > 0 {
		t.Errorf("problems on a correct volume:\n%s", strings.Join(p, "\n"))
	}
	wim.Files["/Windows/win.ini"] = strings.Repeat("0", 64)
	wim.Files["/Windows/missing.dll"] = strings.Repeat("0", 64)
	p := strings.Join(ntfsProblems(ctx, vol, wim), "\n")
	for _, want := range []string{"/Windows/win.ini on NTFS has SHA-256", "does not list /Windows/missing.dll"} {
		if !strings.Contains(p, want) {
			t.Errorf("problems %q, want one with %q", p, want)
		}
	}
}
