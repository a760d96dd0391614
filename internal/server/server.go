package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/auth/cert"
	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
	"github.com/imprint-osd/imprint/internal/netlimit"
	"github.com/imprint-osd/imprint/internal/peer"
	"github.com/imprint-osd/imprint/internal/server/web"
	"github.com/imprint-osd/imprint/internal/tlsca"
)

// Server is a running Imprint daemon: its state, its content and its three
// listeners. Open binds everything synchronously so that start-up errors
// surface at once; Serve runs until the context ends.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store deploy.Store
	blobs content.Blobs
	tls   *tlsca.Material
	now   func() time.Time
	bootH *boot.Handler // the boot port's handler; the PXE service's TFTP serves through it too

	passcodes   *auth.Passcodes
	throttle    *auth.Throttle
	refusals    *auth.Refusals // throttled requests, counted and audited per source per minute
	adminTokens *auth.AdminTokens
	auditFwd    *auditForwarder // nil unless --audit-syslog
	sessions    *auth.Sessions
	auditor     *auth.Auditor
	login       *auth.Login    // machine logins (POST /v1/auth/token)
	certs       *cert.Verifier // nil unless --client-ca is set
	users       *auth.Users    // web-console accounts
	console     *web.Console
	proxies     []*net.IPNet
	use         *usage // per-session quotas and running scripts (quota.go)

	// gc serialises "a blob exists, commit the row that references it"
	// (shared) against "delete rows, then remove blobs nothing references"
	// (exclusive), so a blob is never removed under a version being committed.
	gc sync.RWMutex
	// imports serialises "is this id taken? store it", so two imports of
	// the same id cannot both pass the check and overwrite each other.
	imports sync.Mutex

	checks *blobChecks // content integrity (integrity.go)
	feed   *runFeed    // run changes for the live views (runfeed.go)

	metrics *metrics // Prometheus metrics (metrics.go), served on --metrics-listen

	// routeTable holds each router's patterns by router name (routetable.go).
	routeTable map[string]*[]string
	openAPI    []byte // the OpenAPI document as JSON (openapi.go)

	mcast *multicast.Manager // multicast sessions (multicast.go)
	// peers and chunks are peer sharing's registry and chunk manifests
	// (peers.go).
	peers  *peer.Registry
	chunks *chunkManifests
	// life ends when the server closes; background work started by a
	// request (a multicast session) runs under it, not the request's.
	life context.Context
	stop context.CancelFunc

	apiLn, bootLn, adminLn net.Listener
	apiLim, bootLim        *netlimit.Listener // apiLn, bootLn with their caps
	connBudget             *netlimit.Budget   // what apiLim and bootLim hold together
	api, boot, admin       *http.Server
	metricsLn              net.Listener // nil unless --metrics-listen
	metricsSrv             *http.Server
}

// Deps are the adapters a server runs on. The command wiring chooses them
// (internal/cli: PostgreSQL or SQLite, an S3 bucket or a directory); Open
// builds the embedded ones.
type Deps struct {
	// Store is the state store. Required.
	Store deploy.Store
	// Blobs is the content store. Required.
	Blobs content.Blobs
	// Log receives the server's log; nil discards it.
	Log *slog.Logger
}

// New prepares the data directory (TLS material, admin socket) and binds
// the listeners of a server on deps. The server owns deps.Store and
// deps.Blobs from the call on and closes them, also when New fails.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	return newServer(ctx, cfg, deps, false)
}

// newServer is New; prepared says the caller (Open) has already checked
// the data directory's permissions.
func newServer(ctx context.Context, cfg Config, deps Deps, prepared bool) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		closeDeps(deps)
		return nil, err
	}
	if deps.Store == nil || deps.Blobs == nil {
		closeDeps(deps)
		return nil, errors.New("server: Deps needs a Store and Blobs (Open builds the embedded ones)")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, now: time.Now, store: deps.Store, blobs: deps.Blobs, checks: newBlobChecks(), feed: newRunFeed(), metrics: newMetrics()}
	s.use = newUsage(cfg.Quotas)
	s.life, s.stop = context.WithCancel(context.Background())
	s.mcast = s.newMulticast()
	s.peers, s.chunks = &peer.Registry{}, &chunkManifests{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if !prepared {
		if n, err := prepareDataDir(cfg.DataDir, "", os.Geteuid()); err != nil {
			return nil, err
		} else if n > 0 {
			log.Warn("data directory was readable by other users: removed their access", "dir", cfg.DataDir, "entries", n)
		}
	}
	if n, err := s.sweepBlobs(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("removed content blobs no version references", "count", n)
	}
	// From here on the store's and the blobs' failures are counted.
	s.store = &meteredStore{Store: s.store, errs: s.metrics.dbErrors}
	s.blobs = &meteredBlobs{Blobs: s.blobs, errs: s.metrics.blobErrors}
	if err := s.openTLS(ctx); err != nil {
		return nil, err
	}

	if s.openAPI, err = openAPIJSON(); err != nil {
		return nil, err
	}
	if err := s.openAuth(); err != nil {
		return nil, err
	}
	if err := s.openConsole(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}

	if s.apiLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if s.bootLn, err = net.Listen("tcp", cfg.BootListen); err != nil {
		return nil, fmt.Errorf("boot-listen: %w", err)
	}
	if s.adminLn, err = listenSocket(SocketPath(cfg.DataDir)); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if cfg.MetricsListen != "" {
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("metrics-listen: %w", err)
		}
	}
	lim, total := cfg.Limits.fit(netlimit.RaiseNoFile(), log)
	vouched := netlimit.NewAddrSet(1 << 16)
	s.connBudget = netlimit.NewBudget(total, total/8)
	s.apiLim = netlimit.NewListener(s.apiLn, lim.netConfig(vouched, s.connBudget, cfg.TrustedProxies))
	s.bootLim = netlimit.NewListener(s.bootLn, lim.netConfig(vouched, s.connBudget, cfg.TrustedProxies))
	adminLim := netlimit.NewListener(s.adminLn, netlimit.Config{WriteStall: lim.Stall})
	s.apiLn, s.bootLn, s.adminLn = s.apiLim, s.bootLim, adminLim

	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{s.tls.Certificate},
	}
	tlsCfg = s.clientCertTLS(tlsCfg)
	s.api = lim.httpServer(s.apiRoutes(), s.apiLim, apiMaxHeaderBytes, log)
	s.api.TLSConfig = tlsCfg
	s.api.RegisterOnShutdown(s.console.Close) // live console streams end
	s.api.RegisterOnShutdown(s.feed.close)    // long polls of run events end
	// HTTP/1.1 only: Go's HTTP/2 server sent content at 0.47× HTTP/1.1
	// (docs/performance.md), the agent speaks HTTP/1.1, and the listener
	// limits count connections, which HTTP/2 would multiplex.
	s.api.Protocols = new(http.Protocols)
	s.api.Protocols.SetHTTP1(true)
	bootMux, err := s.bootRoutes()
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	s.boot = lim.httpServer(bootMux, s.bootLim, bootMaxHeaderBytes, log)
	s.admin = lim.httpServer(s.adminRoutes(), adminLim, apiMaxHeaderBytes, log)
	s.admin.RegisterOnShutdown(s.feed.close) // long polls of run events end
	if s.metricsLn != nil {
		metricsLim := netlimit.NewListener(s.metricsLn, netlimit.Config{WriteStall: lim.Stall})
		s.metricsLn = metricsLim
		s.metricsSrv = lim.httpServer(s.metricsRoutes(), metricsLim, apiMaxHeaderBytes, log)
	}
	startup := map[string]string{"api": s.apiLn.Addr().String(), "caSHA256": s.CAFingerprint()}
	if m, err := s.authMethods(ctx, ""); err == nil {
		startup["methods"] = strings.Join(m.Methods, ",")
		if len(m.Methods) == 0 {
			s.log.Warn("no client authentication is configured: every machine will be refused", "hint", m.Hint)
		}
	}
	s.record(ctx, &deploy.AuditEvent{Action: "sys.startup", Outcome: auth.OutcomeSuccess, Details: startup})
	return s, nil
}

// closeDeps closes the adapters a server was given but did not start on.
func closeDeps(deps Deps) {
	if deps.Store != nil {
		deps.Store.Close()
	}
	if deps.Blobs != nil {
		deps.Blobs.Close()
	}
}

// openAuth builds the client-authentication services.
func (s *Server) openAuth() error {
	pc := auth.DefaultPasscodeConfig()
	if s.cfg.PasscodeArgon2 != (auth.Argon2Params{}) {
		pc.Params = s.cfg.PasscodeArgon2
	}
	var err error
	if s.passcodes, err = auth.NewPasscodes(s.store, pc); err != nil {
		return fmt.Errorf("passcode: %w", err)
	}
	s.auditor = &auth.Auditor{Store: s.store}
	if s.cfg.AuditSyslog != "" {
		if s.auditFwd, err = newAuditForwarder(s.cfg.AuditSyslog, s.log); err != nil {
			return fmt.Errorf("audit-syslog: %w", err)
		}
		s.auditor.Forward = s.auditFwd.Forward
	}
	tc := s.cfg.Throttle
	if tc.Shared == nil {
		// Guesses are counted in the database too, so that replicas on
		// one database share the per-source and global limits (and a
		// restart keeps them).
		tc.Shared = s.store
	}
	tc.Alert = func(n int, window time.Duration) {
		s.log.Warn("authentication failure rate above threshold", "failures", n, "window", window)
		s.record(context.Background(), &deploy.AuditEvent{Action: "auth.alert", Outcome: auth.OutcomeAlert,
			Details: map[string]string{"failures": itoa(n), "window": window.String()}})
	}
	if s.throttle, err = auth.NewThrottle(tc); err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	s.refusals = &auth.Refusals{Auditor: s.auditor, Now: tc.Now,
		Log: func(n, sources int, since time.Time) {
			s.log.Warn("requests refused by the login throttle", "refusals", n, "sources", sources, "since", since)
		}}
	s.sessions = &auth.Sessions{Store: s.store}
	s.adminTokens = &auth.AdminTokens{Store: s.store}
	for _, p := range s.cfg.TrustedProxies {
		_, n, _ := net.ParseCIDR(p)
		s.proxies = append(s.proxies, n)
	}
	if s.cfg.ClientCAFile != "" {
		cc := cert.DefaultConfig()
		cc.ClientCAFile, cc.CRLFiles, cc.SubjectPattern = s.cfg.ClientCAFile, s.cfg.CRLFiles, s.cfg.CertSubjectPattern
		if s.certs, err = cert.NewVerifier(cc); err != nil {
			return fmt.Errorf("client-ca: %w", err)
		}
	}
	s.login = &auth.Login{Store: s.store, Passcodes: s.passcodes, Throttle: s.throttle, Sessions: s.sessions,
		Certificates: s.certs != nil, EntraHTTP: &http.Client{Timeout: 30 * time.Second}, Record: s.record, Now: func() time.Time { return s.now() }}
	sec, err := s.security(context.Background())
	if err != nil {
		return err
	}
	if sec.Anonymous {
		s.log.Warn("ANONYMOUS AUTHENTICATION IS ON: anyone who can reach this server can run any task sequence and read its content; `imprint security set anonymous off` to stop it")
	}
	return nil
}

// certHosts are the names the server certificate must cover.
func (s *Server) certHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return append(hosts, s.cfg.CertHosts...)
}

// listenSocket binds a Unix socket readable only by its owner. A stale
// socket file from a crashed server is replaced; a live one is an error.
func listenSocket(path string) (net.Listener, error) {
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another imprint server is running with this data directory", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// APIAddr, BootAddr and Socket report the bound addresses (useful with port 0).
func (s *Server) APIAddr() net.Addr  { return s.apiLn.Addr() }
func (s *Server) BootAddr() net.Addr { return s.bootLn.Addr() }
func (s *Server) Socket() string     { return SocketPath(s.cfg.DataDir) }

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// CAFingerprint is the SHA-256 of the CA certificate agents pin.
func (s *Server) CAFingerprint() string { return s.tls.Fingerprint() }

// Store exposes the state for in-process tests and tools.
func (s *Server) Store() deploy.Store {
	if m, ok := s.store.(*meteredStore); ok {
		return m.Unwrap()
	}
	return s.store
}

// PublicURL is the API URL handed to agents.
func (s *Server) PublicURL() string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	host := "localhost"
	if len(s.cfg.CertHosts) > 0 {
		host = s.cfg.CertHosts[0]
	}
	_, port, _ := net.SplitHostPort(s.apiLn.Addr().String())
	return "https://" + net.JoinHostPort(host, port)
}

// Serve runs the listeners until ctx ends, then shuts down gracefully
// within cfg.ShutdownTimeout and closes the store.
func (s *Server) Serve(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	// --pxe: proxyDHCP + TFTP (pxe.go); bound before anything runs, so a
	// bind error stops start-up cleanly.
	if s.cfg.PXE {
		if err := s.startPXE(gctx, g); err != nil {
			return err
		}
	}
	serve := func(name string, srv *http.Server, ln net.Listener, useTLS bool) {
		g.Go(func() error {
			var err error
			if useTLS {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("%s: %w", name, err)
		})
	}
	serve("api", s.api, s.apiLn, true)
	serve("boot", s.boot, s.bootLn, false)
	serve("admin", s.admin, s.adminLn, false)
	if s.metricsSrv != nil {
		serve("metrics", s.metricsSrv, s.metricsLn, false)
	}
	g.Go(func() error { s.janitor(gctx); return nil })
	g.Go(func() error { s.watchRuns(gctx); return nil })
	g.Go(func() error { s.sweepLater(gctx); return nil })
	g.Go(func() error { s.reloadCRLs(gctx); return nil })
	g.Go(func() error {
		s.refusals.Run(gctx, func(err error) { s.log.Error("audit write failed", "action", "throttled refusals", "err", err) })
		return nil
	})
	s.log.Info("imprint server started",
		"api", "https://"+s.apiLn.Addr().String(), "boot", "http://"+s.bootLn.Addr().String(),
		"socket", s.Socket(), "ca", CACertPath(s.cfg.DataDir), "ca_sha256", s.CAFingerprint())

	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.log.Info("shutting down")
		s.use.stopScripts()
		var errs []error
		for _, srv := range []*http.Server{s.api, s.boot, s.admin, s.metricsSrv} {
			if srv != nil {
				errs = append(errs, srv.Shutdown(sctx))
			}
		}
		s.record(sctx, &deploy.AuditEvent{Action: "sys.shutdown", Outcome: auth.OutcomeSuccess})
		return errors.Join(errs...)
	})
	return g.Wait()
}

// janitor marks runs lost when their agent has been silent too long.
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.store.MarkLostRuns(ctx, s.now().Add(-s.cfg.RunLostAfter))
			if err != nil && ctx.Err() == nil {
				s.log.Warn("mark lost runs", "err", err)
			} else if n > 0 {
				s.feed.publish("")
				s.log.Info("runs marked lost", "count", n)
				s.metrics.runEnded(deploy.RunLost, n)
			}
		}
	}
}

func (s *Server) close() {
	if s.stop != nil {
		s.stop()
	}
	for _, ln := range []net.Listener{s.apiLn, s.bootLn, s.adminLn, s.metricsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if s.adminLn != nil {
		os.Remove(SocketPath(s.cfg.DataDir))
	}
	if s.console != nil { // a boot image build ends (canceled) before the store closes
		s.console.Close()
		s.console.Wait()
	}
	if s.checks != nil {
		s.checks.close()
	}
	if s.auditFwd != nil {
		s.auditFwd.close()
	}
	if s.blobs != nil {
		s.blobs.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
