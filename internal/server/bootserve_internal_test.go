package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// oneReadStore lets through only BootState, the read the boot script may
// make, to the real store and counts it; any other store method panics
// (its embedded Store is nil).
type oneReadStore struct {
	deploy.Store
	real  deploy.Store
	calls atomic.Int64
}

func (s *oneReadStore) BootState(ctx context.Context, ids ...string) (deploy.BootState, error) {
	s.calls.Add(1)
	return s.real.BootState(ctx, ids...)
}

// TestBootScriptOneRead: each per-machine boot request (the iPXE script
// and the relays' GET /machine) costs exactly one store read, whatever
// the machine sends; an operator's choice for either of its ids decides
// first, else the newest run under either id decides whether it boots
// from its disk.
func TestBootScriptOneRead(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const uuid, mac = "4c4c4544-0042-3510-8052-b4c04f4e3332", "52:54:00:12:34:56"
	const macID = "mac-52-54-00-12-34-56"
	const newMAC = "52:54:00:00:00:09" // a second NIC, never seen: the machine is known by its UUID alone
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i, r := range []*deploy.Run{
		{DeviceID: uuid, TaskSequenceID: "ts", State: deploy.RunFailed},
		{DeviceID: macID, TaskSequenceID: "ts", State: deploy.RunSucceeded},
	} {
		r.StartedAt = t0.Add(time.Duration(i) * time.Minute)
		if err := db.CreateRun(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if err := db.UpsertDevice(t.Context(), &deploy.Device{ID: r.DeviceID}); err != nil {
			t.Fatal(err)
		}
	}
	s := &oneReadStore{real: db}
	cfg := boot.DefaultConfig()
	cfg.PublicURL, cfg.BootURL, cfg.CAFingerprint = "https://imprint.example:7281", "http://10.0.2.2:7282", strings.Repeat("ab", 32)
	h, err := boot.NewHandler(cfg, boot.DirFileSource(t.TempDir()), machineBoots{s}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, mac, uuid string
		choices         map[string]deploy.NextBoot
		want            string // the default entry; "" for the server's default (deploy)
	}{
		{"uuid and mac, newest succeeded", mac, "4C4C4544-0042-3510-8052-B4C04F4E3332", nil, boot.EntryLocal},
		{"uuid only, its run failed", newMAC, uuid, nil, ""},
		{"mac only", mac, "", nil, boot.EntryLocal},
		{"unknown machine", "52:54:00:00:00:01", "00000000-0000-0000-0000-000000000001", nil, ""},
		{"operator says deploy after a success", mac, "", map[string]deploy.NextBoot{macID: deploy.NextBootDeploy}, boot.EntryDeploy},
		{"operator says local after a failure", newMAC, uuid, map[string]deploy.NextBoot{uuid: deploy.NextBootLocal}, boot.EntryLocal},
		{"choice under the mac, machine sends both", mac, uuid, map[string]deploy.NextBoot{macID: deploy.NextBootDeploy}, boot.EntryDeploy},
		{"choice of another machine", newMAC, uuid, map[string]deploy.NextBoot{macID: deploy.NextBootLocal}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, id := range []string{uuid, macID} {
				nb := deploy.NextBootAuto
				if c, ok := tc.choices[id]; ok {
					nb = c
				}
				if err := db.SetNextBoot(t.Context(), id, nb); err != nil {
					t.Fatal(err)
				}
			}
			q := "mac=" + strings.ReplaceAll(tc.mac, ":", "-") + "&uuid=" + tc.uuid
			get := func(path string) string {
				t.Helper()
				s.calls.Store(0)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				if rec.Code != 200 {
					t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
				}
				if n := s.calls.Load(); n != 1 {
					t.Errorf("GET %s made %d store reads, want exactly 1", path, n)
				}
				return rec.Body.String()
			}
			script := get("/ipxe?" + q + "&arch=x86_64&platform=efi")
			entry := tc.want
			if entry == "" {
				entry = cfg.DefaultEntry
			}
			if !strings.Contains(script, "--default "+entry+" ") {
				t.Errorf("boot script does not default to %s:\n%s", entry, script)
			}
			var d boot.MachineDecision
			if err := json.Unmarshal([]byte(get("/machine?"+q)), &d); err != nil {
				t.Fatal(err)
			}
			if d.DefaultEntry != tc.want || d.Known != (tc.want != "") {
				t.Errorf("GET /machine = %+v, want default entry %q", d, tc.want)
			}
		})
	}
}
