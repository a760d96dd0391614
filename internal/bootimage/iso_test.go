package bootimage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/bootimage"
)

// checkISO checks an ISO from BuildISO has BIOS and UEFI El Torito boot
// entries, the kernel and initramfs, and a grub.cfg that boots them with the
// server settings.
func checkISO(t *testing.T, iso string) {
	t.Helper()
	out, err := exec.Command("xorriso", "-indev", iso, "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -report_el_torito: %v\n%s", err, out)
	}
	var bios, uefi bool
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 7 && strings.HasPrefix(line, "El Torito boot img") {
			bios = bios || f[6] == "BIOS"
			uefi = uefi || f[6] == "UEFI"
		}
	}
	if !bios || !uefi {
		t.Errorf("El Torito entries: BIOS %v, UEFI %v; want both\n%s", bios, uefi, out)
	}
	if !strings.Contains(string(out), "MBR") || !strings.Contains(string(out), "GPT") {
		t.Errorf("no hybrid MBR/GPT for USB sticks:\n%s", out)
	}

	out, err = exec.Command("xorriso", "-indev", iso, "-find", "/boot", "-maxdepth", "1", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -find: %v\n%s", err, out)
	}
	for _, want := range []string{"'/boot/vmlinuz'", "'/boot/initrd.img'"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ISO lacks %s:\n%s", want, out)
		}
	}

	cfg := filepath.Join(t.TempDir(), "grub.cfg")
	if out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/boot/grub/grub.cfg", cfg).CombinedOutput(); err != nil {
		t.Fatalf("extract grub.cfg: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cfg)
	for _, want := range []string{
		"set timeout=1",
		"linux /boot/vmlinuz imprint.server=https://imprint.example:7281 imprint.ca=abcd00112233445566778899aabbccddeeff00112233445566778899aabbccdd console=tty0 console=ttyS0,115200\n",
		"initrd /boot/initrd.img",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, b)
		}
	}
}

func TestBuildISOSynthetic(t *testing.T) {
	for _, tool := range []string{"grub-mkrescue", "xorriso", "mformat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install %s)", tool, strings.Join(bootimage.ISOPackages, " "))
		}
	}
	dir := t.TempDir()
	kernel := make([]byte, 8192)
	copy(kernel[0x202:], "HdrS")
	os.WriteFile(filepath.Join(dir, bootimage.VmlinuzName), kernel, 0o644)
	os.WriteFile(filepath.Join(dir, bootimage.InitrdName), []byte("initrd"), 0o644)
	img := &bootimage.Image{Dir: dir, Manifest: bootimage.Manifest{KernelVersion: "6.1.0-1-amd64"}}
	iso := filepath.Join(t.TempDir(), "out.iso")
	if err := bootimage.BuildISO(context.Background(), iso, img, "https://imprint.example:7281", testFP); err != nil {
		t.Fatal(err)
	}
	checkISO(t, iso)
}

func TestKernelArgsRejects(t *testing.T) {
	tests := map[string]struct{ url, fp, wantErr string }{
		"http":            {"http://imprint.example", testFP, "want an https URL"},
		"no host":         {"https://", testFP, "want an https URL"},
		"grub metachar":   {"https://imprint.example/a;reboot", testFP, `character ';'`},
		"space":           {"https://imprint.example/a b", testFP, "want an https URL"},
		"dollar":          {"https://imprint.example/$x", testFP, `character '$'`},
		"bad fingerprint": {"https://imprint.example", strings.Repeat("g", 64), "64 hex digits"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := bootimage.KernelArgs(tc.url, tc.fp)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
			err = bootimage.BuildISO(context.Background(), filepath.Join(t.TempDir(), "x.iso"), &bootimage.Image{Dir: t.TempDir()}, tc.url, tc.fp)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("BuildISO: got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	got, err := bootimage.KernelArgs("https://[fd00::1]:7281", testFP)
	want := "imprint.server=https://[fd00::1]:7281 imprint.ca=abcd00112233445566778899aabbccddeeff00112233445566778899aabbccdd console=tty0 console=ttyS0,115200"
	if err != nil || got != want {
		t.Errorf("KernelArgs = %q, %v; want %q", got, err, want)
	}
}
