package relay

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/imprint-osd/imprint/internal/boot"
)

// decisions is the central server's per-machine lookup in this test.
type decisions map[string]boot.MachineBoot

func (d decisions) Machine(_ context.Context, mac, _ string) (boot.MachineBoot, bool) {
	mb, ok := d[mac]
	return mb, ok
}

// TestUpstreamMachines: the relay takes each machine's decision from the
// central boot port (a real boot.Handler), and with the uplink down
// keeps what it last heard for a machine and gives the defaults to a
// machine it never asked about.
func TestUpstreamMachines(t *testing.T) {
	cfg := boot.DefaultConfig()
	cfg.PublicURL, cfg.BootURL = "https://central.example:7281", "http://central.example:7282"
	cfg.CAFingerprint = "0000000000000000000000000000000000000000000000000000000000000000"
	central, err := boot.NewHandler(cfg, boot.DirFileSource(t.TempDir()), decisions{
		"52-54-00-00-00-01": {DefaultEntry: boot.EntryLocal},
		"52-54-00-00-00-02": {DefaultEntry: boot.EntryDeploy, KernelArgs: "imprint.debug=1"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(central)
	base, _ := url.Parse(srv.URL)
	m := &upstreamMachines{base: base, hc: srv.Client(), log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()

	check := func(when, mac string, want boot.MachineBoot, wantOK bool) {
		t.Helper()
		got, ok := m.Machine(ctx, mac, "")
		if got != want || ok != wantOK {
			t.Errorf("%s, %s: %+v %v, want %+v %v", when, mac, got, ok, want, wantOK)
		}
	}
	check("uplink up", "52-54-00-00-00-01", boot.MachineBoot{DefaultEntry: "local"}, true)
	check("uplink up", "52-54-00-00-00-02", boot.MachineBoot{DefaultEntry: "deploy", KernelArgs: "imprint.debug=1"}, true)
	check("uplink up", "52-54-00-00-00-03", boot.MachineBoot{}, false)
	srv.Close()
	check("uplink down", "52-54-00-00-00-01", boot.MachineBoot{DefaultEntry: "local"}, true)
	check("uplink down", "52-54-00-00-00-04", boot.MachineBoot{}, false)

	// A central server that refuses the question is not believed either.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer bad.Close()
	m.base, _ = url.Parse(bad.URL)
	check("central refusing", "52-54-00-00-00-02", boot.MachineBoot{DefaultEntry: "deploy", KernelArgs: "imprint.debug=1"}, true)
	check("central refusing", "52-54-00-00-00-05", boot.MachineBoot{}, false)
}
