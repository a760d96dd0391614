//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"debug/pe"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/bootimage"
)

// osModules are what the deployed test OS loads to mount its root:
// crc32c_generic before ext4 (metadata checksums; nothing in the initramfs
// answers request_module).
var osModules = []string{"virtio_pci", "virtio_blk", "crc32c_generic", "ext4"}

// buildUKI makes the deployed test OS's unified kernel image: systemd-boot's
// EFI stub with the kernel, a command line and an initramfs holding osinit
// as sections, which UEFI firmware boots as \EFI\BOOT\BOOTX64.EFI.
func buildUKI(ctx context.Context, a *Artifacts) (string, error) {
	stub, err := efiStub(ctx, a.CacheDir)
	if err != nil {
		return "", err
	}
	idx, err := bootimage.LoadModuleIndex(a.Kernel.ModulesDir)
	if err != nil {
		return "", err
	}
	mods, err := idx.Closure(osModules)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(a.Dir, "testos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	initrd := filepath.Join(dir, "osinit.img")
	f, err := os.Create(initrd)
	if err != nil {
		return "", err
	}
	_, err = bootimage.BuildInitramfs(ctx, f, bootimage.InitramfsOptions{
		AgentPath:     a.OSInit,
		KernelVersion: a.Kernel.Version,
		ModulesDir:    a.Kernel.ModulesDir,
		Modules:       mods,
		Tools:         []string{},
		Files:         []string{},
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("test os initramfs: %w", err)
	}
	osrel := filepath.Join(dir, "os-release")
	cmdline := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(osrel, []byte("NAME=\"Imprint e2e test OS\"\nID=imprint-e2e\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(cmdline, []byte("console=ttyS0,115200 panic=-1 quiet"), 0o644); err != nil {
		return "", err
	}
	// Sections go above the stub's own image; .initrd follows .linux,
	// aligned, so a bigger kernel cannot overlap it.
	kst, err := os.Stat(a.Kernel.Vmlinuz)
	if err != nil {
		return "", err
	}
	const linuxVMA = 0x2000000
	initrdVMA := (linuxVMA + kst.Size() + 0x100000) &^ 0xfffff
	uki := filepath.Join(dir, "BOOTX64.EFI")
	if _, err := run(ctx, "objcopy",
		"--add-section", ".osrel="+osrel, "--change-section-vma", ".osrel=0x20000",
		"--add-section", ".cmdline="+cmdline, "--change-section-vma", ".cmdline=0x30000",
		"--add-section", ".linux="+a.Kernel.Vmlinuz, "--change-section-vma", fmt.Sprintf(".linux=%#x", linuxVMA),
		"--add-section", ".initrd="+initrd, "--change-section-vma", fmt.Sprintf(".initrd=%#x", initrdVMA),
		stub, uki); err != nil {
		return "", fmt.Errorf("build uki: %w", err)
	}
	if err := checkUKI(uki); err != nil {
		return "", err
	}
	a.OSInitrd = initrd
	return uki, nil
}

// checkUKI checks the UKI is a PE image with the sections the stub needs.
func checkUKI(path string) error {
	f, err := pe.Open(path)
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	defer f.Close()
	for _, s := range []string{".osrel", ".cmdline", ".linux", ".initrd"} {
		if f.Section(s) == nil {
			return fmt.Errorf("uki %s: no %s section", path, s)
		}
	}
	return nil
}

// efiStub returns systemd-boot's linuxx64.efi.stub, downloading (not
// installing) the systemd-boot-efi package into the cache on first use.
func efiStub(ctx context.Context, cache string) (string, error) {
	dir := filepath.Join(cache, "systemd-boot-efi")
	stub := filepath.Join(dir, "root", "usr", "lib", "systemd", "boot", "efi", "linuxx64.efi.stub")
	if _, err := os.Stat(stub); err == nil {
		return stub, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, ".stub-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755) // apt-get download runs as _apt where it can
	cmd := exec.CommandContext(ctx, "apt-get", "download", "systemd-boot-efi")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download systemd-boot-efi: %w\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "systemd-boot-efi_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download systemd-boot-efi left %d .deb files, want 1", len(debs))
	}
	if _, err := run(ctx, "dpkg-deb", "-x", debs[0], filepath.Join(tmp, "root")); err != nil {
		return "", err
	}
	os.Remove(debs[0])
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	if _, err := os.Stat(stub); err != nil {
		return "", fmt.Errorf("systemd-boot-efi has no linuxx64.efi.stub: %w", err)
	}
	return stub, nil
}

// TestOS is the root filesystem image a test deploys.
type TestOS struct {
	Hostname string
	Marker   string
	Raw      string // the ext4 image
	Zst      string // Raw compressed with zstd: what is uploaded
	Size     int64  // of Raw
	SHA256   string // of Raw
	UKI      string // what /boot/efi/EFI/BOOT/BOOTX64.EFI holds
}

// buildTestOS makes an ext4 root holding /etc/hostname, a random
// /etc/imprint-marker and the UKI at /boot/efi/EFI/BOOT/BOOTX64.EFI (which
// Prepare operating system copies to the ESP), and compresses it.
func (e *Env) buildTestOS(ctx context.Context, sizeMiB int) *TestOS {
	e.t.Helper()
	return e.buildTestOSWith(ctx, sizeMiB, map[string]string{"EFI/BOOT/BOOTX64.EFI": e.A.UKI})
}

// secureBootOSGrubCfg is the Secure Boot test OS's GRUB config: Debian's
// signed disk GRUB (prefix /EFI/debian on the disk it was loaded from)
// reads it; the kernel is Debian's signed one, which GRUB has shim verify.
const secureBootOSGrubCfg = `set timeout=0
linux /imprint/vmlinuz console=ttyS0,115200 panic=-1
initrd /imprint/initrd.img
boot
`

// buildSecureBootTestOS is buildTestOS for a machine with Secure Boot on:
// the ESP boots through shim (\EFI\BOOT\BOOTX64.EFI), which loads
// grubx64.efi beside it (Debian's signed GRUB), which boots Debian's
// signed kernel with the test OS's initramfs. The UKI would be refused:
// nobody signed it.
func (e *Env) buildSecureBootTestOS(ctx context.Context, sizeMiB int) *TestOS {
	t := e.t
	t.Helper()
	cfg := filepath.Join(e.Dir, "testos-grub.cfg")
	if err := os.WriteFile(cfg, []byte(secureBootOSGrubCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e.buildTestOSWith(ctx, sizeMiB, map[string]string{
		"EFI/BOOT/BOOTX64.EFI": e.A.Signed.Shim,
		"EFI/BOOT/grubx64.efi": e.A.SignedGrub,
		"EFI/debian/grub.cfg":  cfg,
		"imprint/vmlinuz":      e.A.Kernel.Vmlinuz,
		"imprint/initrd.img":   e.A.OSInitrd,
	})
}

// buildTestOSWith is buildTestOS with the given ESP files (path on the
// ESP -> host file) under /boot/efi.
func (e *Env) buildTestOSWith(ctx context.Context, sizeMiB int, esp map[string]string) *TestOS {
	t := e.t
	t.Helper()
	o := &TestOS{Hostname: "imprint-e2e-os", Marker: randomHex(8), UKI: esp["EFI/BOOT/BOOTX64.EFI"]}
	src := filepath.Join(e.Dir, "rootfs")
	for path, from := range esp {
		dst := filepath.Join(src, "boot", "efi", filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := linkOrCopy(from, dst); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(src, "etc", "hostname"), []byte(o.Hostname+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "imprint-marker"), []byte(o.Marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Raw = filepath.Join(e.Dir, "root.img")
	o.Zst = o.Raw + ".zst"
	os.Remove(o.Raw) // mkfs.ext4 does not shrink an existing larger file
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", src, o.Raw, fmt.Sprintf("%dM", sizeMiB)); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, "zstd", "-q", "-f", "-T2", o.Raw, "-o", o.Zst); err != nil {
		t.Fatal(err)
	}
	var err error
	o.Size, o.SHA256, err = fileDigest(o.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func fileDigest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// uploadImage creates an OperatingSystem File content item with the CLI
// and uploads path as its version 1; it returns the item id.
func (e *Env) uploadImage(ctx context.Context, name, path string) string {
	t := e.t
	t.Helper()
	out, err := e.imprint(ctx, "", "--json", "content", "add", "--name", name, "--type", "File", "--purpose", "OperatingSystem")
	if err != nil {
		t.Fatal(err)
	}
	var item struct {
		ID string `json:"id"`
	}
	if err := jsonUnmarshal(out, &item); err != nil || item.ID == "" {
		t.Fatalf("content add: no id in %q (%v)", out, err)
	}
	if _, err := e.imprint(ctx, "", "content", "version", item.ID, path); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(item.ID)
}
