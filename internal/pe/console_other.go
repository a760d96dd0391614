//go:build !linux

package pe

import (
	"io"
	"os"
)

// OpenConsole opens /dev/console; only on Linux.
func OpenConsole() (io.ReadWriteCloser, error) { return nil, ErrNotLinux }

// NoEcho switches terminal echo off; only on Linux.
func NoEcho(f *os.File) (restore func() error, err error) { return nil, ErrNotLinux }
