package bootimage_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// unsignedCopy copies the PE image src with its certificate table entry
// (data directory 4) zeroed, as an unsigned build of it would be.
func unsignedCopy(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	opt := int(binary.LittleEndian.Uint32(b[0x3c:])) + 4 + 20 // PE signature, COFF header
	if binary.LittleEndian.Uint16(b[opt:]) != 0x20b {
		t.Fatalf("%s: not PE32+", src)
	}
	copy(b[opt+112+4*8:], make([]byte, 8))
	dst := filepath.Join(t.TempDir(), "unsigned-"+filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestSigned(t *testing.T) {
	k := fetchKernel(t)
	notPE := filepath.Join(t.TempDir(), "notpe")
	os.WriteFile(notPE, bytes.Repeat([]byte{1}, 4096), 0o644)
	tests := []struct {
		name, path string
		want       bool
		err        string
	}{
		{"Debian's kernel", k.Vmlinuz, true, ""},
		{"the same kernel unsigned", unsignedCopy(t, k.Vmlinuz), false, ""},
		{"iPXE", "/usr/lib/ipxe/ipxe.efi", false, ""},
		{"not PE", notPE, false, "is not a PE image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil {
				t.Fatalf("%v (make deps installs ipxe)", err)
			}
			got, err := bootimage.Signed(tt.path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Signed: %v, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Signed = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestBuildWarnsUnsignedKernel: a custom (unsigned) kernel still builds,
// with a warning that Secure Boot machines will refuse it.
func TestBuildWarnsUnsignedKernel(t *testing.T) {
	k := fetchKernel(t)
	unsigned := *k
	unsigned.Vmlinuz = unsignedCopy(t, k.Vmlinuz)
	agent := buildTestInit(t)
	for _, tt := range []struct {
		name   string
		kernel *bootimage.Kernel
		signed bool
	}{{"signed", k, true}, {"unsigned", &unsigned, false}} {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			img, err := bootimage.Build(context.Background(), bootimage.BuildOptions{
				OutDir: t.TempDir(), Kernel: tt.kernel, AgentPath: agent,
				Modules: []string{}, RequiredModules: []string{}, Tools: []string{}, Files: []string{}, Log: &log,
			})
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, log.String())
			}
			warned := strings.Contains(log.String(), "is not signed: machines with Secure Boot on will refuse it")
			if warned == tt.signed || img.Manifest.KernelSigned != tt.signed {
				t.Errorf("warned %v, manifest kernelSigned %v; want kernelSigned %v and a warning only when unsigned:\n%s",
					warned, img.Manifest.KernelSigned, tt.signed, log.String())
			}
		})
	}
}

// TestSignedChainInImage fetches shim-signed and grub-efi-amd64-signed,
// puts them into a boot image and checks the manifest guards them; a
// rebuild without them removes them, so no stale shim is served.
func TestSignedChainInImage(t *testing.T) {
	k := fetchKernel(t)
	var log bytes.Buffer
	sc, err := bootimage.FetchSignedChain(context.Background(), testCacheDir(t), &log)
	if errors.Is(err, bootimage.ErrDownload) {
		testenv.Missing(t, "apt-get cannot download from the Debian mirror: %v", err)
	}
	if err != nil {
		t.Fatalf("FetchSignedChain: %v\n%s", err, log.String())
	}
	if sc.ShimVersion == "" || sc.GrubVersion == "" {
		t.Errorf("versions missing: %+v", sc)
	}
	opts := bootimage.BuildOptions{
		OutDir: t.TempDir(), Kernel: k, AgentPath: buildTestInit(t), Signed: sc,
		Modules: []string{}, RequiredModules: []string{}, Tools: []string{}, Files: []string{}, Log: &log,
	}
	if _, err := bootimage.Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	img, err := bootimage.LoadImage(opts.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bootimage.ShimName, bootimage.GrubName, bootimage.GrubCDName} {
		p := filepath.Join(img.Dir, name)
		if signed, err := bootimage.Signed(p); err != nil || !signed {
			t.Errorf("%s: signed %v, %v", name, signed, err)
		}
		if img.Manifest.SHA256[name] == "" {
			t.Errorf("manifest has no SHA-256 of %s", name)
		}
	}
	// Debian's signed network GRUB has /grub as its prefix: the PXE
	// service's TFTP names depend on it.
	if out, err := exec.Command("grep", "-c", "-a", "normal (memdisk)/grub.cfg", filepath.Join(img.Dir, bootimage.GrubName)).Output(); err != nil || strings.TrimSpace(string(out)) == "0" {
		t.Errorf("%s is not the network GRUB image: %v %s", bootimage.GrubName, err, out)
	}

	// The ISO's EFI boot image holds shim and the signed CD GRUB; the
	// ISO still has the BIOS El Torito entry and the hybrid MBR.
	iso := filepath.Join(t.TempDir(), "imprint.iso")
	if err := bootimage.BuildISO(context.Background(), iso, img, "https://imprint.example:7281", testFP); err != nil {
		t.Fatal(err)
	}
	checkISO(t, iso)
	efi := filepath.Join(t.TempDir(), "efi.img")
	if out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/efi.img", efi).CombinedOutput(); err != nil {
		t.Fatalf("extract efi.img: %v\n%s", err, out)
	}
	for _, f := range []struct{ onESP, want string }{{"BOOTX64.EFI", sc.Shim}, {"grubx64.efi", sc.GrubCD}} {
		got := filepath.Join(t.TempDir(), f.onESP)
		if out, err := exec.Command("mcopy", "-n", "-i", efi, "::/EFI/BOOT/"+f.onESP, got).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v\n%s", f.onESP, err, out)
		}
		a, _ := os.ReadFile(got)
		b, _ := os.ReadFile(f.want)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("ISO's \\EFI\\BOOT\\%s (%d bytes) is not %s", f.onESP, len(a), f.want)
		}
	}
	if out, err := exec.Command("xorriso", "-indev", iso, "-find", "/.disk/info").CombinedOutput(); err != nil || !strings.Contains(string(out), "/.disk/info") {
		t.Errorf("ISO has no /.disk/info, by which signed GRUB finds it: %v\n%s", err, out)
	}

	f, _ := os.OpenFile(filepath.Join(img.Dir, bootimage.ShimName), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("x"))
	f.Close()
	if _, err := bootimage.LoadImage(img.Dir); err == nil || !strings.Contains(err.Error(), "shimx64.efi has SHA-256") {
		t.Errorf("tampered shim: got %v", err)
	}

	opts.Signed = nil
	if _, err := bootimage.Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bootimage.ShimName, bootimage.GrubName, bootimage.GrubCDName} {
		if _, err := os.Stat(filepath.Join(opts.OutDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind by a build without the signed chain: %v", name, err)
		}
	}
}
