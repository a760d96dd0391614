package server

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// oneCallStore lets through only the run reads the boot script may make
// and counts them; any other store method panics (its embedded Store is
// nil).
type oneCallStore struct {
	deploy.Store
	real  *sqlite.DB
	calls int
}

func (s *oneCallStore) LastRunState(ctx context.Context, ids ...string) (deploy.RunState, bool, error) {
	s.calls++
	return s.real.LastRunState(ctx, ids...)
}

func (s *oneCallStore) Runs(ctx context.Context, f deploy.RunFilter) ([]*deploy.Run, error) {
	s.calls++
	return s.real.Runs(ctx, f)
}

// TestBootScriptOneRead: the per-machine boot script costs one store read
// whatever the machine sends, and the newest run under either of its ids
// decides whether it boots from its disk.
func TestBootScriptOneRead(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const uuid, mac = "4c4c4544-0042-3510-8052-b4c04f4e3332", "52:54:00:12:34:56"
	macID := "mac-52-54-00-12-34-56"
	for _, r := range []*deploy.Run{
		{DeviceID: uuid, TaskSequenceID: "ts", State: deploy.RunFailed},
		{DeviceID: macID, TaskSequenceID: "ts", State: deploy.RunSucceeded},
	} {
		if err := db.CreateRun(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, mac, uuid string
		wantLocal       bool
	}{
		{"uuid and mac, newest succeeded", mac, "4C4C4544-0042-3510-8052-B4C04F4E3332", true},
		{"uuid only, its run failed", "", uuid, false},
		{"mac only", mac, "", true},
		{"unknown machine", "52:54:00:00:00:01", "00000000-0000-0000-0000-000000000001", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &oneCallStore{real: db}
			mb, ok := machineBoots{s}.Machine(t.Context(), tc.mac, tc.uuid)
			if s.calls != 1 {
				t.Errorf("boot script made %d store reads, want 1", s.calls)
			}
			if local := ok && mb.DefaultEntry == boot.EntryLocal; local != tc.wantLocal {
				t.Errorf("boots from disk = %v, want %v", local, tc.wantLocal)
			}
		})
	}
}
