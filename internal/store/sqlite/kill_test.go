package sqlite_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

const (
	killHelperEnv = "IMPRINT_SQLITE_HELPER"
	killDBEnv     = "IMPRINT_SQLITE_HELPER_DB"
)

// TestHelperWriter is not a test: TestKilledWriterKeepsAcknowledged runs
// the test binary again with only this test and killHelperEnv set. It
// appends events from many goroutines and prints "run seq" for each one
// the store acknowledged, until it is killed.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(killHelperEnv) != "events" {
		t.Skip("helper process for TestKilledWriterKeepsAcknowledged")
	}
	db, err := sqlite.Open(t.Context(), os.Getenv(killDBEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for g := 0; g < 50; g++ {
		go func() {
			r := &deploy.Run{DeviceID: fmt.Sprint(g), TaskSequenceID: "ts", State: deploy.RunRunning}
			if err := db.CreateRun(t.Context(), r); err != nil {
				fmt.Fprintln(os.Stderr, "helper:", err)
				os.Exit(2)
			}
			for {
				e := &deploy.RunEvent{Type: "log"}
				if err := db.AppendRunEvents(t.Context(), r, []*deploy.RunEvent{e}); err != nil {
					fmt.Fprintln(os.Stderr, "helper:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, e.RunID, e.Seq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Hour) // the parent kills us long before
}

// TestKilledWriterKeepsAcknowledged kills (SIGKILL) a process in the middle
// of group commits and checks that every event the store had acknowledged
// is in the database when it is opened again.
func TestKilledWriterKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "imprint.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"=events", killDBEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{} // run → highest acknowledged seq
	lines := bufio.NewScanner(stdout)
	for n := 0; n < 2000 && lines.Scan(); n++ {
		var run string
		var seq int64
		if _, err := fmt.Sscan(lines.Text(), &run, &seq); err != nil {
			t.Fatalf("helper printed %q: %v", lines.Text(), err)
		}
		acked[run] = max(acked[run], seq)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the helper acknowledged no event before it was killed")
	}

	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer db.Close()
	for run, seq := range acked {
		events, err := db.RunEvents(t.Context(), run, 0)
		if err != nil {
			t.Fatalf("run %s: %v", run, err)
		}
		if int64(len(events)) < seq {
			t.Errorf("run %s: %d events after the kill, but %d were acknowledged", run, len(events), seq)
		}
		for i, e := range events {
			if e.Seq != int64(i+1) {
				t.Fatalf("run %s: event %d has seq %d", run, i, e.Seq)
			}
		}
	}
	t.Logf("%d runs, every acknowledged event kept", len(acked))
}
