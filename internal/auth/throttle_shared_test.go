//go:build linux

package auth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
)

// twoReplicaThrottles returns two throttles on two stores of one
// PostgreSQL database, as two server replicas have; shared false leaves
// the database out (the memory-only throttle, to show the test can fail).
func twoReplicaThrottles(t *testing.T, srv *pgtest.Server, clock *fakeClock, shared bool, edit func(*auth.ThrottleConfig)) [2]*auth.Throttle {
	t.Helper()
	dsn := srv.NewDatabase(t)
	var ths [2]*auth.Throttle
	for i := range ths {
		db, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ths[i] = newThrottle(t, clock, func(c *auth.ThrottleConfig) {
			edit(c)
			if shared {
				c.Shared = db
			}
		})
	}
	return ths
}

// TestThrottleSharedAcrossReplicas: guesses through two throttles on one
// database (two replicas behind one address) are evaluated at most as
// often as the limits allow one server, per source and globally.
func TestThrottleSharedAcrossReplicas(t *testing.T) {
	srv := pgtest.Start(t)

	// One source, alternating between the replicas, with no backoff: the
	// hourly limit per source holds for both together.
	perSource := func(t *testing.T, shared bool) int {
		clock := newClock()
		ths := twoReplicaThrottles(t, srv, clock, shared, func(c *auth.ThrottleConfig) {
			c.FreeFailures, c.HourlyLimit, c.GlobalHourlyLimit = 1_000_000, 5, 1000
		})
		evaluated := 0
		for i := range 40 {
			a, wait := ths[i%2].Begin("203.0.113.7", "")
			if a == nil {
				if wait <= 0 {
					t.Fatalf("guess %d refused with wait %s", i, wait)
				}
				continue
			}
			evaluated++
			a.Fail()
			clock.Advance(time.Second)
		}
		return evaluated
	}
	// Fresh sources, each guessing once, spread over most of one window:
	// the global budget holds for both replicas together.
	global := func(t *testing.T, shared bool) int {
		clock := newClock()
		ths := twoReplicaThrottles(t, srv, clock, shared, func(c *auth.ThrottleConfig) {
			c.GlobalHourlyLimit, c.Window = 10, time.Hour
		})
		evaluated := 0
		for step := range 58 {
			for r, th := range ths {
				a, _ := th.Begin(fmt.Sprintf("198.51.%d.%d", r, step), "")
				if a != nil {
					evaluated++
					a.Fail()
				}
			}
			clock.Advance(time.Minute)
		}
		return evaluated
	}
	for _, tt := range []struct {
		name  string
		run   func(*testing.T, bool) int
		limit int
	}{
		{"per source", perSource, 5},
		{"global", global, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run(t, true); got != tt.limit {
				t.Errorf("two replicas sharing the database evaluated %d guesses, want the limit %d", got, tt.limit)
			}
			// The same load without the database goes over the limit:
			// what the shared counts prevent is real.
			if got := tt.run(t, false); got <= tt.limit {
				t.Errorf("memory-only replicas evaluated %d guesses, want more than %d (the test shows nothing)", got, tt.limit)
			}
		})
	}
}

// TestThrottleSharedReleases: an attempt that does not end in a failure
// gives its shared hits back, so successes and anonymous logins use up no
// guesses on the other replicas.
func TestThrottleSharedReleases(t *testing.T) {
	srv := pgtest.Start(t)
	clock := newClock()
	ths := twoReplicaThrottles(t, srv, clock, true, func(c *auth.ThrottleConfig) {
		c.FreeFailures, c.HourlyLimit = 1_000_000, 2
	})
	for i := range 10 {
		a, wait := ths[i%2].Begin("203.0.113.9", "")
		if a == nil {
			t.Fatalf("attempt %d refused (wait %s) although every earlier one passed or was abandoned", i, wait)
		}
		if i%2 == 0 {
			a.Pass()
		} else {
			a.Abandon()
		}
	}
	for i := range 2 {
		a, _ := ths[i].Begin("203.0.113.9", "")
		if a == nil {
			t.Fatalf("failure %d of 2 refused", i+1)
		}
		a.Fail()
	}
	if a, _ := ths[0].Begin("203.0.113.9", ""); a != nil {
		t.Errorf("third guess admitted after two failures with HourlyLimit 2")
	}
}
