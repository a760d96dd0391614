//go:build !linux

package pe

import "time"

// SetClock sets the system clock; only on Linux.
func SetClock(t time.Time) error { return ErrNotLinux }
