// Package hosttool finds the host programs Imprint runs (mkfs, wimlib,
// ntfs-3g, udp-receiver…): on PATH, else in the system directories. The
// boot image starts the agent as init with no PATH at all, and a test's
// PATH may lack /sbin, so exec's own lookup is not enough.
package hosttool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// dirs are searched, in order, after PATH.
var dirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Find returns the path of the program name.
func Find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed", name)
}

// Path is Find's path, or name itself when it is not found (so that exec
// reports it missing).
func Path(name string) string {
	if p, err := Find(name); err == nil {
		return p
	}
	return name
}
