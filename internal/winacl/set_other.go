//go:build !linux

package winacl

import "errors"

var errNotLinux = errors.New("winacl: setting an NTFS security descriptor from outside Windows needs Linux (ntfs-3g or ntfs3)")

// Set fails: only Linux's NTFS drivers are supported.
func Set(string, []byte) error { return errNotLinux }

// Get fails: only Linux's NTFS drivers are supported.
func Get(string) ([]byte, error) { return nil, errNotLinux }

// SetTree fails: only Linux's NTFS drivers are supported.
func SetTree(string) error { return errNotLinux }
