package disksteps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/disk"
)

// ResolvePartition turns a partition spec (a device node, or "IMAGE#N")
// into a disk.Partition with its place on the disk.
func ResolvePartition(spec string) (disk.Partition, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return disk.Partition{}, deploy.Errorf(deploy.KindInvalid, "no partition given")
	}
	if img, n, ok := SplitImageSpec(spec); ok {
		d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
		if err != nil {
			return disk.Partition{}, fmt.Errorf("partition %s: %w", spec, err)
		}
		defer d.Close()
		pt, err := d.GetPartitionTable()
		if err != nil {
			return disk.Partition{}, fmt.Errorf("partition %s: no partition table: %w", spec, err)
		}
		for _, p := range pt.GetPartitions() {
			if p.GetIndex() == n && p.GetSize() > 0 {
				return disk.Partition{DiskPath: img, Number: n, Start: p.GetStart(), Size: p.GetSize()}, nil
			}
		}
		return disk.Partition{}, deploy.Errorf(deploy.KindNotFound, "partition %s: the image has no partition %d", spec, n)
	}
	name := filepath.Base(spec)
	sys := filepath.Join("/sys/class/block", name)
	n, err := readSysInt(filepath.Join(sys, "partition"))
	if err != nil {
		return disk.Partition{}, deploy.Errorf(deploy.KindInvalid, "%s is not a partition (no %s/partition)", spec, sys)
	}
	start, err1 := readSysInt(filepath.Join(sys, "start"))
	size, err2 := readSysInt(filepath.Join(sys, "size"))
	if err := errors.Join(err1, err2); err != nil {
		return disk.Partition{}, fmt.Errorf("partition %s: %w", spec, err)
	}
	real, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return disk.Partition{}, fmt.Errorf("partition %s: %w", spec, err)
	}
	return disk.Partition{DiskPath: "/dev/" + filepath.Base(filepath.Dir(real)), Number: int(n),
		Start: start * 512, Size: size * 512, Device: spec}, nil
}

func readSysInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// rawTarget is where ApplyRaw writes partition p.
func rawTarget(p disk.Partition) (dst string, offset, limit int64) {
	if p.Device != "" {
		return p.Device, 0, p.Size
	}
	return p.DiskPath, p.Start, p.Size
}

// mountRoot makes the root filesystem of partition spec readable as a
// directory: mount(2) read-only for a device node, `debugfs rdump` of
// /boot/efi for an image file (only that tree is needed; an image file
// cannot be mounted without root and a loop device).
func mountRoot(ctx context.Context, spec, tmpDir string) (string, func() error, error) {
	p, err := ResolvePartition(spec)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(tmpDir, "imprint-root-*")
	if err != nil {
		return "", nil, err
	}
	if p.Device != "" {
		if err := unix.Mount(p.Device, dir, "ext4", unix.MS_RDONLY, ""); err != nil {
			_ = os.Remove(dir)
			return "", nil, fmt.Errorf("mount %s (ext4, read-only): %w", p.Device, err)
		}
		return dir, func() error {
			err := unix.Unmount(dir, 0)
			_ = os.Remove(dir)
			return err
		}, nil
	}
	cleanup := func() error { return os.RemoveAll(dir) }
	if _, err := exec.LookPath("debugfs"); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("read root filesystem of %s: debugfs (e2fsprogs) is not installed", spec)
	}
	// debugfs opens a filesystem at a byte offset inside an image file with
	// the unix I/O manager's "?offset=" option.
	target := fmt.Sprintf("%s?offset=%d", p.DiskPath, p.Start)
	if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "debugfs", "-R", "rdump /boot/efi "+filepath.Join(dir, "boot"), target)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("debugfs rdump /boot/efi from %s: %w: %s", spec, err, strings.TrimSpace(out.String()))
	}
	if strings.Contains(out.String(), "Bad magic number") || strings.Contains(out.String(), "Couldn't find valid filesystem") {
		cleanup()
		return "", nil, fmt.Errorf("partition %s holds no ext2/3/4 filesystem: %s", spec, strings.TrimSpace(out.String()))
	}
	return dir, cleanup, nil
}

// MountRW mounts the ext4 root filesystem on device node spec read-write
// (the boot image stages the agent into it before a reboot). An image-file
// spec cannot be mounted and is refused.
func MountRW(spec, tmpDir string) (string, func() error, error) {
	if _, _, ok := SplitImageSpec(spec); ok {
		return "", nil, deploy.Errorf(deploy.KindInvalid, "%s is a partition of an image file; it cannot be mounted read-write", spec)
	}
	dir, err := os.MkdirTemp(tmpDir, "imprint-target-*")
	if err != nil {
		return "", nil, err
	}
	if err := unix.Mount(spec, dir, "ext4", 0, ""); err != nil {
		_ = os.Remove(dir)
		return "", nil, fmt.Errorf("mount %s (ext4, read-write): %w", spec, err)
	}
	return dir, func() error {
		unix.Sync()
		err := unix.Unmount(dir, 0)
		_ = os.Remove(dir)
		return err
	}, nil
}

// copyToESP copies the tree at src into the root of the FAT32 filesystem
// of partition esp, reading each file whole and writing it in one call
// (go-diskfs's FAT32 is slow with small writes; EFI files are small).
func copyToESP(src string, esp disk.Partition) ([]string, error) {
	// Not exclusive: the root partition of the same disk is mounted while
	// we copy out of it, and the kernel refuses O_EXCL on a busy disk.
	d, err := diskfs.Open(esp.DiskPath, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", esp.DiskPath, err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(esp.Number)
	if err != nil {
		return nil, fmt.Errorf("ESP (partition %d of %s): %w", esp.Number, esp.DiskPath, err)
	}
	var copied []string
	err = filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		dst := "/" + filepath.ToSlash(rel)
		switch {
		case e.IsDir():
			if err := fsys.Mkdir(dst); err != nil {
				return fmt.Errorf("mkdir %s on the ESP: %w", dst, err)
			}
			return nil
		case !e.Type().IsRegular():
			return nil // symlinks and the like have no FAT32 form
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := fsys.Mkdir(path.Dir(dst)); err != nil {
			return fmt.Errorf("mkdir %s on the ESP: %w", path.Dir(dst), err)
		}
		f, err := fsys.OpenFile(dst, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("create %s on the ESP: %w", dst, err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("write %s on the ESP: %w", dst, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s on the ESP: %w", dst, err)
		}
		copied = append(copied, dst)
		return nil
	})
	return copied, err
}
