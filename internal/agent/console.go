package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/imprint-osd/imprint/internal/pe"
)

// Console is where the agent talks to the person at the machine: prompts,
// the task-sequence picker and live progress.
type Console struct {
	In  io.Reader
	Out io.Writer

	once   sync.Once
	br     *bufio.Reader
	mu     sync.Mutex
	hushed bool // terminal echo is off (Hush)
}

// Hush turns terminal echo off until the returned function is called, so
// a passcode is not shown even when it is typed before its prompt appears
// (after "Wrong passcode.", say). It does nothing when the input is not a
// terminal or echo cannot be changed (then ReadSecret hides each line).
func (c *Console) Hush() (restore func()) {
	f, ok := c.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	undo, err := pe.NoEcho(f)
	if err != nil {
		return func() {}
	}
	c.hushed = true
	return func() {
		undo()
		c.hushed = false
	}
}

// NewConsole returns a console on in and out.
func NewConsole(in io.Reader, out io.Writer) *Console { return &Console{In: in, Out: out} }

func (c *Console) reader() *bufio.Reader {
	c.once.Do(func() {
		in := c.In
		if in == nil {
			in = strings.NewReader("")
		}
		c.br = bufio.NewReader(in)
	})
	return c.br
}

// Printf writes to the console.
func (c *Console) Printf(format string, args ...any) {
	if c == nil || c.Out == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.Out, format, args...)
}

// ErrNoInput is returned when the console has no more input.
var ErrNoInput = errors.New("no input on the console")

// ReadLine shows prompt and reads one line.
func (c *Console) ReadLine(prompt string) (string, error) {
	c.Printf("%s", prompt)
	s, err := c.reader().ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", ErrNoInput
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// ReadSecret shows prompt and reads a line without echo when the input is
// a terminal.
func (c *Console) ReadSecret(prompt string) (string, error) {
	if c.hushed {
		s, err := c.ReadLine(prompt)
		c.Printf("\n")
		return s, err
	}
	if f, ok := c.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		c.Printf("%s", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		c.Printf("\n")
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return c.ReadLine(prompt)
}

// Bar renders a download bar: "[#####-----]  50%  5.0/10.0 MB".
func Bar(done, total int64, width int) string {
	if total <= 0 {
		return fmt.Sprintf("%.1f MB", float64(done)/1e6)
	}
	if done > total {
		done = total
	}
	n := int(int64(width) * done / total)
	return fmt.Sprintf("[%s%s] %3d%%  %.1f/%.1f MB", strings.Repeat("#", n), strings.Repeat("-", width-n),
		done*100/total, float64(done)/1e6, float64(total)/1e6)
}
