// Package proc runs the processes of task-sequence steps: output copied to
// the step's log and kept as a tail for the run record, a timeout, and exit
// codes mapped through a list of success codes.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TailSize is how many bytes of output are kept for the run record.
const TailSize = 4096

// Cmd is one process to run.
type Cmd struct {
	Path    string
	Args    []string
	Dir     string
	Env     []string // added to the agent's environment
	Timeout time.Duration
	Log     io.Writer // receives stdout and stderr
	Stdin   io.Reader
	// CmdLine, on Windows, is the command line given to CreateProcess
	// instead of one quoted from Path and Args (see ShellCmd,
	// WindowsCommandLine); elsewhere it is ignored.
	CmdLine string
}

// Result is how the process ended.
type Result struct {
	ExitCode int
	Tail     string
}

// Run starts c and waits for it. A process that cannot start, or that
// runs past the timeout, is an error; a non-zero exit is not (see
// CheckCodes).
func Run(ctx context.Context, c Cmd) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(cmd.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	cmd.WaitDelay = 5 * time.Second
	killGroup(cmd)
	setCmdLine(&cmd.SysProcAttr, c.CmdLine)
	tail := &tailBuffer{max: TailSize}
	var w io.Writer = tail
	if c.Log != nil {
		w = io.MultiWriter(c.Log, tail)
	}
	sw := &syncWriter{w: w}
	cmd.Stdout, cmd.Stderr = sw, sw
	err := cmd.Run()
	res := Result{ExitCode: cmd.ProcessState.ExitCode(), Tail: tail.String()}
	if cmd.ProcessState == nil {
		res.ExitCode = -1
	}
	if ctx.Err() == context.DeadlineExceeded {
		return res, fmt.Errorf("%s did not finish within %s and was stopped", c.Path, c.Timeout)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, fmt.Errorf("run %s: %w", c.Path, err)
	}
	if err != nil && ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// ParseCodes parses success codes separated by commas, semicolons or
// spaces; empty means {0}.
func ParseCodes(s string) ([]int, error) {
	var codes []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("success code %q is not a number", f)
		}
		codes = append(codes, n)
	}
	if len(codes) == 0 {
		codes = []int{0}
	}
	return codes, nil
}

// CheckCodes returns an error naming the exit code when it is not one of
// codes.
func CheckCodes(exit int, codes []int) error {
	for _, c := range codes {
		if c == exit {
			return nil
		}
	}
	return fmt.Errorf("exit code %d is not a success code (%s)", exit, joinInts(codes))
}

func joinInts(n []int) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// Minutes parses a timeout option in minutes ("" or "0": none).
func Minutes(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("timeout %q is not a number of minutes", s)
	}
	return time.Duration(n * float64(time.Minute)), nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.ToValidUTF8(string(t.b), "") }
