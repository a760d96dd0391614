package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/imprint-osd/imprint/internal/netlimit"
)

// Limits bound what clients may hold on the listeners (docs/security.md,
// "Connections and timeouts"). The admin socket has the timeouts but no
// connection caps: only its owner can open it, and no network client can
// take its places.
type Limits struct {
	// MaxConns is the most connections each network listener (API, boot)
	// holds at once. An eighth of it is kept for addresses that
	// authenticated in the last hour. Both listeners together are capped
	// at start to fit the process's open-file limit (fit), and MaxConns
	// lowered to that cap.
	MaxConns int // --max-conns, IMPRINT_MAX_CONNS
	// MaxConnsPerAddr is the most connections one source address may hold
	// on each network listener (trusted proxies are exempt).
	MaxConnsPerAddr int // --max-conns-per-addr, IMPRINT_MAX_CONNS_PER_ADDR
	// HeaderTimeout bounds the TLS handshake and the request line and
	// headers of every request.
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// BodyGrace and BodyMinRate bound the time a request body may keep
	// the server waiting: Grace plus a second per MinRate bytes received
	// (netlimit.BodyLimits).
	BodyGrace   time.Duration
	BodyMinRate int64
	// Stall cuts a body read or a response write that makes no progress
	// for this long; a transfer that keeps moving is never cut.
	Stall time.Duration
}

// DefaultLimits are the embedded defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:        4096,
		MaxConnsPerAddr: 64,
		HeaderTimeout:   10 * time.Second,
		IdleTimeout:     2 * time.Minute,
		BodyGrace:       10 * time.Second,
		BodyMinRate:     1024,
		Stall:           time.Minute,
	}
}

// Header caps. Go allows 4 KiB beyond them. The boot port serves GETs
// from firmware and iPXE, whose requests are a few hundred bytes; the API
// takes a bearer token and a few headers; Go's default is 1 MiB.
const (
	apiMaxHeaderBytes  = 64 << 10
	bootMaxHeaderBytes = 8 << 10
)

// vouchFor is how long an address that authenticated keeps its place in
// the reserve: a session's idle lifetime, renewed by every request.
const vouchFor = time.Hour

func (l Limits) validate() error {
	switch {
	case l.MaxConns < 1:
		return fmt.Errorf("config: max-conns: %d must be at least 1", l.MaxConns)
	case l.MaxConnsPerAddr < 1:
		return fmt.Errorf("config: max-conns-per-addr: %d must be at least 1", l.MaxConnsPerAddr)
	case l.HeaderTimeout <= 0, l.IdleTimeout <= 0, l.BodyGrace <= 0, l.Stall <= 0:
		return fmt.Errorf("config: limits: timeouts must be positive")
	case l.BodyMinRate < 1:
		return fmt.Errorf("config: limits: body minimum rate must be at least 1 byte/s")
	}
	return nil
}

// fdsReserved are the descriptors kept for the store, the content being
// written, logs, the admin socket and TFTP; each network connection counts
// twice (it may be serving or receiving a file).
const fdsReserved = 256

// minConns is the connection budget below any open-file limit.
const minConns = 32

// fit returns the most connections the network listeners may hold
// together so that, each with a file open, they leave fdsReserved
// descriptors free (0: the limit is unknown, no cap), and lowers MaxConns
// to it: the open-file limit is the process's, so the API and boot ports
// share one budget and either may use all of it.
func (l Limits) fit(nofile uint64, log *slog.Logger) (Limits, int) {
	if nofile == 0 {
		return l, 0
	}
	total := minConns
	if nofile > fdsReserved+2*minConns {
		total = int(min((nofile-fdsReserved)/2, 1<<30))
	}
	if l.MaxConns > total {
		log.Warn("max-conns lowered to fit the open-file limit", "max_conns", total, "asked", l.MaxConns, "nofile", nofile)
		l.MaxConns = total
	}
	l.MaxConnsPerAddr = min(l.MaxConnsPerAddr, l.MaxConns)
	return l, total
}

// netConfig is the netlimit configuration of a network listener.
// Both share vouched and budget.
func (l Limits) netConfig(vouched *netlimit.AddrSet, budget *netlimit.Budget, proxies []string) netlimit.Config {
	nc := netlimit.Config{
		MaxConns:   l.MaxConns,
		Reserve:    l.MaxConns / 8,
		PerAddr:    l.MaxConnsPerAddr,
		WriteStall: l.Stall,
		Vouched:    vouched,
		Budget:     budget,
	}
	for _, p := range proxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			nc.Exempt = append(nc.Exempt, pfx.Masked())
		}
	}
	return nc
}

// httpServer applies the timeouts and the body limits to h served on ln.
func (l Limits) httpServer(h http.Handler, ln *netlimit.Listener, maxHeader int, log *slog.Logger) *http.Server {
	body := netlimit.BodyLimits{Grace: l.BodyGrace, MinRate: l.BodyMinRate, Stall: l.Stall}
	return &http.Server{
		Handler:           body.Handler(h),
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    maxHeader,
		ConnState:         ln.ConnState,
		ConnContext:       ln.ConnContext,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// vouch marks the connection and address of an authenticated request
// (netlimit.Vouch): the connection is never closed to make room and the
// address may use the reserve of both network listeners.
func vouch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		netlimit.Vouch(r.Context(), vouchFor)
		next.ServeHTTP(w, r)
	})
}

// vouchSession is vouch for a handler behind requireSession.
func vouchSession(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		netlimit.Vouch(r.Context(), vouchFor)
		return h(w, r)
	}
}

// ConnStats reports the connection counters of the API and boot listeners.
func (s *Server) ConnStats() (api, boot netlimit.Stats) {
	return s.apiLim.Stats(), s.bootLim.Stats()
}

// ConnBudget reports what the API and boot listeners hold together.
func (s *Server) ConnBudget() netlimit.BudgetStats {
	return s.connBudget.Stats()
}
