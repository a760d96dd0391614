// Package multicast sends one content version to many machines at once
// with udpcast (Debian package udpcast, the engine FOG uses): the server
// runs udp-sender with the blob on its standard input, each machine runs
// udp-receiver and reads the image from its standard output straight onto
// its disk, and a machine that loses the stream fetches the rest by HTTP
// Range (see Reader).
//
// udpcast's own protocol handles rendezvous, retransmission of lost
// slices and receivers that stop answering: a receiver that misses
// RetriesUntilDrop acknowledgement requests in a row is dropped, so a
// stalled machine holds the others up for at most that many
// retransmission rounds (measured in docs/performance.md).
package multicast

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/hosttool"
)

// Programs are the udpcast commands, found on PATH.
const (
	SenderProgram   = "udp-sender"
	ReceiverProgram = "udp-receiver"
)

// SendConfig is one udp-sender run.
type SendConfig struct {
	// Interface is the network interface to send on (udp-sender
	// --interface). Required: a server usually has more than one.
	Interface string
	// Portbase is the even UDP port pair (portbase, portbase+1) of the
	// session; receivers must use the same.
	Portbase int
	// Machines is how many receivers to wait for before sending.
	Machines int
	// Wait is how long after the first receiver joined to start with
	// fewer than Machines.
	Wait time.Duration
	// RetriesUntilDrop is how many acknowledgement requests a receiver may
	// miss before it is dropped (0: DefaultRetriesUntilDrop).
	RetriesUntilDrop int
	// MaxBitrate caps the send rate (udp-sender --max-bitrate, e.g.
	// "600m"); empty leaves udpcast's default.
	MaxBitrate string
}

// StartTimeout ends a session no machine joined, counted beyond its Wait.
const StartTimeout = time.Hour

// DefaultRetriesUntilDrop bounds how long a stalled receiver holds the
// session up.
const DefaultRetriesUntilDrop = 20

// Check reports a configuration udp-sender would refuse or misuse.
func (c SendConfig) Check() error {
	switch {
	case c.Interface == "" || strings.ContainsAny(c.Interface, " /\x00") || len(c.Interface) > 15:
		return deploy.Errorf(deploy.KindInvalid, "multicast: a network interface name is required, got %q", c.Interface)
	case c.Portbase < 1024 || c.Portbase > 65534 || c.Portbase%2 != 0:
		return deploy.Errorf(deploy.KindInvalid, "multicast: portbase must be even and between 1024 and 65534, got %d", c.Portbase)
	case c.Machines < 1 || c.Machines > 1000:
		return deploy.Errorf(deploy.KindInvalid, "multicast: machines must be between 1 and 1000, got %d", c.Machines)
	case c.Wait < time.Second || c.Wait > 24*time.Hour:
		return deploy.Errorf(deploy.KindInvalid, "multicast: wait must be between 1s and 24h, got %s", c.Wait)
	}
	return nil
}

// senderArgs is the udp-sender command line for c; the data comes on
// standard input.
func senderArgs(c SendConfig) []string {
	retries := c.RetriesUntilDrop
	if retries <= 0 {
		retries = DefaultRetriesUntilDrop
	}
	args := []string{
		"--nokbd",
		"--interface", c.Interface,
		"--portbase", strconv.Itoa(c.Portbase),
		"--min-receivers", strconv.Itoa(c.Machines),
		"--max-wait", strconv.Itoa(int(c.Wait / time.Second)),
		"--retries-until-drop", strconv.Itoa(retries),
		// A session nobody joins ends after an hour (plus the wait); the
		// transfer must also have started by then.
		"--start-timeout", strconv.Itoa(int((c.Wait + StartTimeout) / time.Second)),
	}
	if c.MaxBitrate != "" {
		args = append(args, "--max-bitrate", c.MaxBitrate)
	}
	return args
}

// Event is a line of udp-sender's progress, parsed.
type Event int

// What udp-sender said.
const (
	EventOther    Event = iota
	EventJoined         // a receiver connected
	EventStarting       // the transfer starts
	EventDropped        // a receiver was dropped
)

// parseSenderLine classifies one line of udp-sender's standard error.
func parseSenderLine(line string) Event {
	l := strings.ToLower(line)
	switch {
	case strings.Contains(l, "starting transfer"):
		return EventStarting
	case strings.Contains(l, "new connection from"):
		return EventJoined
	case strings.Contains(l, "dropping"):
		return EventDropped
	}
	return EventOther
}

// Send runs udp-sender with data on its standard input until data ends and
// every receiver acknowledged it (or was dropped). on is called for every
// line udp-sender writes, with its parsed Event (on may be nil). A session
// that never sees a receiver ends when ctx does.
func Send(ctx context.Context, data io.Reader, c SendConfig, on func(Event, string)) error {
	if err := c.Check(); err != nil {
		return err
	}
	bin, err := hosttool.Find(SenderProgram)
	if err != nil {
		return deploy.Errorf(deploy.KindUnavailable, "multicast needs %s (Debian package udpcast): %v", SenderProgram, err)
	}
	cmd := exec.CommandContext(ctx, bin, senderArgs(c)...)
	cmd.Stdin = data
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("multicast send: %w", err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("multicast send: %w", err)
	}
	tail := readLines(stderr, on)
	err = cmd.Wait()
	last := tail()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("multicast send: %w", ctx.Err())
		}
		return fmt.Errorf("multicast send: %s: %w (%s)", SenderProgram, err, last)
	}
	return nil
}

// readLines hands every line of r to on and returns a function that waits
// for r's end and gives the last non-empty line. udp-sender ends progress
// lines with '\r', so both '\r' and '\n' end a line.
func readLines(r io.Reader, on func(Event, string)) func() string {
	var (
		wg   sync.WaitGroup
		last string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), 64*1024)
		sc.Split(scanCRLF)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			last = line
			if on != nil {
				on(parseSenderLine(line), line)
			}
		}
		io.Copy(io.Discard, r)
	}()
	return func() string { wg.Wait(); return last }
}

func scanCRLF(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ReceiveConfig is one udp-receiver run.
type ReceiveConfig struct {
	Interface string // the machine's interface towards the server
	Portbase  int
	// StartTimeout is how long to wait for the transfer to start; a
	// machine that joins too late gives up after it and falls back.
	StartTimeout time.Duration
	// ReceiveTimeout ends a transfer that stopped sending for this long.
	ReceiveTimeout time.Duration
}

func receiverArgs(c ReceiveConfig) []string {
	args := []string{"--nokbd", "--portbase", strconv.Itoa(c.Portbase)}
	if c.Interface != "" {
		args = append(args, "--interface", c.Interface)
	}
	if c.StartTimeout > 0 {
		args = append(args, "--start-timeout", strconv.Itoa(max(1, int(c.StartTimeout/time.Second))))
	}
	if c.ReceiveTimeout > 0 {
		args = append(args, "--receive-timeout", strconv.Itoa(max(1, int(c.ReceiveTimeout/time.Second))))
	}
	return args
}

// Receive starts udp-receiver and returns the data as it arrives. Close
// stops the receiver; a Read error after the receiver failed says why.
func Receive(ctx context.Context, c ReceiveConfig) (io.ReadCloser, error) {
	bin, err := hosttool.Find(ReceiverProgram)
	if err != nil {
		return nil, deploy.Errorf(deploy.KindUnavailable, "multicast needs %s (Debian package udpcast in the boot image): %v", ReceiverProgram, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, receiverArgs(c)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("multicast receive: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("multicast receive: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("multicast receive: %w", err)
	}
	return &receiver{cmd: cmd, out: out, cancel: cancel, tail: readLines(stderr, nil)}, nil
}

type receiver struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	cancel context.CancelFunc
	tail   func() string
	done   bool
	err    error
}

func (r *receiver) Read(p []byte) (int, error) {
	if r.done {
		return 0, r.err
	}
	n, err := r.out.Read(p)
	if err == io.EOF {
		// The stream ended: it is complete only if udp-receiver says so.
		r.done = true
		if werr := r.cmd.Wait(); werr != nil {
			r.err = fmt.Errorf("multicast receive: %s: %w (%s)", ReceiverProgram, werr, r.tail())
		} else {
			r.err = io.EOF
		}
		return n, r.err
	}
	return n, err
}

func (r *receiver) Close() error {
	r.cancel()
	if !r.done {
		r.done, r.err = true, errors.New("multicast receive: closed")
		r.cmd.Wait()
	}
	return nil
}
