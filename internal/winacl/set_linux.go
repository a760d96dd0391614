package winacl

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The extended attributes through which Linux's NTFS drivers expose a
// file's security descriptor: ntfs-3g's, then the kernel ntfs3 driver's.
const (
	XattrNTFS3G = "system.ntfs_acl"
	XattrNTFS3  = "system.ntfs_security"
)

// Set gives the file or directory at p the security descriptor sd on an
// NTFS volume mounted with ntfs-3g or ntfs3. It fails, naming both
// attributes, when the filesystem supports neither (not NTFS, or a driver
// that cannot write descriptors): the caller must not then put anything
// secret there.
func Set(p string, sd []byte) error {
	err3g := unix.Setxattr(p, XattrNTFS3G, sd, 0)
	if err3g == nil {
		return nil
	}
	err3 := unix.Setxattr(p, XattrNTFS3, sd, 0)
	if err3 == nil {
		return nil
	}
	return fmt.Errorf("set the security descriptor of %s: %s: %v; %s: %v (is it an NTFS volume mounted with ntfs-3g or ntfs3?)",
		p, XattrNTFS3G, err3g, XattrNTFS3, err3)
}

// Get reads the security descriptor of p (ntfs-3g's attribute, else
// ntfs3's).
func Get(p string) ([]byte, error) {
	var last error
	for _, name := range []string{XattrNTFS3G, XattrNTFS3} {
		n, err := unix.Getxattr(p, name, nil)
		if err != nil {
			last = err
			continue
		}
		b := make([]byte, n)
		if n, err = unix.Getxattr(p, name, b); err != nil {
			last = err
			continue
		}
		return b[:n], nil
	}
	return nil, fmt.Errorf("read the security descriptor of %s: %w", p, last)
}

// SetTree gives dir and everything under it Private descriptors (the
// directory's entries inheritable), so that nothing in it depends on how
// the driver computes inheritance for files it creates.
func SetTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type()&fs.ModeSymlink != 0 {
			return errors.New("winacl: a symbolic link in " + dir + ": " + p)
		}
		return Set(p, Private(e.IsDir()))
	})
}
