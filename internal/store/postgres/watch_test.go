//go:build linux

package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
)

// TestWatchRunsAcrossStores watches one store while another on the same
// database (another replica) changes runs: every committed change arrives
// as a notice naming its run, a write that fails (an unknown run) sends
// none, and changes made together arrive together, each run once.
func TestWatchRunsAcrossStores(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	ctx := t.Context()

	notices := make(chan string, 64)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.WatchRuns(wctx, func(id string) { notices <- id }) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != context.Canceled {
			t.Errorf("WatchRuns after cancel = %v, want context.Canceled", err)
		}
	})
	next := func(what string) string {
		t.Helper()
		select {
		case id := <-notices:
			return id
		case <-time.After(10 * time.Second):
			t.Fatalf("no notice after %s", what)
			return ""
		}
	}
	if id := next("listening"); id != "" {
		t.Fatalf("first notice = %q, want \"\" (listening)", id)
	}

	run := &deploy.Run{DeviceID: "dev-1", TaskSequenceID: "ts-1"}
	if err := b.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if id := next("CreateRun"); id != run.ID {
		t.Fatalf("notice after CreateRun = %q, want %q", id, run.ID)
	}
	// A failed write commits nothing and announces nothing: the next
	// notice is the event appended after it.
	ghost := &deploy.Run{ID: "no-such-run", DeviceID: "dev-1", TaskSequenceID: "ts-1", State: deploy.RunRunning}
	if err := b.AppendRunEvents(ctx, ghost, []*deploy.RunEvent{{Type: "log"}}); !deploy.IsNotFound(err) {
		t.Fatalf("AppendRunEvents on an unknown run = %v, want not found", err)
	}
	run.State = deploy.RunRunning
	if err := b.AppendRunEvents(ctx, run, []*deploy.RunEvent{{Type: "log"}, {Type: "log"}}); err != nil {
		t.Fatal(err)
	}
	if id := next("AppendRunEvents"); id != run.ID {
		t.Fatalf("notice after AppendRunEvents = %q, want %q", id, run.ID)
	}
	if err := b.AppendRunEvent(ctx, &deploy.RunEvent{RunID: run.ID, Type: "log"}); err != nil {
		t.Fatal(err)
	}
	if id := next("AppendRunEvent"); id != run.ID {
		t.Fatalf("notice after AppendRunEvent = %q, want %q", id, run.ID)
	}
	if n, err := b.MarkLostRuns(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("MarkLostRuns = %d, %v", n, err)
	}
	if id := next("MarkLostRuns"); id != "" {
		t.Fatalf("notice after MarkLostRuns = %q, want \"\" (some runs)", id)
	}

	// Many changes at once are batched: every run is announced.
	runs := map[string]bool{}
	for range 50 {
		r := &deploy.Run{DeviceID: "dev-2", TaskSequenceID: "ts-1"}
		if err := b.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		runs[r.ID] = true
	}
	for len(runs) > 0 {
		delete(runs, next("50 CreateRuns"))
	}
	select {
	case id := <-notices:
		t.Errorf("unexpected notice %q", id)
	case <-time.After(200 * time.Millisecond):
	}
}
