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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
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

// Replace puts ev in place of the i-th queued event, or drops that event
// when ev is nil.
func (o *Outbox) Replace(i int, ev *client.AgentEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs, err := o.pending()
	if err != nil {
		return err
	}
	if i < 0 || i >= len(evs) {
		return fmt.Errorf("outbox: no event %d of %d", i, len(evs))
	}
	if ev != nil {
		evs[i] = *ev
	} else {
		evs = append(evs[:i], evs[i+1:]...)
	}
	var buf bytes.Buffer
	for _, ev := range evs {
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

// What one POST of events carries, well inside the server's default
// quotas (64 KiB per event, 1000 events per request, 16 MiB per body):
// the agent cuts an event's text to maxEventBytes when it is queued, and
// a server configured tighter is met by halving the batch and cutting an
// event it refuses to minEventBytes, then dropping it.
const (
	maxBatch      = 200
	maxBatchBytes = 1 << 20
	maxEventBytes = 32 << 10
	minEventBytes = 2 << 10
)

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
	// Note is told when an event was cut or dropped to fit the server's
	// limits (for the log).
	Note func(format string, args ...any)

	wake  chan struct{}
	done  chan struct{}
	stop  context.CancelFunc
	mu    sync.Mutex // one send at a time
	batch int        // events per POST once the server refused more; 0 means maxBatch
}

func (r *Reporter) note(format string, args ...any) {
	if r.Note != nil {
		r.Note(format, args...)
	}
}

// Report queues events durably and wakes the sender. An event too large
// to send has its message and output cut (marked so) or, if that is not
// enough, is dropped with a note.
func (r *Reporter) Report(evs ...client.AgentEvent) error {
	keep := evs[:0:0]
	for _, ev := range evs {
		if size(ev) > maxEventBytes {
			before := size(ev)
			if !fitEvent(&ev, maxEventBytes) {
				r.note("Event %s %s (%d bytes) is too large to send and was dropped", ev.Type, short(ev.Path), before)
				continue
			}
			r.note("Event %s %s was cut from %d to %d bytes to fit", ev.Type, short(ev.Path), before, size(ev))
		}
		keep = append(keep, ev)
	}
	if len(keep) == 0 {
		return nil
	}
	if err := r.Outbox.Append(keep...); err != nil {
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

// size is the length of ev as sent.
func size(ev client.AgentEvent) int {
	b, _ := json.Marshal(ev)
	return len(b)
}

// cutMark ends a message cut to fit, or starts an output tail cut to fit.
const cutMark = " [cut by imprint-agent to fit the server's event size limit] "

// fitEvent cuts ev's message (keeping its start) and output tail (keeping
// its end), the larger first, until ev is at most limit bytes as JSON, and
// reports whether it fits.
func fitEvent(ev *client.AgentEvent, limit int) bool {
	if size(*ev) <= limit {
		return true
	}
	head := func(v string, k int) string { return strings.ToValidUTF8(v[:k], "") + cutMark }
	tail := func(v string, k int) string { return cutMark + strings.ToValidUTF8(v[len(v)-k:], "") }
	fields := []struct {
		p   *string
		cut func(string, int) string
	}{{&ev.Message, head}, {&ev.OutputTail, tail}}
	if len(ev.OutputTail) > len(ev.Message) {
		fields[0], fields[1] = fields[1], fields[0]
	}
	for _, f := range fields {
		v := *f.p
		if v == "" {
			continue
		}
		*f.p = ""
		if size(*ev) > limit {
			continue // not enough alone: cut the other one too
		}
		// The longest part of v that fits with the mark (JSON escapes make
		// bytes count differently, so search).
		lo, hi := 0, len(v)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			*f.p = f.cut(v, mid)
			if size(*ev) <= limit {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		*f.p = ""
		if lo > 0 {
			*f.p = f.cut(v, lo)
		}
		return true
	}
	return false
}

// short is s for a log line: at most 80 bytes.
func short(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:77], "") + "..."
	}
	return s
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

// Flush sends every queued event, in batches, oldest first. When the
// server answers 413 it sends smaller batches from then on, or, when it
// names one event (or the batch is that event alone), cuts that event to
// minEventBytes and then drops it, so one event never holds up the run.
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
		evs = r.nextBatch(evs)
		err = r.Sender.SendEvents(ctx, r.RunID, evs)
		if err == nil {
			if err := r.Outbox.Ack(len(evs)); err != nil {
				return err
			}
			continue
		}
		if deploy.ErrorKind(err) != deploy.KindTooLarge || ctx.Err() != nil {
			return fmt.Errorf("send events: %w", err)
		}
		i, named := refusedEvent(err)
		if named && i >= len(evs) {
			named = false
		}
		if !named && len(evs) > 1 {
			r.batch = max(1, len(evs)/2)
			continue
		}
		if !named {
			i = 0
		}
		ev := evs[i]
		before := size(ev)
		if before > minEventBytes && fitEvent(&ev, minEventBytes) {
			r.note("The server refused event %s %s (%d bytes): cut to %d bytes (%v)", ev.Type, short(ev.Path), before, size(ev), err)
			if err := r.Outbox.Replace(i, &ev); err != nil {
				return err
			}
			continue
		}
		r.note("The server refused event %s %s (%d bytes): dropped (%v)", ev.Type, short(ev.Path), before, err)
		if err := r.Outbox.Replace(i, nil); err != nil {
			return err
		}
	}
}

// nextBatch is the head of evs that fits one POST.
func (r *Reporter) nextBatch(evs []client.AgentEvent) []client.AgentEvent {
	limit := maxBatch
	if r.batch > 0 {
		limit = r.batch
	}
	n, bytes := 0, 2
	for n < len(evs) && n < limit {
		bytes += size(evs[n]) + 1
		if n > 0 && bytes > maxBatchBytes {
			break
		}
		n++
	}
	return evs[:n]
}

// refusedEvent is the index of the event a 413 answer names
// ("events[3]"), if it names one.
func refusedEvent(err error) (int, bool) {
	var de *deploy.Error
	if !errors.As(err, &de) {
		return 0, false
	}
	for _, f := range de.Fields {
		if rest, ok := strings.CutPrefix(f.Field, "events["); ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil && n >= 0 {
				return n, true
			}
		}
	}
	return 0, false
}
