package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

// TestGroupCommit posts events from a few hundred goroutines, one run
// each, as many machines do: none fails, the writes share commits, and
// every run holds each of its events once, in order.
func TestGroupCommit(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	const machines, each = 300, 5
	runs := make([]*deploy.Run, machines)
	var wg sync.WaitGroup
	errs := make(chan error, machines)
	for i := range runs {
		r := &deploy.Run{DeviceID: fmt.Sprintf("d%d", i), TaskSequenceID: "ts", State: deploy.RunRunning}
		runs[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.CreateRun(ctx, r); err != nil {
				errs <- fmt.Errorf("machine %d: %w", i, err)
				return
			}
			for j := 0; j < each; j++ {
				e := &deploy.RunEvent{RunID: r.ID, Type: "log", Message: fmt.Sprint(j)}
				if err := db.AppendRunEvent(ctx, e); err != nil {
					errs <- fmt.Errorf("machine %d event %d: %w", i, j, err)
					return
				}
				r.CurrentStep = fmt.Sprint(j)
				if err := db.UpdateRun(ctx, r); err != nil {
					errs <- fmt.Errorf("machine %d update %d: %w", i, j, err)
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
	for i, r := range runs {
		events, err := db.RunEvents(ctx, r.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != each {
			t.Fatalf("machine %d: %d events stored, want %d", i, len(events), each)
		}
		for j, e := range events {
			if e.Seq != int64(j+1) || e.Message != fmt.Sprint(j) {
				t.Fatalf("machine %d event %d: seq %d message %q, want seq %d message %d", i, j, e.Seq, e.Message, j+1, j)
			}
		}
		got, err := db.Run(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CurrentStep != fmt.Sprint(each-1) {
			t.Errorf("machine %d: current step %q, want %d", i, got.CurrentStep, each-1)
		}
	}
	commits, writes := db.GroupCommits()
	if commits == 0 || writes < 2*commits {
		t.Errorf("%d shared commits carried %d writes: the writes were not grouped", commits, writes)
	}
	t.Logf("%d writes in %d shared commits", writes, commits)
}

// TestGroupCommitKeepsFailuresApart: a write that fails inside a shared
// commit undoes only its own changes; the others in that commit stay.
func TestGroupCommitKeepsFailuresApart(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	const n = 200
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &deploy.Run{DeviceID: "d", TaskSequenceID: "ts", State: deploy.RunRunning}
			if i%2 == 1 {
				// Duplicate id: refused after the insert of the even one.
				r.ID = fmt.Sprintf("run-%d", i-1)
			} else {
				r.ID = fmt.Sprintf("run-%d", i)
			}
			results[i] = db.CreateRun(ctx, r)
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range results {
		switch {
		case err == nil:
			ok++
		case deploy.ErrorKind(err) != deploy.KindConflict:
			t.Errorf("write %d: %v, want nil or a conflict", i, err)
		}
	}
	runs, err := db.Runs(ctx, deploy.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ok != n/2 || len(runs) != n/2 {
		t.Errorf("%d writes succeeded and %d runs are stored, want %d of each", ok, len(runs), n/2)
	}
	if commits, _ := db.GroupCommits(); commits == 0 {
		t.Error("no shared commit: the test did not exercise one")
	}
}

// TestCanceledWriteIsSkipped: a write whose caller gave up before it ran
// is not applied, and does not disturb the writer.
func TestCanceledWriteIsSkipped(t *testing.T) {
	db := openDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.PutSetting(ctx, "k", []byte("v")); err == nil {
		t.Fatal("PutSetting with a canceled context succeeded")
	}
	if _, err := db.Setting(t.Context(), "k"); !deploy.IsNotFound(err) {
		t.Errorf("Setting after a canceled write: %v, want not found", err)
	}
	if err := db.PutSetting(t.Context(), "k", []byte("v")); err != nil {
		t.Errorf("PutSetting after a canceled one: %v", err)
	}
}

// TestBootStateUsesIndexes: the boot script's query searches, for each
// id, the choices by key and the runs' covering index; it reads no run
// document and scans no table.
func TestBootStateUsesIndexes(t *testing.T) {
	db := openDB(t)
	rows, err := db.SQL().QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+sqlstore.BootStateQuery(2), "a", "b", "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "\n")
	if strings.Count(all, "SEARCH runs USING COVERING INDEX runs_device_state") != 2 ||
		strings.Count(all, "SEARCH device_next_boot USING PRIMARY KEY") != 2 ||
		strings.Contains(all, "SCAN runs") || strings.Contains(all, "SCAN device_next_boot") {
		t.Errorf("query plan:\n%s\nwant, for each of the two ids, a search of device_next_boot's key and of the covering index runs_device_state", all)
	}
}

// TestCheckpointBesideWriter: with no checkpoint inside commits, the
// checkpointer still copies the WAL into the database file.
func TestCheckpointBesideWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imprint.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()
	big := strings.Repeat("x", 4000)
	for i := 0; i < 100; i++ {
		if err := db.PutSetting(t.Context(), fmt.Sprint("k", i), []byte(big)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= before+100*4000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 10 s after 400 KB were committed (was %d): the WAL is not checkpointed", fi.Size(), before)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWriterKeepsStatementsPrepared: after the first event post the
// writer holds its statements prepared (the savepoints of a shared commit
// too), and later posts through them store every event once, in order,
// alone and in shared commits.
func TestWriterKeepsStatementsPrepared(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs := make([]*deploy.Run, 50)
	for i := range runs {
		runs[i] = &deploy.Run{DeviceID: fmt.Sprintf("d%d", i), TaskSequenceID: "ts", State: deploy.RunRunning}
		if err := db.CreateRun(ctx, runs[i]); err != nil {
			t.Fatal(err)
		}
	}
	post := func(r *deploy.Run, n int) error {
		return db.AppendRunEvents(ctx, r, []*deploy.RunEvent{{Type: "log", Message: fmt.Sprint(n)}})
	}
	for n := range 2 {
		if err := post(runs[0], n); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for round := range 3 {
		for _, r := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := post(r, 10+round); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	prepared := strings.Join(db.PreparedWrites(), "\n")
	for _, q := range []string{"INSERT INTO run_events", "UPDATE runs SET state", "max(seq)"} {
		if !strings.Contains(prepared, q) {
			t.Errorf("the writer does not keep %q prepared; it has:\n%s", q, prepared)
		}
	}
	if commits, _ := db.GroupCommits(); commits > 0 && !strings.Contains(prepared, "SAVEPOINT w") {
		t.Errorf("%d shared commits, but the savepoint is not kept prepared:\n%s", commits, prepared)
	}
	for i, r := range runs {
		evs, err := db.RunEvents(ctx, r.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := 3
		if i == 0 {
			want = 5
		}
		if len(evs) != want {
			t.Fatalf("run %d has %d events, want %d", i, len(evs), want)
		}
		for j, e := range evs {
			if e.Seq != int64(j+1) {
				t.Errorf("run %d event %d has seq %d", i, j, e.Seq)
			}
		}
	}
}

// TestBootStateWithoutCancel: the boot read does not hand the caller's
// context to the driver (which would start a goroutine per query to
// watch it), so a context that has ended still gets the answer.
func TestBootStateWithoutCancel(t *testing.T) {
	db := openDB(t)
	r := &deploy.Run{DeviceID: "dev", TaskSequenceID: "ts", State: deploy.RunRunning}
	if err := db.CreateRun(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	bs, err := db.BootState(ctx, "dev")
	if err != nil || bs.LastRun != deploy.RunRunning {
		t.Errorf("BootState with an ended context = %+v, %v; want the running run", bs, err)
	}
}
