package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/client"
)

// Outbox is the on-disk queue of events not yet accepted by the server:
// one JSON event per line in Path, appended and fsynced before any send,
// and rewritten atomically when a batch is acknowledged. Events survive a
// lost connection, a crash and a reboot. It is safe for concurrent use.
type Outbox struct {
	Path string
	mu   sync.Mutex
}

// Append adds events to the end of the queue.
func (o *Outbox) Append(evs ...client.AgentEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var buf bytes.Buffer
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	f, err := os.OpenFile(o.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("outbox: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("outbox: %w", err)
	}
	return f.Close()
}

// Pending returns the queued events, oldest first. A torn last line (a
// crash mid-append) is dropped.
func (o *Outbox) Pending() ([]client.AgentEvent, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending()
}

func (o *Outbox) pending() ([]client.AgentEvent, error) {
	b, err := os.ReadFile(o.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	var out []client.AgentEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev client.AgentEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out, sc.Err()
}

// Ack removes the first n events.
func (o *Outbox) Ack(n int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs, err := o.pending()
	if err != nil {
		return err
	}
	if n > len(evs) {
		n = len(evs)
	}
	var buf bytes.Buffer
	for _, ev := range evs[n:] {
		b, _ := json.Marshal(ev)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return writeFileAtomic(o.Path, buf.Bytes(), 0o600)
}

// writeFileAtomic replaces path with b, creating its directory first.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, mode)
}

// EventSender posts a batch of events.
type EventSender interface {
	SendEvents(ctx context.Context, runID string, evs []client.AgentEvent) error
}

// maxBatch bounds one POST of events.
const maxBatch = 200

// Reporter sends the outbox to the server in the background: Report
// queues and wakes it; on failure it retries after Backoff (doubling up to
// a minute). Flush sends what is queued, for the end of a run.
type Reporter struct {
	Outbox  *Outbox
	Sender  EventSender
	RunID   string
	Backoff time.Duration // first retry delay; 0 means 1s
	// OnError is told about failed sends (for the log).
	OnError func(error)

	wake chan struct{}
	done chan struct{}
	stop context.CancelFunc
	mu   sync.Mutex // one send at a time
}

// Report queues events durably and wakes the sender.
func (r *Reporter) Report(evs ...client.AgentEvent) error {
	if err := r.Outbox.Append(evs...); err != nil {
		return err
	}
	if r.wake != nil {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Start runs the background sender until Stop.
func (r *Reporter) Start(ctx context.Context) {
	ctx, r.stop = context.WithCancel(ctx)
	r.wake = make(chan struct{}, 1)
	r.done = make(chan struct{})
	r.wake <- struct{}{} // send what an earlier run left
	go func() {
		defer close(r.done)
		delay := r.Backoff
		if delay <= 0 {
			delay = time.Second
		}
		var retry <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			case <-retry:
			}
			retry = nil
			if err := r.Flush(ctx); err != nil {
				if r.OnError != nil && ctx.Err() == nil {
					r.OnError(err)
				}
				retry = time.After(delay)
				delay = min(delay*2, time.Minute)
			} else {
				delay = max(r.Backoff, 0)
				if delay == 0 {
					delay = time.Second
				}
			}
		}
	}()
}

// Stop ends the background sender (queued events stay on disk).
func (r *Reporter) Stop() {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
}

// Flush sends every queued event, in batches, oldest first.
func (r *Reporter) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		evs, err := r.Outbox.Pending()
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		if len(evs) > maxBatch {
			evs = evs[:maxBatch]
		}
		if err := r.Sender.SendEvents(ctx, r.RunID, evs); err != nil {
			return fmt.Errorf("send events: %w", err)
		}
		if err := r.Outbox.Ack(len(evs)); err != nil {
			return err
		}
	}
}
