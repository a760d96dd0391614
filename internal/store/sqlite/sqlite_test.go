package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
	"github.com/imprint-osd/imprint/internal/store/storetest"
)

// openDB opens a fresh database file in a temporary directory.
func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "imprint.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) deploy.Store { return openDB(t) })
}

// TestShared opens two stores on one database file, as two processes would.
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (deploy.Store, deploy.Store) {
		path := filepath.Join(t.TempDir(), "imprint.db")
		open := func() deploy.Store {
			db, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		return open(), open()
	})
}

// TestPragmasOnEveryConnection holds several pooled connections at once and
// checks each got the DSN's pragmas.
func TestPragmasOnEveryConnection(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	want := map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"synchronous":  "2", // FULL
	}
	const n = 4
	for i := 0; i < n; i++ {
		conn, err := db.SQL().Conn(ctx) // held until cleanup: the next one is a new connection
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		got := map[string]string{}
		for p := range want {
			var v string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
				t.Fatalf("PRAGMA %s: %v", p, err)
			}
			got[p] = strings.ToLower(v)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("connection %d pragmas (-want +got):\n%s", i, d)
		}
	}
	if s := db.SQL().Stats(); s.OpenConnections < n {
		t.Errorf("open connections = %d, want at least %d distinct ones checked", s.OpenConnections, n)
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imprint.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.CheckSchema(t, db, db.SQL())
	storetest.CheckTablesListed(t, db.SQL(), `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`, tableNames())
	// Data survives a reopen and migrations are not applied twice.
	if err := db.PutSetting(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if got, err := db.Setting(t.Context(), "k"); err != nil || string(got) != "v" {
		t.Errorf("Setting after reopen = %q, %v; want v", got, err)
	}
	if v2, _ := db.SchemaVersion(t.Context()); v2 != v {
		t.Errorf("schema version after reopen = %d, want %d", v2, v)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imprint.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	known, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newer := known + 4
	if _, err := db.SQL().Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'later')`, newer); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = sqlite.Open(t.Context(), path)
	if err == nil {
		t.Fatal("Open of a newer schema succeeded")
	}
	want := fmt.Sprintf("database schema version %d is newer than this imprint knows (%d); upgrade imprint", newer, known)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, p := range []string{"", "a?b.db", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if db, err := sqlite.Open(t.Context(), p); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

// clock is a settable clock for DB.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

func TestMarkLostRunsWithClock(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := &clock{t: t0}
	db.Now = clk.Now

	quiet := &deploy.Run{DeviceID: "d", TaskSequenceID: "ts", State: deploy.RunRunning}
	chatty := &deploy.Run{DeviceID: "d", TaskSequenceID: "ts", State: deploy.RunRunning}
	updated := &deploy.Run{DeviceID: "d", TaskSequenceID: "ts", State: deploy.RunPending}
	for _, r := range []*deploy.Run{quiet, chatty, updated} {
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if !quiet.StartedAt.Equal(t0) || !quiet.UpdatedAt.Equal(t0) {
		t.Errorf("CreateRun times = %v, %v; want the injected %v", quiet.StartedAt, quiet.UpdatedAt, t0)
	}

	clk.Add(10 * time.Minute)
	if err := db.AppendRunEvent(ctx, &deploy.RunEvent{RunID: chatty.ID, Type: "log"}); err != nil {
		t.Fatal(err)
	}
	updated.CurrentStep = "s1"
	if err := db.UpdateRun(ctx, updated); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Minute)

	n, err := db.MarkLostRuns(ctx, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("MarkLostRuns = %d, want 1 (only the quiet run)", n)
	}
	want := map[string]deploy.RunState{quiet.ID: deploy.RunLost, chatty.ID: deploy.RunRunning, updated.ID: deploy.RunPending}
	for id, st := range want {
		r, err := db.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != st {
			t.Errorf("run %s: state %s, want %s", id, r.State, st)
		}
		if id == quiet.ID && (r.EndedAt == nil || !r.EndedAt.Equal(t0.Add(20*time.Minute))) {
			t.Errorf("lost run EndedAt = %v, want %v", r.EndedAt, t0.Add(20*time.Minute))
		}
		if id == chatty.ID && !r.UpdatedAt.Equal(t0.Add(10*time.Minute)) {
			t.Errorf("run with an event: UpdatedAt = %v, want %v", r.UpdatedAt, t0.Add(10*time.Minute))
		}
	}
}

// TestConcurrentWriters appends audit entries and run events from several
// goroutines; the chain and the per-run sequence must stay intact.
func TestConcurrentWriters(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	run := &deploy.Run{DeviceID: "d", TaskSequenceID: "ts", State: deploy.RunRunning}
	if err := db.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := &deploy.AuditEvent{Action: "auth.attempt", Outcome: "success", Actor: fmt.Sprintf("w%d-%d", w, i)}
				if err := db.AppendAudit(ctx, e); err != nil {
					errs <- fmt.Errorf("worker %d audit %d: %w", w, i, err)
					return
				}
				ev := &deploy.RunEvent{RunID: run.ID, Type: "log", Message: e.Actor}
				if err := db.AppendRunEvent(ctx, ev); err != nil {
					errs <- fmt.Errorf("worker %d event %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	all, err := db.AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != workers*each {
		t.Fatalf("audit has %d entries, want %d", len(all), workers*each)
	}
	prev := ""
	actors := map[string]bool{}
	for i, e := range all {
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != deploy.AuditHash(prev, e) {
			t.Fatalf("chain broken at entry %d (seq %d)", i, e.Seq)
		}
		prev = e.Hash
		actors[e.Actor] = true
	}
	if len(actors) != workers*each {
		t.Errorf("audit holds %d distinct entries, want %d", len(actors), workers*each)
	}

	events, err := db.RunEvents(ctx, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != workers*each {
		t.Fatalf("run has %d events, want %d", len(events), workers*each)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, i+1)
		}
	}
}

// TestContextCanceled checks a canceled context surfaces as such.
func TestContextCanceled(t *testing.T) {
	db := openDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.PutSetting(ctx, "k", []byte("v")); err == nil {
		t.Error("PutSetting with a canceled context succeeded")
	}
}

// A second Close (a test's cleanup after the code under test closed the
// store) does nothing, as database/sql's does.
func TestCloseTwice(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestNextBootMigration: a database of an imprint that kept the
// next-boot choices in one setting keeps them, in their table, once
// opened by this one; the setting is gone, and an unreadable one moves
// nothing and fails nothing.
func TestNextBootMigration(t *testing.T) {
	for i, tc := range storetest.NextBootMigrations {
		t.Run(tc.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "imprint.db")
			old, err := sqlite.OpenAt(t.Context(), path, storetest.NextBootTableVersion-1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = old.Exec(`INSERT INTO settings (key, value) VALUES (?, ?)`, storetest.NextBootSettingKey, tc.Setting)
			old.Close()
			if err != nil {
				t.Fatal(err)
			}
			db, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			storetest.CheckNextBootsMigrated(t, db, i)
		})
	}
}

// tableNames is every table copy, backup and restore carry.
func tableNames() []string {
	var names []string
	for _, tb := range sqlstore.Tables() {
		names = append(names, tb.Name)
	}
	return names
}
