package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Audit forwarding (security.md §3.5: forward to remote syslog/SIEM): a
// copy of every audit event, as one JSON object per syslog message with
// its sequence number and chain hashes, so that an attacker who can edit
// the database cannot also rewrite what the SIEM already holds.

// syslogTarget parses --audit-syslog into the network and address
// log/syslog dials.
func syslogTarget(raw string) (network, addr string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("%q is not a URL such as udp://siem.example.org:514", raw)
	}
	switch u.Scheme {
	case "udp", "tcp":
		if u.Hostname() == "" || u.Port() == "" {
			return "", "", fmt.Errorf("%q needs a host and a port, such as %s://siem.example.org:514", raw, u.Scheme)
		}
		return u.Scheme, u.Host, nil
	case "unix":
		if u.Path == "" {
			return "", "", fmt.Errorf("%q needs a socket path, such as unix:///dev/log", raw)
		}
		return "unixgram", u.Path, nil
	}
	return "", "", fmt.Errorf("%q: the scheme must be udp, tcp or unix", raw)
}

// auditForwarder sends events to syslog from its own goroutine, so a slow
// or absent collector never holds up a request: events wait in a bounded
// queue and are dropped (and counted in the log) when it is full.
type auditForwarder struct {
	log     *slog.Logger
	network string
	addr    string

	queue chan []byte
	done  chan struct{}

	mu      sync.Mutex
	dropped int
}

const auditQueue = 4096

func newAuditForwarder(target string, log *slog.Logger) (*auditForwarder, error) {
	network, addr, err := syslogTarget(target)
	if err != nil {
		return nil, err
	}
	f := &auditForwarder{log: log, network: network, addr: addr, queue: make(chan []byte, auditQueue), done: make(chan struct{})}
	go f.run()
	return f, nil
}

// Forward queues e; it is the auth.Auditor's Forward hook.
func (f *auditForwarder) Forward(e *deploy.AuditEvent) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	select {
	case f.queue <- b:
	default:
		f.mu.Lock()
		f.dropped++
		f.mu.Unlock()
	}
}

// run dials lazily and again after a failed write (log/syslog reconnects
// once by itself); a message that cannot be sent is counted as dropped.
func (f *auditForwarder) run() {
	defer close(f.done)
	var w syslogConn
	for b := range f.queue {
		if w == nil {
			var err error
			if w, err = dialSyslog(f.network, f.addr); err != nil {
				f.lost(err)
				w = nil
				continue
			}
		}
		if err := w.Notice(string(b)); err != nil {
			f.lost(err)
			w.Close()
			w = nil
		}
	}
	if w != nil {
		w.Close()
	}
}

func (f *auditForwarder) lost(err error) {
	f.mu.Lock()
	f.dropped++
	n := f.dropped
	f.mu.Unlock()
	// One warning per power of two, so a collector that is down for a day
	// does not flood the log.
	if n&(n-1) == 0 {
		f.log.Warn("audit forwarding failed; events are kept in the database only", "target", f.network+"://"+f.addr, "dropped", n, "err", err)
	}
}

// close sends what is queued and stops.
func (f *auditForwarder) close() {
	close(f.queue)
	<-f.done
}
