package disksteps

import (
	"os"
	"os/exec"
	"path/filepath"
)

// toolPath finds a host program by name: on PATH, else in the system
// directories. The boot image's agent runs as init with no PATH set, so
// exec's lookup alone finds nothing there (internal/disk does the same).
func toolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name // exec reports it missing
}
