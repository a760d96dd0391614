package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/ptytest"
)

// A passcode typed before its prompt appears (as a quick technician does
// after "Wrong passcode.") must not be echoed either.
func TestHushedConsoleNeverEchoesTypeAhead(t *testing.T) {
	m, s := ptytest.Open(t)
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
