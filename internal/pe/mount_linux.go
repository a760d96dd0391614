package pe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	// ifExists names a directory that must exist for this mount to apply
	// (relative to the same root as target).
	ifExists string
}

var earlyMounts = []mountSpec{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", ""},
	// The Debian kernel has DEVTMPFS but not DEVTMPFS_MOUNT: /dev is empty
	// until we mount it.
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", ""},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666", ""},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", ""},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", ""},
	{"efivarfs", "/sys/firmware/efi/efivars", "efivarfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", "/sys/firmware/efi"},
}

// MountEarly mounts what /init needs before anything else: /proc, /sys,
// /dev (devtmpfs), /dev/pts, /tmp and /run (tmpfs), and efivarfs when the
// machine booted with UEFI. A target that is already a mount point is left
// alone, so calling it again (or after the kernel mounted /dev itself) is
// harmless. All mounts are tried; the error joins those that failed.
func MountEarly() error {
	return mountEarlyAt("/")
}

// mountEarlyAt mounts below root instead of /; tests use a temporary root.
func mountEarlyAt(root string) error {
	var errs []error
	for _, m := range earlyMounts {
		if m.ifExists != "" {
			if _, err := os.Stat(filepath.Join(root, m.ifExists)); err != nil {
				continue
			}
		}
		target := filepath.Join(root, m.target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("mount %s: %w", m.target, err))
			continue
		}
		if isMountPoint(target) {
			continue
		}
		err := unix.Mount(m.source, target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	return errors.Join(errs...)
}

// isMountPoint reports whether dir is on another filesystem than its
// parent. A bind mount of the same filesystem is not detected; early
// mounts are never bind mounts.
func isMountPoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}
