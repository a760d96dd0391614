package boot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileSource supplies the boot image files for an architecture. Open
// returns an error wrapping fs.ErrNotExist when the file is absent.
type FileSource interface {
	Open(arch, name string) (f io.ReadSeekCloser, modTime time.Time, size int64, err error)
}

// imageFile reports whether name is a boot image file served under
// /images/{arch}/. Extend this list when the boot image grows (e.g. a
// second initrd segment).
func imageFile(name string) bool {
	switch name {
	case "vmlinuz", "initrd.img", ShimFile, GrubFile:
		return true
	}
	return false
}

// ipxeFile reports whether name is an iPXE binary served under /ipxe/.
func ipxeFile(name string) bool {
	switch name {
	case "ipxe.efi", "snponly.efi", "undionly.kpxe", "undionly.kkpxe", "ipxe.pxe":
		return true
	}
	return false
}

// DirFileSource reads root/{arch}/{name}.
type DirFileSource string

var _ FileSource = DirFileSource("")

// Open opens root/arch/name. arch and name must be a known architecture and
// boot image file name, so no request can leave root.
func (d DirFileSource) Open(arch, name string) (io.ReadSeekCloser, time.Time, int64, error) {
	if !validArch(arch) {
		return nil, time.Time{}, 0, fmt.Errorf("open boot file: unknown architecture %q", arch)
	}
	if !imageFile(name) {
		return nil, time.Time{}, 0, fmt.Errorf("open boot file: unknown file name %q", name)
	}
	f, mod, size, err := openRegular(filepath.Join(string(d), arch, name))
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	return f, mod, size, nil
}

// openRegular opens path (following symlinks, as Debian's /usr/lib/ipxe
// uses them) and refuses anything but a regular file.
func openRegular(path string) (*os.File, time.Time, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("open boot file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, time.Time{}, 0, fmt.Errorf("open boot file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, time.Time{}, 0, fmt.Errorf("open boot file: %s is not a regular file: %w", path, fs.ErrNotExist)
	}
	return f, fi.ModTime(), fi.Size(), nil
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
