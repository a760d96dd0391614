package cpio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

const (
	magic   = "070701"
	trailer = "TRAILER!!!"

	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
)

// Writer writes a newc archive. Names are written without a leading "/" (as
// `find . | cpio -o` would, minus the "./"). Call Close to write the
// trailer; Close does not close the underlying writer.
type Writer struct {
	w      io.Writer
	off    int64
	ino    uint32
	closed bool
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, ino: 1} }

// Mkdir writes a directory entry.
func (cw *Writer) Mkdir(name string, perm fs.FileMode) error {
	return cw.entry(name, modeDir|unixPerm(perm), 2, 0, 0, nil, 0)
}

// Symlink writes a symbolic link name pointing at target.
func (cw *Writer) Symlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %s: empty target", name)
	}
	return cw.entry(name, modeSymlink|0o777, 1, 0, 0, strings.NewReader(target), int64(len(target)))
}

// CharDev writes a character device node, e.g. /dev/console (5, 1).
func (cw *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return cw.entry(name, modeChar|unixPerm(perm), 1, major, minor, nil, 0)
}

// WriteFile writes a regular file of exactly size bytes read from r.
func (cw *Writer) WriteFile(name string, perm fs.FileMode, size int64, r io.Reader) error {
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: %s: size %d does not fit a newc header", name, size)
	}
	return cw.entry(name, modeRegular|unixPerm(perm), 1, 0, 0, r, size)
}

// Close writes the trailer entry. The archive is complete afterwards.
func (cw *Writer) Close() error {
	if cw.closed {
		return nil
	}
	if err := cw.header(trailer, 0, 1, 0, 0, 0, 0); err != nil {
		return err
	}
	cw.closed = true
	return nil
}

func (cw *Writer) entry(name string, mode, nlink, rmajor, rminor uint32, r io.Reader, size int64) error {
	if cw.closed {
		return errors.New("cpio: write after close")
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || name == trailer || strings.ContainsRune(name, 0) {
		return fmt.Errorf("cpio: invalid entry name %q", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("cpio: invalid entry name %q: empty, . or .. element", name)
		}
	}
	ino := cw.ino
	cw.ino++
	if err := cw.header(name, ino, mode, nlink, rmajor, rminor, size); err != nil {
		return err
	}
	if size > 0 {
		n, err := io.CopyN(cw.w, r, size)
		cw.off += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("cpio: %s: short content: got %d of %d bytes", name, n, size)
			}
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
	}
	return cw.pad()
}

func (cw *Writer) header(name string, ino, mode, nlink, rmajor, rminor uint32, size int64) error {
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with NUL), check.
	h := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%s\x00",
		magic, ino, mode, 0, 0, nlink, 0, uint32(size), 0, 0, rmajor, rminor, len(name)+1, 0, name)
	n, err := io.WriteString(cw.w, h)
	cw.off += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: write header %s: %w", name, err)
	}
	return cw.pad()
}

// pad aligns the stream to four bytes, as newc requires after the name and
// after the data.
func (cw *Writer) pad() error {
	if rem := cw.off % 4; rem != 0 {
		n, err := cw.w.Write(make([]byte, 4-rem))
		cw.off += int64(n)
		if err != nil {
			return fmt.Errorf("cpio: write padding: %w", err)
		}
	}
	return nil
}

// unixPerm converts permission bits, including setuid, setgid and sticky,
// to their Unix values.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}
