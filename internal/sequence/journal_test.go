package sequence_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

func TestFileJournalRoundTrip(t *testing.T) {
	j := fileJournal(t)
	if _, err := j.Load(); !deploy.IsNotFound(err) {
		t.Fatalf("Load of a missing journal: err = %v, want not found", err)
	}
	want := &sequence.JournalState{
		Format: sequence.JournalFormat, TaskSequenceID: "ts", VersionNo: 3,
		Completed: []sequence.CompletedStep{{ID: "a", Outcome: deploy.StepSucceeded}, {ID: "g/b", Outcome: deploy.StepIgnored, Message: "boom"}},
		Entered:   []string{"g"},
		Running:   "g/c",
		Stack:     []sequence.Frame{{StepID: "g", Ref: "child:1"}},
		Vars:      []sequence.Var{{Name: "A", Value: "1"}, {Name: "Pw", Value: "x", Secret: true}},
		Updated:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	for range 2 { // the second save replaces the file
		if err := j.Save(want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := j.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(filepath.Dir(j.Path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the journal (no temp files left)", len(entries))
	}
	if err := j.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Load(); !deploy.IsNotFound(err) {
		t.Errorf("Load after Remove: err = %v", err)
	}
}

func TestFileJournalBadFile(t *testing.T) {
	for name, content := range map[string]string{
		"not json":     "{nope",
		"other format": `{"format":99}`,
	} {
		t.Run(name, func(t *testing.T) {
			j := fileJournal(t)
			if err := os.WriteFile(j.Path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := j.Load()
			if deploy.ErrorKind(err) != deploy.KindInvalid || !strings.Contains(err.Error(), j.Path) {
				t.Errorf("err = %v, want invalid naming the file", err)
			}
		})
	}
}

func TestRebootAndResume(t *testing.T) {
	for _, how := range []string{"true", "err"} {
		t.Run(how, func(t *testing.T) {
			j := fileJournal(t)
			ts := tsv("ts", 1, steps(
				st("a", sets("A=1")),
				grp("g", steps(st("r", reboots(how), sets("B=2")), st("c", cond(q("B", "equals", "2")))), cond(q("A", "equals", "1"))),
				st("d", sets("A=changed")),
			))
			h := newHarness(t, j)
			out := h.run(t, ts, nil)
			if diff := cmp.Diff(sequence.Outcome{State: deploy.RunRunning, Reboot: true}, out); diff != "" {
				t.Errorf("first outcome (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"a", "g/r"}, h.rec.Calls()); diff != "" {
				t.Errorf("calls before reboot (-want +got):\n%s", diff)
			}
			saved, err := j.Load()
			if err != nil {
				t.Fatal(err)
			}
			if saved.Running != "" || saved.Completed[len(saved.Completed)-1].ID != "g/r" {
				t.Errorf("journal does not record the reboot step complete: %+v", saved)
			}

			// After the reboot: a new engine, fresh variables.
			h2 := newHarness(t, j)
			vars := sequence.VarsFrom(map[string]string{"Fresh": "1"})
			out = h2.run(t, ts, vars)
			if out.State != deploy.RunSucceeded {
				t.Errorf("resumed outcome = %+v", out)
			}
			if diff := cmp.Diff([]string{"g/c", "d"}, h2.rec.Calls()); diff != "" {
				t.Errorf("calls after reboot (-want +got):\n%s", diff)
			}
			if vars.Value("B") != "2" || vars.Value("A") != "changed" {
				t.Errorf("variables not restored: %s", vars)
			}
			if _, ok := vars.Get("Fresh"); ok {
				t.Error("journaled variables should replace the ones passed in")
			}

			// A finished journal returns the outcome without running anything.
			h3 := newHarness(t, j)
			out3 := h3.run(t, ts, nil)
			if out3 != out || len(h3.rec.Calls()) != 0 {
				t.Errorf("rerun of a finished journal: outcome %+v calls %v", out3, h3.rec.Calls())
			}
		})
	}
}

func TestResumeReRunsInterruptedStep(t *testing.T) {
	j := fileJournal(t)
	ts := tsv("ts", 1, steps(st("a"), grp("g", steps(st("block"), st("b")), cond(q("Go", "exists", ""))), st("c")))
	h := newHarness(t, j)
	h.rec.block = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.e.Run(ctx, ts, sequence.VarsFrom(map[string]string{"Go": "1"}))
		done <- err
	}()
	h.rec.block <- struct{}{} // the step has started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: err = %v, want context.Canceled", err)
	}
	saved, err := j.Load()
	if err != nil {
		t.Fatal(err)
	}
	if saved.Running != "g/block" {
		t.Errorf("journal Running = %q, want g/block", saved.Running)
	}
	h2 := newHarness(t, j)
	// The group's condition no longer holds with the passed variables, but
	// the journal restores Go and the group was entered anyway.
	out := h2.run(t, ts, nil)
	if out.State != deploy.RunSucceeded {
		t.Errorf("outcome = %+v", out)
	}
	if diff := cmp.Diff([]string{"g/block", "g/b", "c"}, h2.rec.Calls()); diff != "" {
		t.Errorf("calls after resume (-want +got):\n%s", diff)
	}
}

func TestJournalForOtherSequence(t *testing.T) {
	j := fileJournal(t)
	h := newHarness(t, j)
	h.run(t, tsv("one", 1, steps(st("a"))), nil)
	_, err := newHarness(t, j).e.Run(context.Background(), tsv("one", 2, steps(st("a"))), sequence.NewVars())
	if deploy.ErrorKind(err) != deploy.KindConflict || !strings.Contains(err.Error(), "one:1, not one:2") {
		t.Errorf("err = %v, want a conflict naming both versions", err)
	}
}

type failingJournal struct{ sequence.Journal }

func (failingJournal) Save(*sequence.JournalState) error { return errors.New("disk full") }

func TestJournalSaveFailureStopsRun(t *testing.T) {
	h := newHarness(t, failingJournal{fileJournal(t)})
	_, err := h.e.Run(context.Background(), tsv("ts", 1, steps(st("a"))), sequence.NewVars())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the save error", err)
	}
	if got := h.rec.Calls(); len(got) != 0 {
		t.Errorf("step ran although its start could not be journaled: %v", got)
	}
}

func TestEventsCarryClockAndDetails(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	now := base
	h := newHarness(t, nil)
	h.e.Now = func() time.Time { now = now.Add(time.Second); return now }
	vars := sequence.NewVars()
	if err := vars.SetSecret("Pw", "sekrit"); err != nil {
		t.Fatal(err)
	}
	h.run(t, tsv("ts", 1, steps(grp("g", steps(st("a", set2("fail", "true"), set2("x", "%Pw%"), coe()))))), vars)
	// Clock reads: 1 save (group entered), 2 group start, 3 save (step
	// running), 4 step start, 5 save, 6 step end, 7 save, 8 group end.
	want := []sequence.Event{
		{Type: sequence.EventStart, ID: "g", Path: "g", Name: "g", Group: true, Time: at(2)},
		{Type: sequence.EventStart, ID: "g/a", Path: "g/a", Name: "a", Depth: 1, Time: at(4)},
		{Type: sequence.EventEnd, ID: "g/a", Path: "g/a", Name: "a", Depth: 1, Outcome: deploy.StepIgnored, ExitCode: 7,
			Output: "fake failure", Message: "fake step failed", Time: at(6), Started: at(4)},
		{Type: sequence.EventEnd, ID: "g", Path: "g", Name: "g", Group: true, Outcome: deploy.StepSucceeded,
			Time: at(8), Started: at(2)},
	}
	if diff := cmp.Diff(want, h.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
