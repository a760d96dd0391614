//go:build !linux

package pe

// Reboot restarts the machine; only on Linux.
func Reboot() error { return ErrNotLinux }

// PowerOff powers the machine off; only on Linux.
func PowerOff() error { return ErrNotLinux }

// Shell runs the diagnostics shell; only on Linux.
func Shell(console string) error { return ErrNotLinux }
