//go:build linux

package disk

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// TarOptions tunes ApplyTar.
type TarOptions struct {
	Compression Compression // of the tarball; "" or Auto sniffs
	Label       string      // ext4 volume label; default "root"
	TempDir     string      // where to extract; default os.TempDir()
}

// ApplyTar makes p an ext4 filesystem holding the root-filesystem tarball r
// (plain, gzip, xz or zstd). It extracts r into a temporary directory and
// runs mkfs.ext4 -d on the partition, which works on block devices and image
// files alike without mounting; the extraction needs free space in TempDir
// equal to the unpacked tree (plus, for an image file, the filesystem's used
// blocks while it is staged). Ownership, modes, symlinks, hard links and
// modification times are kept; device nodes need root; extended attributes
// are not carried over.
func ApplyTar(ctx context.Context, p Partition, r io.Reader, o TarOptions) error {
	dir, err := os.MkdirTemp(o.TempDir, "imprint-rootfs-*")
	if err != nil {
		return fmt.Errorf("apply tar: %w", err)
	}
	defer os.RemoveAll(dir)
	var format Compression
	dec, closeDec, err := decoder(r, o.Compression, &format)
	if err != nil {
		return fmt.Errorf("apply tar: %w", err)
	}
	defer closeDec()
	if err := extractTar(ctx, dir, dec); err != nil {
		return fmt.Errorf("apply tar: %w", err)
	}
	label := o.Label
	if label == "" {
		label = "root"
	}
	err = onPartition(ctx, p, func(target string) error {
		return run(ctx, nil, "mkfs.ext4", "-q", "-F", "-L", label, "-d", dir, target)
	})
	if err != nil {
		return fmt.Errorf("apply tar to partition %d: %w", p.Number, err)
	}
	return nil
}

func extractTar(ctx context.Context, dir string, r io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	isRoot := os.Geteuid() == 0
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirTimes []dirTime
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tarball: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if name == "." {
			if h.Typeflag == tar.TypeDir {
				if err := root.Chmod(".", fs.FileMode(h.Mode)&fs.ModePerm); err != nil {
					return err
				}
			}
			continue
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return deploy.Errorf(deploy.KindInvalid, "tarball entry %q points outside the root", h.Name)
		}
		mode := fs.FileMode(h.Mode & 0o7777) // Unix permission and special bits
		if err := mkdirParents(root, path.Dir(name)); err != nil {
			return fmt.Errorf("tarball entry %q: %w", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("tarball entry %q: %w", h.Name, err)
			}
			dirTimes = append(dirTimes, dirTime{name, h.ModTime})
		case tar.TypeReg:
			_ = root.Remove(name)
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("tarball entry %q: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("tarball entry %q: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(h.Linkname, name); err != nil {
				return fmt.Errorf("tarball entry %q: %w", h.Name, err)
			}
		case tar.TypeLink:
			_ = root.Remove(name)
			target := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("tarball entry %q: hard link to %q: %w", h.Name, h.Linkname, err)
			}
			continue // shares the target's metadata
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if err := mknodIn(dir, name, h); err != nil {
				return fmt.Errorf("tarball entry %q: %w", h.Name, err)
			}
		case tar.TypeXGlobalHeader:
			continue
		default:
			return deploy.Errorf(deploy.KindInvalid, "tarball entry %q has unsupported type %q", h.Name, h.Typeflag)
		}
		if err := root.Lchown(name, h.Uid, h.Gid); err != nil && isRoot {
			return fmt.Errorf("tarball entry %q: %w", h.Name, err)
		}
		if h.Typeflag != tar.TypeSymlink {
			if err := root.Chmod(name, modeBits(mode)); err != nil {
				return fmt.Errorf("tarball entry %q: %w", h.Name, err)
			}
			if h.Typeflag != tar.TypeDir {
				_ = root.Chtimes(name, h.ModTime, h.ModTime)
			}
		}
	}
	// Directory times last, deepest first, since adding entries changes them.
	slices.Reverse(dirTimes)
	for _, d := range dirTimes {
		_ = root.Chtimes(d.name, d.t, d.t)
	}
	return nil
}

func mkdirParents(root *os.Root, dir string) error {
	if dir == "." || dir == "/" {
		return nil
	}
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return nil
}

// modeBits turns Unix permission bits (with setuid, setgid, sticky) into an
// fs.FileMode for Chmod.
func modeBits(m fs.FileMode) fs.FileMode {
	out := m & fs.ModePerm
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

func mknodIn(dir, name string, h *tar.Header) error {
	mode := uint32(h.Mode & 0o7777)
	switch h.Typeflag {
	case tar.TypeChar:
		mode |= syscall.S_IFCHR
	case tar.TypeBlock:
		mode |= syscall.S_IFBLK
	case tar.TypeFifo:
		mode |= syscall.S_IFIFO
	}
	// name is clean and relative, and its parent was made through os.Root,
	// so it cannot leave dir unless a parent is a symlink: refuse that.
	if parent := path.Dir(name); parent != "." {
		real, err := filepath.EvalSymlinks(filepath.Join(dir, parent))
		base, berr := filepath.EvalSymlinks(dir)
		if err != nil || berr != nil || !strings.HasPrefix(real+"/", base+"/") {
			return fmt.Errorf("parent %q leaves the root", parent)
		}
	}
	dev := int((uint32(h.Devmajor)&0xfff)<<8 | uint32(h.Devminor)&0xff | (uint32(h.Devminor)&^0xff)<<12)
	_ = os.Remove(dir + "/" + name)
	return syscall.Mknod(dir+"/"+name, mode, dev)
}
