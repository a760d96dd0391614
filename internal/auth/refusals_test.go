package auth_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
)

// 10,000 refusals from three sources in one interval become three audit
// events, each with its count; the next interval starts from zero, and
// sources beyond MaxSources are summed into one event.
func TestRefusalsAggregate(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	db, _ := openStore(t, clock)
	var logged []string
	r := &auth.Refusals{
		Auditor: &auth.Auditor{Store: db, Now: clock.Now}, Now: clock.Now, MaxSources: 4,
		Log: func(n, sources int, since time.Time) { logged = append(logged, fmt.Sprintf("%d from %d", n, sources)) },
	}
	for i := range 10_000 {
		r.Note("auth.attempt", fmt.Sprintf("192.0.2.%d", i%3+1))
	}
	r.Note("admin.token", "192.0.2.1")
	if ev, _ := db.AuditEvents(ctx, 0, 0); len(ev) != 0 {
		t.Fatalf("%d audit events written while counting, want none", len(ev))
	}
	clock.Advance(time.Minute)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 7 { // 4 pairs fit; the other three sources are summed
		r.Note("auth.attempt", fmt.Sprintf("198.51.100.%d", i))
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil { // nothing counted: writes nothing
		t.Fatal(err)
	}
	events, err := db.AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if e.Outcome != auth.OutcomeThrottled || e.Details["since"] == "" {
			t.Errorf("event %+v: want outcome throttled and a since", e)
		}
		got = append(got, fmt.Sprintf("%s %s %s", e.Action, e.Source, e.Details["refusals"]))
	}
	want := []string{
		"admin.token 192.0.2.1 1",
		"auth.attempt 192.0.2.1 3334",
		"auth.attempt 192.0.2.2 3333",
		"auth.attempt 192.0.2.3 3333",
		"auth.attempt 198.51.100.0 1",
		"auth.attempt 198.51.100.1 1",
		"auth.attempt 198.51.100.2 1",
		"auth.attempt 198.51.100.3 1",
		"auth.attempt  3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10001 from 4", "7 from 4"}, logged); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

// Run writes once an interval has passed and flushes the rest when it
// stops.
func TestRefusalsRun(t *testing.T) {
	clock := newClock()
	db, _ := openStore(t, clock)
	r := &auth.Refusals{Auditor: &auth.Auditor{Store: db, Now: clock.Now}, Now: clock.Now, Interval: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx, func(err error) { t.Error(err) }); close(done) }()
	r.Note("auth.attempt", "192.0.2.1")
	clock.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, _ := db.AuditEvents(t.Context(), 0, 0)
		if len(ev) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no flush after the interval: %d events", len(ev))
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Note("auth.attempt", "192.0.2.2") // not due: the clock stands still
	cancel()
	<-done
	if ev, _ := db.AuditEvents(t.Context(), 0, 0); len(ev) != 2 {
		t.Errorf("%d events after Run stopped, want 2 (the last interval flushed)", len(ev))
	}
}
