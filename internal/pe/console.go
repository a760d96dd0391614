package pe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ConsolePath is the kernel's console: the device of the LAST console= on
// the kernel command line (see the package documentation).
const ConsolePath = "/dev/console"

// ReadSecret reads one line from f without echoing it, for the passcode
// prompt. On a terminal the echo is switched off for the read (the line
// discipline stays canonical, so backspace works and a serial CR counts as
// Enter) and restored afterwards; otherwise (a pipe, a file) it reads one
// line byte by byte so nothing after the newline is consumed. The line
// ending is not part of the result.
func ReadSecret(f *os.File) (string, error) {
	if term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r"), nil
	}
	var sb strings.Builder
	var c [1]byte
	for {
		n, err := f.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				break
			}
			sb.WriteByte(c[0])
		}
		if errors.Is(err, io.EOF) {
			if sb.Len() == 0 {
				return "", fmt.Errorf("read secret: %w", io.ErrUnexpectedEOF)
			}
			break
		}
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
	}
	return strings.TrimRight(sb.String(), "\r"), nil
}
