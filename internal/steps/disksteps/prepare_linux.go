package disksteps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/disk"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// PrepareOS is the Prepare operating system step (see the package
// comment for what each target needs).
type PrepareOS struct{ D *Deps }

// Run makes the applied OS bootable.
func (s PrepareOS) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	layout := strings.ToLower(env.Vars.Value(VarOSDiskLayout))
	switch disk.Layout(layout) {
	case disk.WindowsUEFI:
		return s.prepareWindows(ctx, env)
	case disk.WindowsBIOS:
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Prepare operating system cannot make Windows bootable on a BIOS (MBR) disk yet: "+
			"use Format disk with PartitionStyle GPT (UEFI)")
	case disk.LinuxBIOS:
		return s.bios(env)
	case disk.LinuxUEFI:
	case "":
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Prepare operating system: OSDiskLayout is not set; run Format disk first")
	default:
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Prepare operating system: unknown OSDiskLayout %q", layout)
	}
	root, espSpec := env.Vars.Value(VarOSPartition), env.Vars.Value(VarESPPartition)
	if root == "" || espSpec == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Prepare operating system: OSPartition and ESPPartition must be set (run Format disk with a Linux UEFI layout)")
	}
	esp, err := ResolvePartition(espSpec)
	if err != nil {
		return sequence.Result{}, err
	}
	mount := s.D.MountRoot
	if mount == nil {
		mount = func(ctx context.Context, part string) (string, func() error, error) {
			return mountRoot(ctx, part, s.D.TempDir)
		}
	}
	dir, unmount, err := mount(ctx, root)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("read the applied root filesystem: %w", err)
	}
	defer unmount()
	efi := filepath.Join(dir, "boot", "efi")
	if fi, err := os.Stat(efi); err != nil || !fi.IsDir() || emptyDir(efi) {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid,
			"the applied image has no /boot/efi tree: a Linux image for UEFI must carry its EFI boot loader there "+
				"(for example /boot/efi/EFI/BOOT/BOOTX64.EFI, a unified kernel image or shim and grub), which Prepare operating system copies to the ESP")
	}
	copied, err := copyToESP(efi, esp)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("copy /boot/efi to the ESP: %w", err)
	}
	if err := unmount(); err != nil {
		return sequence.Result{}, fmt.Errorf("unmount the root filesystem: %w", err)
	}
	fallback := false
	for _, c := range copied {
		if strings.HasPrefix(strings.ToUpper(c), "/EFI/BOOT/BOOT") && strings.HasSuffix(strings.ToUpper(c), ".EFI") {
			fallback = true
		}
	}
	msg := fmt.Sprintf("Copied %d files from /boot/efi to the ESP (%s)", len(copied), espSpec)
	fmt.Fprintln(env.Log, msg)
	for _, c := range copied {
		fmt.Fprintf(env.Log, "  %s\n", c)
	}
	if !fallback {
		fmt.Fprintln(env.Log, "Warning: no EFI/BOOT/BOOT<arch>.EFI among them; the firmware finds the loader only through a boot entry")
	}
	return sequence.Result{Output: msg}, nil
}

func emptyDir(dir string) bool {
	empty := true
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			empty = false
			return fs.SkipAll
		}
		return nil
	})
	return empty
}

// bios accepts a Linux BIOS target only when the applied partition
// starts with a boot record of its own (the image carries its loader).
func (s PrepareOS) bios(env *sequence.Env) (sequence.Result, error) {
	p, err := ResolvePartition(env.Vars.Value(VarOSPartition))
	if err != nil {
		return sequence.Result{}, err
	}
	dst, off, _ := rawTarget(p)
	f, err := os.Open(dst)
	if err != nil {
		return sequence.Result{}, err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, off); err != nil {
		return sequence.Result{}, fmt.Errorf("read the partition's boot sector: %w", err)
	}
	if b[510] != 0x55 || b[511] != 0xAA || allZero(b[:446]) {
		return sequence.Result{}, errors.New("Prepare operating system for a Linux BIOS target needs an image that carries its own boot loader " +
			"in the partition's first sectors (for example extlinux or grub installed to the partition); this image has none. Use a UEFI layout")
	}
	msg := "The applied image carries its own boot sector; the partition is marked active"
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
