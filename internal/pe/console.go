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

// ReadSecret writes prompt to f and reads one line from f without echoing
// it, for the passcode prompt. On a terminal the echo is switched off
// BEFORE the prompt is written, so a technician (or a test harness) who
// types as soon as the prompt appears is never echoed; the line discipline
// stays canonical, so backspace works and a serial console's CR counts as
// Enter. The terminal mode is restored afterwards and a newline written,
// since the Enter key was not echoed either. When f is not a terminal (a
// pipe, a file) it writes the prompt if it can and reads one line byte by
// byte, so nothing after the newline is consumed. The line ending is not part of the result.
func ReadSecret(f *os.File, prompt string) (string, error) {
	if !term.IsTerminal(int(f.Fd())) {
		// Best effort: a read-only pipe has nowhere to show it.
		_, _ = io.WriteString(f, prompt)
		return readLine(f)
	}
	restore, err := NoEcho(f)
	if errors.Is(err, ErrNotLinux) {
		if _, err := io.WriteString(f, prompt); err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		b, err := term.ReadPassword(int(f.Fd()))
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r"), nil
	}
	if err != nil {
		return "", err
	}
	_, werr := io.WriteString(f, prompt)
	line, rerr := readLine(f)
	if err := restore(); err != nil {
		return "", err
	}
	_, _ = io.WriteString(f, "\r\n")
	if werr != nil {
		return "", fmt.Errorf("read secret: %w", werr)
	}
	return line, rerr
}

// readLine reads up to a newline one byte at a time.
func readLine(f *os.File) (string, error) {
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
