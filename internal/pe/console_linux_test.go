package pe_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/pe"
	"github.com/imprint-osd/imprint/internal/ptytest"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// readUntil reads the master until want appears or the (generous)
// deadline passes, and returns everything read.
func readUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 1024)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(got.String(), want) {
		if err := m.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, err := m.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading the terminal for %q: %v; got %q", want, err, got.String())
		}
	}
	return got.String()
}

func TestReadSecretOnTerminal(t *testing.T) {
	m, s := ptytest.Open(t)
	type result struct {
		line string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		line, err := pe.ReadSecret(s, "Passcode: ")
		res <- result{line, err}
	}()
	// Type as soon as the prompt shows, as the e2e harness does; a serial
	// console sends CR for Enter.
	readUntil(t, m, "Passcode: ")
	if _, err := m.WriteString("s3cret-pass\r"); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.line != "s3cret-pass" {
		t.Fatalf("ReadSecret = %q, %v", r.line, r.err)
	}
	if _, err := s.WriteString("END\n"); err != nil {
		t.Fatal(err)
	}
	if screen := readUntil(t, m, "END"); strings.Contains(screen, "s3cret") {
		t.Errorf("the secret was echoed: %q", screen)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("echo not restored after ReadSecret")
	}
}

func TestNoEcho(t *testing.T) {
	m, s := ptytest.Open(t)
	restore, err := pe.NoEcho(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteString("hidden\r"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := s.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "hidden\n" {
		t.Errorf("line read = %q, want canonical input with CR mapped to NL", got)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteString("shown\r"); err != nil {
		t.Fatal(err)
	}
	if screen := readUntil(t, m, "shown"); strings.Contains(screen, "hidden") {
		t.Errorf("echoed while echo was off: %q", screen)
	}
}

func TestReadSecretFromPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := w.WriteString("first\r\nsecond\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, want := range []string{"first", "second"} {
		got, err := pe.ReadSecret(r, "P: ")
		if err != nil || got != want {
			t.Fatalf("ReadSecret = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := pe.ReadSecret(r, ""); err == nil {
		t.Error("no error at end of input")
	}
}

func TestShellOnTerminal(t *testing.T) {
	if _, err := os.Stat(pe.ShellPath); err != nil {
		testenv.Missing(t, "no POSIX shell at %s: apt-get install dash: %v", pe.ShellPath, err)
	}
	m, s := ptytest.Open(t)
	done := make(chan error, 1)
	go func() { done <- pe.Shell(s.Name()) }()
	readUntil(t, m, "type exit to return")
	if _, err := m.WriteString("echo marker-$((6*7))\rexit\r"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, m, "marker-42")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shell: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shell did not return after exit")
	}
}
