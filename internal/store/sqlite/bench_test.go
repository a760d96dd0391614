package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// BenchmarkEventPost is what a machine's event post asks of the store: the
// run read (prepared) and one write appending the event and updating the
// run, from many machines at once (group commits). Compare with the same
// benchmark at an earlier commit (bench/store.sh prints the ratio).
func BenchmarkEventPost(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "imprint.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const machines = 256
	runs := make([]*deploy.Run, machines)
	for i := range runs {
		runs[i] = &deploy.Run{DeviceID: fmt.Sprintf("d%d", i), TaskSequenceID: "ts", State: deploy.RunRunning}
		if err := db.CreateRun(b.Context(), runs[i]); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(machines / 2) // GOMAXPROCS × 128 goroutines: many machines waiting on the writer
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := runs[next.Add(1)%machines].ID
		for pb.Next() {
			r, err := db.Run(b.Context(), id)
			if err != nil {
				b.Error(err)
				return
			}
			r.CurrentStep = "s"
			if err := db.AppendRunEvents(b.Context(), r, []*deploy.RunEvent{{Type: "log", Message: "m"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBootRead is the per-machine boot script's store read.
func BenchmarkBootRead(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "imprint.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := &deploy.Run{DeviceID: "dev", TaskSequenceID: "ts", State: deploy.RunRunning}
	if err := db.CreateRun(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.BootState(b.Context(), "dev", "mac-00-11-22-33-44-55"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
