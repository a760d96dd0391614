package pe

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// OpenConsole opens /dev/console for reading and writing (not as the
// controlling terminal). The result is an *os.File; ReadSecret and NoEcho
// take it as one.
func OpenConsole() (io.ReadWriteCloser, error) {
	f, err := os.OpenFile(ConsolePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open console: %w", err)
	}
	return f, nil
}

// NoEcho switches echo off on the terminal f, keeping canonical line
// editing and signals ("raw-ish"), and returns a function that restores
// the previous mode. Use it when the caller reads the answer itself;
// ReadSecret does this around a single line.
func NoEcho(f *os.File) (restore func() error, err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("no echo: %w", err)
	}
	t := *old
	t.Lflag &^= unix.ECHO | unix.ECHOE | unix.ECHOK | unix.ECHONL
	t.Lflag |= unix.ICANON | unix.ISIG
	t.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, fmt.Errorf("no echo: %w", err)
	}
	return func() error {
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, old); err != nil {
			return fmt.Errorf("restore echo: %w", err)
		}
		return nil
	}, nil
}
