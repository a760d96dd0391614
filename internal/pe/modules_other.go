//go:build !linux

package pe

// LoadModules loads kernel modules; only on Linux.
func LoadModules(root, list string) (loaded []string, err error) {
	return nil, ErrNotLinux
}
