package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// RunShared runs the tests for stores that share one database, as server
// replicas do: open returns two stores (each its own pool, as two
// processes would have) on the same empty database and arranges for both
// to be closed.
func RunShared(t *testing.T, open func(t *testing.T) (a, b deploy.Store)) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, deploy.Store, deploy.Store)
	}{
		{"SettingsLoseNoUpdate", testSharedSettings},
		{"AuditOneChain", testSharedAudit},
		{"ThrottleLimitHolds", testSharedThrottle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := open(t)
			tt.fn(t, a, b)
		})
	}
}

// Concurrency of the shared tests: per store, workers × rounds operations.
const (
	sharedWorkers = 8
	sharedRounds  = 10
)

// hammer runs fn from sharedWorkers goroutines on each store, each
// sharedRounds times, and fails t with the first error.
func hammer(t *testing.T, stores []deploy.Store, fn func(s deploy.Store, worker, round int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*sharedWorkers)
	for si, s := range stores {
		for w := 0; w < sharedWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < sharedRounds; r++ {
					if err := fn(s, si*sharedWorkers+w, r); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// increment adds one to the JSON number stored under key (0 when unset).
func increment(old []byte) ([]byte, error) {
	n := 0
	if old != nil {
		if err := json.Unmarshal(old, &n); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// testSharedSettings increments one setting from many goroutines on both
// stores: a read-modify-write that is not one transaction under a lock
// loses increments.
func testSharedSettings(t *testing.T, a, b deploy.Store) {
	hammer(t, []deploy.Store{a, b}, func(s deploy.Store, w, r int) error {
		if err := s.UpdateSetting(ctx(t), "counter", increment); err != nil {
			return fmt.Errorf("worker %d round %d: UpdateSetting: %w", w, r, err)
		}
		return nil
	})
	want := strconv.Itoa(2 * sharedWorkers * sharedRounds)
	for name, s := range map[string]deploy.Store{"a": a, "b": b} {
		got, err := s.Setting(ctx(t), "counter")
		must(t, "Setting counter", err)
		if string(got) != want {
			t.Errorf("counter read through store %s = %s after %s increments: updates were lost", name, got, want)
		}
	}
}

// testSharedAudit appends audit events from many goroutines on both
// stores: the log must be one chain holding every event exactly once.
func testSharedAudit(t *testing.T, a, b deploy.Store) {
	var mu sync.Mutex
	appended := map[string]int64{} // hash -> seq, as AppendAudit returned them
	hammer(t, []deploy.Store{a, b}, func(s deploy.Store, w, r int) error {
		e := &deploy.AuditEvent{Action: "test.append", Actor: fmt.Sprintf("worker-%d", w), Outcome: "success", Details: map[string]string{"round": strconv.Itoa(r)}}
		if err := s.AppendAudit(ctx(t), e); err != nil {
			return fmt.Errorf("worker %d round %d: AppendAudit: %w", w, r, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if seq, dup := appended[e.Hash]; dup {
			return errors.New("two appends returned the same hash (seq " + strconv.FormatInt(seq, 10) + ")")
		}
		appended[e.Hash] = e.Seq
		return nil
	})
	events, err := b.AuditEvents(ctx(t), 0, 0)
	must(t, "AuditEvents", err)
	if want := 2 * sharedWorkers * sharedRounds; len(events) != want {
		t.Fatalf("audit log holds %d entries, want %d", len(events), want)
	}
	if len(events) > 0 && events[0].Seq != 1 {
		t.Errorf("audit log starts at seq %d, want 1", events[0].Seq)
	}
	if err := auth.Verify(events); err != nil {
		t.Fatalf("audit chain written from two stores does not verify: %v", err)
	}
	for _, e := range events {
		if seq, ok := appended[e.Hash]; !ok || seq != e.Seq {
			t.Errorf("stored seq %d (hash %.12s…) is not what AppendAudit returned (%d, found %v)", e.Seq, e.Hash, seq, ok)
		}
	}
}
