//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Console is a guest's serial console: QEMU's stdin and stdout. Every
// output line is logged with the time since the console was opened, to the
// test log and to a file; Expect waits for output and Send types input.
type Console struct {
	t     testing.TB
	start time.Time
	in    io.Writer
	logf  *os.File

	mu      sync.Mutex
	buf     []byte        // everything the guest printed
	pos     int           // how far Expect has consumed buf
	line    []byte        // the current, unfinished output line
	changed chan struct{} // closed and replaced whenever buf grows or EOF
	eof     bool
	quiet   bool // the test has ended: stop calling t.Logf
	done    chan struct{}
}

// ansiRE matches terminal escape sequences (OVMF and iPXE draw with them).
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?=]*[A-Za-z]|[()][0-9A-Za-z]|[=>c])`)

// newConsole starts reading out; lines are also written to logPath.
func newConsole(t testing.TB, in io.Writer, out io.Reader, logPath string) (*Console, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("console log: %w", err)
	}
	c := &Console{t: t, start: time.Now(), in: in, logf: f, changed: make(chan struct{}), done: make(chan struct{})}
	go c.read(out)
	return c, nil
}

func (c *Console) read(out io.Reader) {
	defer close(c.done)
	chunk := make([]byte, 4096)
	for {
		n, err := out.Read(chunk)
		c.mu.Lock()
		if n > 0 {
			c.buf = append(c.buf, chunk[:n]...)
			for _, b := range chunk[:n] {
				if b == '\n' {
					c.emit()
					continue
				}
				c.line = append(c.line, b)
			}
		}
		if err != nil {
			if len(c.line) > 0 {
				c.emit()
			}
			c.eof = true
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// emit logs the current line; c.mu is held.
func (c *Console) emit() {
	// A line redrawn with \r (progress bars) is logged as a terminal
	// would show it: the text after the last \r.
	line := bytes.TrimRight(c.line, "\r")
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	s := ansiRE.ReplaceAllString(string(line), "")
	c.line = c.line[:0]
	stamp := fmt.Sprintf("[%7.2fs] %s", time.Since(c.start).Seconds(), s)
	fmt.Fprintln(c.logf, stamp)
	if !c.quiet {
		c.t.Log("console: " + stamp)
	}
}

// Elapsed is the time since the console was opened (QEMU started).
func (c *Console) Elapsed() time.Duration { return time.Since(c.start) }

// Expect waits until the output not yet consumed matches re and returns
// the match; output up to the end of the match is consumed.
func (c *Console) Expect(ctx context.Context, re *regexp.Regexp) (string, error) {
	_, m, err := c.ExpectFirst(ctx, re)
	return m, err
}

// ExpectFirst waits for the earliest match of any of res in the output not
// yet consumed and returns which one matched (its index) and the match.
func (c *Console) ExpectFirst(ctx context.Context, res ...*regexp.Regexp) (int, string, error) {
	for {
		c.mu.Lock()
		best, bestAt, bestEnd := -1, 0, 0
		for i, re := range res {
			if loc := re.FindIndex(c.buf[c.pos:]); loc != nil && (best < 0 || loc[0] < bestAt) {
				best, bestAt, bestEnd = i, loc[0], loc[1]
			}
		}
		if best >= 0 {
			m := string(c.buf[c.pos+bestAt : c.pos+bestEnd])
			c.pos += bestEnd
			c.mu.Unlock()
			return best, m, nil
		}
		eof, ch := c.eof, c.changed
		c.mu.Unlock()
		if eof {
			return -1, "", fmt.Errorf("console closed (QEMU exited) while waiting for %s", describe(res))
		}
		select {
		case <-ctx.Done():
			return -1, "", fmt.Errorf("waiting for %s after %.0fs: %w", describe(res), c.Elapsed().Seconds(), ctx.Err())
		case <-ch:
		}
	}
}

func describe(res []*regexp.Regexp) string {
	var b bytes.Buffer
	for i, re := range res {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "/%s/", re)
	}
	return b.String()
}

// Send types s on the serial console.
func (c *Console) Send(s string) error {
	c.mu.Lock()
	elapsed := time.Since(c.start).Seconds()
	fmt.Fprintf(c.logf, "[%7.2fs] >>> harness types %q\n", elapsed, s)
	if !c.quiet {
		c.t.Logf("console: [%7.2fs] >>> harness types %q", elapsed, s)
	}
	c.mu.Unlock()
	if _, err := io.WriteString(c.in, s); err != nil {
		return fmt.Errorf("console send: %w", err)
	}
	return nil
}

// Output returns everything the guest printed so far.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

// close stops logging to the test (the test is over) after the reader has
// seen EOF or wait has passed, and closes the log file.
func (c *Console) close(wait time.Duration) {
	select {
	case <-c.done:
	case <-time.After(wait):
	}
	c.mu.Lock()
	c.quiet = true
	c.mu.Unlock()
	<-c.done
	c.logf.Close()
}
