package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// throttleT0 is the clock of the throttle tests (the store keeps what it is
// given, to the microsecond).
var throttleT0 = time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)

// take is TakeThrottle that fails t on an error.
func take(t *testing.T, s deploy.Store, now time.Time, window time.Duration, limits ...deploy.ThrottleLimit) (string, time.Duration) {
	t.Helper()
	id, wait, err := s.TakeThrottle(ctx(t), now, window, limits...)
	must(t, "TakeThrottle", err)
	if (id == "") == (wait == 0) {
		t.Fatalf("TakeThrottle = id %q, wait %s: want exactly one of them", id, wait)
	}
	return id, wait
}

func testThrottleWindow(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	const window = time.Hour
	src := deploy.ThrottleLimit{Key: "source:192.0.2.1", Limit: 3}
	for i := range 3 {
		if _, wait := take(t, s, throttleT0.Add(time.Duration(i)*time.Minute), window, src); wait != 0 {
			t.Fatalf("hit %d of 3 refused (wait %s)", i+1, wait)
		}
	}
	now := throttleT0.Add(10 * time.Minute)
	_, wait := take(t, s, now, window, src)
	if want := throttleT0.Add(window).Sub(now); wait != want {
		t.Errorf("fourth hit: wait %s, want %s (until the first hit leaves the window)", wait, want)
	}
	// Another key has its own count.
	if _, wait := take(t, s, now, window, deploy.ThrottleLimit{Key: "source:192.0.2.2", Limit: 3}); wait != 0 {
		t.Errorf("another key refused (wait %s)", wait)
	}
	// The window rolls: at T0+window the first hit has left it, not the second.
	if _, wait := take(t, s, throttleT0.Add(window), window, src); wait != 0 {
		t.Errorf("hit after the first left the window refused (wait %s)", wait)
	}
	if _, wait := take(t, s, throttleT0.Add(window), window, src); wait != time.Minute {
		t.Errorf("window full again: wait %s, want 1m", wait)
	}
}

func testThrottleAllOrNone(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	const window = time.Hour
	src := deploy.ThrottleLimit{Key: "source:a", Limit: 5}
	global := deploy.ThrottleLimit{Key: "global", Limit: 1}
	if _, wait := take(t, s, throttleT0, window, global, src); wait != 0 {
		t.Fatalf("first take refused (wait %s)", wait)
	}
	// The global key is full: the take is refused and the source key
	// (which had room) gets no hit either.
	if _, wait := take(t, s, throttleT0, window, src, global); wait != window {
		t.Fatalf("take with a full key: wait %s, want %s", wait, window)
	}
	for i := range 4 {
		if _, wait := take(t, s, throttleT0, window, src); wait != 0 {
			t.Fatalf("source hit %d of the 4 left refused (wait %s): the refused take counted", i+2, wait)
		}
	}
	if _, wait := take(t, s, throttleT0, window, src); wait == 0 {
		t.Errorf("sixth source hit taken with limit 5")
	}
}

func testThrottleRelease(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	const window = time.Hour
	src := deploy.ThrottleLimit{Key: "source:b", Limit: 1}
	global := deploy.ThrottleLimit{Key: "global", Limit: 1}
	id, _ := take(t, s, throttleT0, window, src, global)
	// Releasing the global hit only: the global key has room, the source not.
	must(t, "ReleaseThrottle", s.ReleaseThrottle(ctx(t), id, global.Key))
	if _, wait := take(t, s, throttleT0, window, src); wait == 0 {
		t.Errorf("source key has room after releasing only the global hit")
	}
	id2, wait := take(t, s, throttleT0, window, global)
	if wait != 0 {
		t.Fatalf("global key full after its hit was released (wait %s)", wait)
	}
	must(t, "ReleaseThrottle", s.ReleaseThrottle(ctx(t), id, src.Key))
	if _, wait := take(t, s, throttleT0, window, src); wait != 0 {
		t.Errorf("source key full after its hit was released (wait %s)", wait)
	}
	// Releasing what is gone, or another id, changes nothing.
	must(t, "ReleaseThrottle again", s.ReleaseThrottle(ctx(t), id, src.Key, global.Key))
	if _, wait := take(t, s, throttleT0, window, global); wait == 0 {
		t.Errorf("a second release of another id freed hit %s", id2)
	}
}

func testThrottleInvalid(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	for _, tt := range []struct {
		name   string
		window time.Duration
		limits []deploy.ThrottleLimit
	}{
		{"no key", time.Hour, nil},
		{"zero window", 0, []deploy.ThrottleLimit{{Key: "k", Limit: 1}}},
		{"empty key", time.Hour, []deploy.ThrottleLimit{{Key: "", Limit: 1}}},
		{"zero limit", time.Hour, []deploy.ThrottleLimit{{Key: "k", Limit: 0}}},
		{"key twice", time.Hour, []deploy.ThrottleLimit{{Key: "k", Limit: 1}, {Key: "k", Limit: 2}}},
	} {
		_, _, err := s.TakeThrottle(ctx(t), throttleT0, tt.window, tt.limits...)
		wantKind(t, tt.name, err, deploy.KindInvalid)
	}
	// Nothing was recorded by the refused calls.
	if _, wait := take(t, s, throttleT0, time.Hour, deploy.ThrottleLimit{Key: "k", Limit: 1}); wait != 0 {
		t.Errorf("key k full after invalid takes only (wait %s)", wait)
	}
}

// testSharedThrottle takes hits under one key from many goroutines on
// both stores: a count-and-check that is not one step across processes
// lets more than the limit through.
func testSharedThrottle(t *testing.T, a, b deploy.Store) {
	const limit = 10
	var taken atomic.Int64
	hammer(t, []deploy.Store{a, b}, func(s deploy.Store, w, r int) error {
		id, _, err := s.TakeThrottle(ctx(t), throttleT0, time.Hour,
			deploy.ThrottleLimit{Key: fmt.Sprintf("source:%d", w%3), Limit: 1000},
			deploy.ThrottleLimit{Key: "global", Limit: limit})
		if err != nil {
			return fmt.Errorf("worker %d round %d: TakeThrottle: %w", w, r, err)
		}
		if id != "" {
			taken.Add(1)
		}
		return nil
	})
	if got := taken.Load(); got != limit {
		t.Errorf("%d hits taken from two stores under a limit of %d", got, limit)
	}
}
