package agent

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// A passcode typed before its prompt appears (as a quick technician does
// after "Wrong passcode.") must not be echoed either.
func TestHushedConsoleNeverEchoesTypeAhead(t *testing.T) {
	m, s := openPTY(t)
	c := NewConsole(s, s)
	restore := c.Hush()
	m.Write([]byte("typed-ahead-secret\r"))
	time.Sleep(100 * time.Millisecond) // let the line discipline see it before the prompt
	got, err := c.ReadSecret("Passcode: ")
	restore()
	if err != nil || got != "typed-ahead-secret" {
		t.Fatalf("ReadSecret = %q, %v", got, err)
	}
	c.Printf("END-OF-SCREEN\n")
	var screen bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(screen.String(), "END-OF-SCREEN") {
		n, err := m.Read(buf)
		screen.Write(buf[:n])
		if err != nil {
			t.Fatalf("read terminal: %v (got %q)", err, screen.String())
		}
	}
	if strings.Contains(screen.String(), "secret") || !strings.Contains(screen.String(), "Passcode: ") {
		t.Fatalf("terminal showed %q", screen.String())
	}
}
