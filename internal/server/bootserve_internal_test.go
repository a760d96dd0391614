package server

import (
	"context"
	"encoding/json"
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

func (s *oneCallStore) Setting(ctx context.Context, key string) ([]byte, error) {
	s.calls++
	return s.real.Setting(ctx, key)
}

func (s *oneCallStore) Runs(ctx context.Context, f deploy.RunFilter) ([]*deploy.Run, error) {
	s.calls++
	return s.real.Runs(ctx, f)
}

// TestBootScriptOneRead: the per-machine boot script costs one run read
// (and one settings read, for the operators' next-boot overrides) whatever
// the machine sends; an override decides first, else the newest run under
// either of its ids decides whether it boots from its disk.
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
		override        map[string]string
		wantLocal       bool
		wantDeploy      bool
	}{
		{"uuid and mac, newest succeeded", mac, "4C4C4544-0042-3510-8052-B4C04F4E3332", nil, true, false},
		{"uuid only, its run failed", "", uuid, nil, false, false},
		{"mac only", mac, "", nil, true, false},
		{"unknown machine", "52:54:00:00:00:01", "00000000-0000-0000-0000-000000000001", nil, false, false},
		{"operator says deploy after a success", mac, "", map[string]string{macID: NextBootDeploy}, false, true},
		{"operator says local after a failure", "", uuid, map[string]string{uuid: NextBootLocal}, true, false},
		{"override of another machine", "", uuid, map[string]string{macID: NextBootLocal}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.DeleteSetting(t.Context(), nextBootKey); err != nil && deploy.ErrorKind(err) != deploy.KindNotFound {
				t.Fatal(err)
			}
			if tc.override != nil {
				b, _ := json.Marshal(tc.override)
				if err := db.PutSetting(t.Context(), nextBootKey, b); err != nil {
					t.Fatal(err)
				}
			}
			s := &oneCallStore{real: db}
			mb, ok := machineBoots{s}.Machine(t.Context(), tc.mac, tc.uuid)
			if s.calls > 2 {
				t.Errorf("boot script made %d store reads, want at most 2", s.calls)
			}
			if local := ok && mb.DefaultEntry == boot.EntryLocal; local != tc.wantLocal {
				t.Errorf("boots from disk = %v, want %v", local, tc.wantLocal)
			}
			if dep := ok && mb.DefaultEntry == boot.EntryDeploy; dep != tc.wantDeploy {
				t.Errorf("default entry deploy = %v, want %v", dep, tc.wantDeploy)
			}
		})
	}
}
