package bootimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// ISOPackages are the Debian packages BuildISO needs.
var ISOPackages = []string{"grub-common", "grub-pc-bin", "grub-efi-amd64-bin", "xorriso", "mtools", "dosfstools"}

// ConsoleArgs are the console settings on every boot image command line:
// the screen for people and the serial port for headless machines and VMs.
// The serial port comes last because the kernel makes the last console=
// /dev/console, where the agent asks for the passcode.
const ConsoleArgs = "console=tty0 console=ttyS0,115200"

var grubCfg = template.Must(template.New("grub.cfg").Parse(`# Imprint boot image (generated)
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=1
set default=0
menuentry "Imprint deployment agent (kernel {{.Version}})" {
	linux /boot/vmlinuz {{.Args}}
	initrd /boot/initrd.img
}
menuentry "Boot from local disk" {
	exit
}
`))

// KernelArgs returns the kernel command line that points the agent at the
// server: imprint.server, imprint.ca and the consoles. It validates both
// values and normalises the fingerprint.
func KernelArgs(serverURL, caSHA256 string) (string, error) {
	bc := BootConfig{ServerURL: serverURL, CASHA256: caSHA256}
	if err := bc.Validate(); err != nil {
		return "", err
	}
	// The URL goes on a GRUB and kernel command line unquoted: allow only
	// characters neither treats specially.
	for _, r := range bc.ServerURL {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":/._~%-[]@", r)) {
			return "", fmt.Errorf("boot config: server URL %q: character %q cannot go on a kernel command line", serverURL, r)
		}
	}
	return "imprint.server=" + bc.ServerURL + " imprint.ca=" + bc.CASHA256 + " " + ConsoleArgs, nil
}

// BuildISO writes to out a hybrid ISO image that boots img with BIOS or
// UEFI, from a CD drive or written raw to a USB stick, with the server URL
// and CA fingerprint on the kernel command line. It runs grub-mkrescue (see
// ISOPackages). When img has the Secure Boot chain, the UEFI boot image
// holds shim and Debian's signed CD GRUB instead (signedISO), so machines
// with Secure Boot on boot it too.
func BuildISO(ctx context.Context, out string, img *Image, serverURL, caSHA256 string) error {
	if img == nil {
		return errors.New("build iso: no boot image given")
	}
	if out == "" {
		return errors.New("build iso: no output file given")
	}
	args, err := KernelArgs(serverURL, caSHA256)
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	for _, tool := range []string{"grub-mkrescue", "grub-mkimage", "xorriso", "mformat", "mkfs.fat"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("build iso: %s not found; install %s", tool, strings.Join(ISOPackages, " "))
		}
	}
	for _, dir := range []string{"/usr/lib/grub/i386-pc", "/usr/lib/grub/x86_64-efi"} {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("build iso: %s missing; install grub-pc-bin and grub-efi-amd64-bin", dir)
		}
	}

	stage, err := os.MkdirTemp("", "imprint-iso-*")
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := os.MkdirAll(filepath.Join(stage, "boot", "grub"), 0o755); err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	for name, src := range map[string]string{"vmlinuz": img.Vmlinuz(), "initrd.img": img.Initrd()} {
		if err := copyFile(src, filepath.Join(stage, "boot", name)); err != nil {
			return fmt.Errorf("build iso: %w", err)
		}
	}
	cfg, err := os.Create(filepath.Join(stage, "boot", "grub", "grub.cfg"))
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	err = grubCfg.Execute(cfg, struct{ Version, Args string }{img.Manifest.KernelVersion, args})
	if cerr := cfg.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("build iso: grub.cfg: %w", err)
	}

	tmp := out + ".tmp"
	defer os.Remove(tmp)
	if img.Manifest.SignedChain != nil {
		err = signedISO(ctx, tmp, stage, img)
	} else {
		_, err = runIn(ctx, "", "grub-mkrescue", "-o", tmp, stage, "--", "-volid", "IMPRINT")
	}
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// signedISO writes the ISO of stage as grub-mkrescue would, but with an
// EFI boot image (FAT) holding \EFI\BOOT\BOOTX64.EFI = shim and
// grubx64.efi = Debian's signed CD GRUB, which finds the ISO by
// /.disk/info and reads /boot/grub/grub.cfg. BIOS boots as before: GRUB's
// El Torito image and modules from grub-pc-bin, and its hybrid MBR.
func signedISO(ctx context.Context, out, stage string, img *Image) error {
	const biosDir = "/usr/lib/grub/i386-pc"
	mods := filepath.Join(stage, "boot", "grub", "i386-pc")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(biosDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".mod") || strings.HasSuffix(n, ".lst") {
			if err := copyFile(filepath.Join(biosDir, n), filepath.Join(mods, n)); err != nil {
				return err
			}
		}
	}
	if _, err := runIn(ctx, "", "grub-mkimage", "-d", biosDir, "-p", "/boot/grub", "-O", "i386-pc-eltorito",
		"-o", filepath.Join(mods, "eltorito.img"), "biosdisk", "iso9660"); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(stage, ".disk"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, ".disk", "info"), []byte("Imprint boot image "+img.Manifest.KernelVersion+"\n"), 0o644); err != nil {
		return err
	}

	// The EFI boot image: FAT big enough for shim and GRUB with room to spare.
	efi := filepath.Join(stage, "efi.img")
	var size int64
	for _, name := range []string{ShimName, GrubCDName} {
		fi, err := os.Stat(filepath.Join(img.Dir, name))
		if err != nil {
			return fmt.Errorf("secure boot chain: %w", err)
		}
		size += fi.Size()
	}
	kib := (size/1024 + 1024) &^ 31
	if _, err := runIn(ctx, "", "mkfs.fat", "-C", "-n", "IMPRINTEFI", efi, fmt.Sprint(kib)); err != nil {
		return err
	}
	if _, err := runIn(ctx, "", "mmd", "-i", efi, "::/EFI", "::/EFI/BOOT"); err != nil {
		return err
	}
	for _, f := range []struct{ src, dst string }{{ShimName, "BOOTX64.EFI"}, {GrubCDName, "grubx64.efi"}} {
		if _, err := runIn(ctx, "", "mcopy", "-i", efi, filepath.Join(img.Dir, f.src), "::/EFI/BOOT/"+f.dst); err != nil {
			return err
		}
	}
	_, err = runIn(ctx, "", "xorriso", "-as", "mkisofs", "-graft-points", "-volid", "IMPRINT",
		"-b", "boot/grub/i386-pc/eltorito.img", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"--grub2-boot-info", "--grub2-mbr", filepath.Join(biosDir, "boot_hybrid.img"),
		"--efi-boot", "efi.img", "-efi-boot-part", "--efi-boot-image", "--protective-msdos-label",
		"-o", out, "-r", stage)
	return err
}
