package relay

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/boot"
)

// upstreamMachines makes the relay's boot scripts carry the central
// server's per-machine decisions (a deployed machine boots its disk; an
// operator's next-boot choice holds) by asking the central boot port's
// GET /machine. The last answer per machine is remembered for when the
// uplink is down; a machine never asked about before then gets the
// defaults, as it would from a relay without this.
type upstreamMachines struct {
	base *url.URL // the central boot port
	hc   *http.Client
	log  *slog.Logger

	mu   sync.Mutex
	seen map[string]boot.MachineDecision // by mac + " " + uuid
}

// machineTimeout bounds the question: a boot script must not wait on a
// slow uplink longer than iPXE waits for it.
const machineTimeout = 3 * time.Second

func (m *upstreamMachines) Machine(ctx context.Context, mac, uuid string) (boot.MachineBoot, bool) {
	key := mac + " " + uuid
	d, err := m.ask(ctx, mac, uuid)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		old, ok := m.seen[key]
		m.log.Warn("the central server's boot decision is unavailable", "mac", mac, "remembered", ok, "err", err)
		if !ok {
			return boot.MachineBoot{}, false
		}
		d = old
	} else {
		if m.seen == nil {
			m.seen = make(map[string]boot.MachineDecision)
		}
		m.seen[key] = d
	}
	return boot.MachineBoot{DefaultEntry: d.DefaultEntry, KernelArgs: d.KernelArgs}, d.Known
}

func (m *upstreamMachines) ask(ctx context.Context, mac, uuid string) (boot.MachineDecision, error) {
	ctx, cancel := context.WithTimeout(ctx, machineTimeout)
	defer cancel()
	u := m.base.JoinPath("machine")
	q := url.Values{"mac": {mac}}
	if uuid != "" {
		q.Set("uuid", uuid)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return boot.MachineDecision{}, err
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return boot.MachineDecision{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return boot.MachineDecision{}, &url.Error{Op: "GET", URL: u.String(), Err: errStatus(resp.Status)}
	}
	var d boot.MachineDecision
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&d); err != nil {
		return boot.MachineDecision{}, err
	}
	return d, nil
}

type errStatus string

func (e errStatus) Error() string { return "central server answered " + string(e) }
