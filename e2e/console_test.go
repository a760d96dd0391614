//go:build e2e

package e2e

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestConsole checks Expect on output that arrives in pieces, the earliest
// of several patterns winning, consumption, Send, and the errors on EOF
// and on a deadline.
func TestConsole(t *testing.T) {
	outR, outW := io.Pipe()
	inR, inW := io.Pipe()
	c, err := newConsole(t, inW, outR, filepath.Join(t.TempDir(), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	go func() {
		for _, piece := range []string{"boot\r\n\x1b[0mPass", "code: "} {
			io.WriteString(outW, piece)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if m, err := c.Expect(ctx, rePasscode); err != nil || m != "Passcode: " {
		t.Fatalf("Expect = %q, %v; want the prompt split over two writes", m, err)
	}
	go func() {
		b := make([]byte, 7)
		io.ReadFull(inR, b)
		io.WriteString(outW, "got "+string(b)+"\nIMPRINT-RUN-FAILED: disk\nIMPRINT-RUN-SUCCEEDED\n")
	}()
	if err := c.Send("secret\r"); err != nil {
		t.Fatal(err)
	}
	i, m, err := c.ExpectFirst(ctx, reSucceeded, reFailed)
	if err != nil || i != 1 || m != "IMPRINT-RUN-FAILED: disk\n" {
		t.Fatalf("ExpectFirst = %d %q %v; want the earlier failure marker", i, m, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := c.Expect(short, regexp.MustCompile(`got secret`)); err == nil {
		t.Fatal("Expect matched output that was already consumed")
	} else if !strings.Contains(err.Error(), "/got secret/") {
		t.Fatalf("Expect past its deadline: %v; want an error naming the pattern", err)
	}
	outW.Close()
	if _, err := c.Expect(ctx, regexp.MustCompile(`never`)); err == nil || !strings.Contains(err.Error(), "QEMU exited") {
		t.Fatalf("Expect after EOF: %v", err)
	}
	c.close(time.Second)
}
