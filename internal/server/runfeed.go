package server

import (
	"context"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// runFeed fans run changes out to the live views (the console's streams,
// `imprint runs events --follow`'s long poll): a view subscribes and is
// woken when a run changes, then reads the store, which stays the source.
// The server publishes its own run writes; on a store several replicas
// share (deploy.RunWatcher, PostgreSQL's LISTEN/NOTIFY) it publishes
// every replica's too. A wake-up carries no data, so a missed or doubled
// one costs at most one read.
type runFeed struct {
	mu   sync.Mutex
	subs map[*feedSub]struct{}
	// done is closed when the server shuts down: long polls end at once
	// instead of holding the shutdown.
	done chan struct{}
	once sync.Once
}

type feedSub struct {
	runID string        // "" wakes on any run
	ch    chan struct{} // capacity 1: wake-ups fold into one
}

func newRunFeed() *runFeed {
	return &runFeed{subs: map[*feedSub]struct{}{}, done: make(chan struct{})}
}

// close ends every wait (shutdown).
func (f *runFeed) close() { f.once.Do(func() { close(f.done) }) }

// maxEventsWait bounds a long poll of a run's events (?wait=).
const maxEventsWait = 60 * time.Second

// wait returns after a change of run runID, when d has passed, or when
// ctx or the feed ends, whichever is first. Subscribe before reading what
// the wait is for, or a change between the read and the wait is missed:
// sub is subscribe's channel.
func (f *runFeed) wait(ctx context.Context, sub <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sub:
	case <-t.C:
	case <-ctx.Done():
	case <-f.done:
	}
}

// subscribe returns a channel that receives after a change of run runID
// ("" for any run) and the function that ends the subscription.
func (f *runFeed) subscribe(runID string) (<-chan struct{}, func()) {
	s := &feedSub{runID: runID, ch: make(chan struct{}, 1)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s.ch, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

// publish wakes the subscribers of run runID and those of any run; ""
// (anything may have changed) wakes every subscriber. It never blocks.
func (f *runFeed) publish(runID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if runID == "" || s.runID == "" || s.runID == runID {
			select {
			case s.ch <- struct{}{}:
			default:
			}
		}
	}
}

// watchRuns feeds the run changes of every replica into s.feed while ctx
// lasts, when the store is shared (deploy.RunWatcher); a lost listening
// connection is opened again after a pause that grows to 30 s, and each
// (re)start wakes every view, as notices may have been missed meanwhile.
func (s *Server) watchRuns(ctx context.Context) {
	w, ok := s.Store().(deploy.RunWatcher)
	if !ok {
		return
	}
	pause := time.Second
	for {
		start := time.Now()
		err := w.WatchRuns(ctx, s.feed.publish)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			pause = time.Second
		}
		s.log.Warn("live run updates from other replicas paused", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}
