//go:build !linux

package pe

// MountEarly mounts /proc, /sys, /dev and the rest; only on Linux.
func MountEarly() error { return ErrNotLinux }
