package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// metrics are the server's Prometheus metrics. The registry belongs to
// the Server (no global registry): two servers in one process, as tests
// run them, count apart. Labels take only values from small fixed sets —
// never a machine, a device, an address or anything a client chose
// (docs/metrics in README, "Metrics").
type metrics struct {
	reg *prometheus.Registry

	logins      *prometheus.CounterVec // method, outcome
	throttled   prometheus.Counter
	runsStarted prometheus.Counter
	runsEnded   *prometheus.CounterVec   // state
	steps       *prometheus.HistogramVec // outcome
	served      *prometheus.CounterVec   // source
	downloads   prometheus.Gauge
	boot        *prometheus.CounterVec // kind
	dbErrors    *prometheus.CounterVec // operation
	blobErrors  *prometheus.CounterVec // operation
}

// Label values. Anything else a client sends is counted as "other".
var (
	loginMethods = []string{auth.MethodPasscode, auth.MethodAnonymous, auth.MethodEntra, auth.MethodCertificate, "other"}
	endStates    = []deploy.RunState{deploy.RunSucceeded, deploy.RunFailed, deploy.RunCanceled, deploy.RunLost}
	stepOutcomes = []deploy.StepOutcome{deploy.StepSucceeded, deploy.StepFailed, deploy.StepIgnored, deploy.StepSkipped, deploy.StepDisabled}
	servedFrom   = []string{sourceContent, sourceBootHTTP, sourceTFTP}
	bootKinds    = []string{bootIPXEScript, bootGrubConfig, bootFile, bootTFTP, bootOther}
)

const (
	sourceContent  = "content"   // content versions and files over the API port
	sourceBootHTTP = "boot_http" // the boot port: kernels, initrds, iPXE binaries
	sourceTFTP     = "tftp"      // the PXE service's TFTP

	bootIPXEScript = "ipxe_script" // /boot.ipxe, /ipxe
	bootGrubConfig = "grub_config" // /grub/*.cfg
	bootFile       = "boot_file"   // /images/…, /ipxe/{binary}
	bootTFTP       = "tftp"        // a TFTP read request
	bootOther      = "other"       // anything else asked of the boot port
)

// stepBuckets span what a step takes: seconds for a script, an hour or
// more for an image applied over a slow link.
var stepBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imprint_logins_total",
		Help: "Machine logins at /v1/auth/token by method and outcome (success or failure); a throttled attempt is counted in imprint_login_throttled_total instead."},
		[]string{"method", "outcome"})
	m.throttled = prometheus.NewCounter(prometheus.CounterOpts{Name: "imprint_login_throttled_total",
		Help: "Login attempts refused by the throttle (429) without being evaluated."})
	m.runsStarted = prometheus.NewCounter(prometheus.CounterOpts{Name: "imprint_runs_started_total",
		Help: "Task-sequence runs started by machines."})
	m.runsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imprint_runs_ended_total",
		Help: "Task-sequence runs ended, by final state (succeeded, failed, canceled, lost)."}, []string{"state"})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "imprint_step_duration_seconds",
		Help: "Duration of task-sequence steps as their agents report them, by outcome.", Buckets: stepBuckets}, []string{"outcome"})
	m.served = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imprint_served_bytes_total",
		Help: "Bytes sent to machines by source: content (API port), boot_http (boot port files), tftp."}, []string{"source"})
	m.downloads = prometheus.NewGauge(prometheus.GaugeOpts{Name: "imprint_content_downloads_in_flight",
		Help: "Content downloads being sent right now."})
	m.boot = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imprint_boot_requests_total",
		Help: "Boot requests by kind: ipxe_script, grub_config, boot_file (boot port), tftp, other."}, []string{"kind"})
	m.dbErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imprint_db_errors_total",
		Help: "State-database operations that failed (not a missing record or a conflict), by store operation."}, []string{"operation"})
	m.blobErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imprint_blob_errors_total",
		Help: "Content-store (blob) operations that failed (not a missing blob), by operation."}, []string{"operation"})
	for _, c := range []prometheus.Collector{m.logins, m.throttled, m.runsStarted, m.runsEnded, m.steps, m.served,
		m.downloads, m.boot, m.dbErrors, m.blobErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	// Every fixed label value shows from the start, at zero, so that a
	// rate() over the first increase works and dashboards list them all.
	for _, me := range loginMethods {
		for _, o := range []string{auth.OutcomeSuccess, auth.OutcomeFailure} {
			m.logins.WithLabelValues(me, o)
		}
	}
	for _, s := range endStates {
		m.runsEnded.WithLabelValues(string(s))
	}
	for _, o := range stepOutcomes {
		m.steps.WithLabelValues(string(o))
	}
	for _, s := range servedFrom {
		m.served.WithLabelValues(s)
	}
	for _, k := range bootKinds {
		m.boot.WithLabelValues(k)
	}
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// metricsRoutes is the --metrics-listen listener: /metrics and nothing
// else, in plain HTTP.
func (s *Server) metricsRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	return s.recoverer(mux)
}

// MetricsAddr is the bound --metrics-listen address; nil when it is off.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// audited counts what an audit event says happened: logins, runs started
// and ended. Counting from the audit record keeps one hook per fact.
func (m *metrics) audited(e *deploy.AuditEvent) {
	switch e.Action {
	case "auth.attempt":
		if e.Outcome != auth.OutcomeSuccess && e.Outcome != auth.OutcomeFailure {
			return
		}
		m.logins.WithLabelValues(oneOf(e.Details["method"], loginMethods), e.Outcome).Inc()
	case "run.start":
		m.runsStarted.Inc()
	case "run.end":
		m.runEnded(deploy.RunState(e.Details["state"]), 1)
	case "run.cancel":
		m.runEnded(deploy.RunCanceled, 1)
	}
}

func (m *metrics) runEnded(st deploy.RunState, n int) {
	for _, s := range endStates {
		if s == st {
			m.runsEnded.WithLabelValues(string(st)).Add(float64(n))
		}
	}
}

// stepEvents observes the duration of every step-end among events: the
// agent's durationSeconds, else the time since the step started.
func (m *metrics) stepEvents(run *deploy.Run, events []wire.Event) {
	for _, e := range events {
		if e.Type != wire.EventStepEnd {
			continue
		}
		d := e.DurationSeconds
		if d <= 0 {
			for _, st := range run.Steps {
				if (st.Path == e.Path || (e.Path == "" && st.StepID == e.StepID)) && !st.StartedAt.IsZero() && !e.Time.IsZero() {
					d = e.Time.Sub(st.StartedAt).Seconds()
				}
			}
		}
		if d < 0 {
			d = 0
		}
		out := string(e.Outcome)
		if oneOf(out, stepStrings()) != out {
			continue // a step still running or an outcome we do not know
		}
		m.steps.WithLabelValues(out).Observe(d)
	}
}

func stepStrings() []string {
	s := make([]string, len(stepOutcomes))
	for i, o := range stepOutcomes {
		s[i] = string(o)
	}
	return s
}

// oneOf returns v if it is in set, else "other".
func oneOf(v string, set []string) string {
	for _, s := range set {
		if s == v {
			return v
		}
	}
	return "other"
}

// bootKind classifies a request to the boot port (internal/boot routes).
func bootKind(path string) string {
	switch {
	case path == "/boot.ipxe" || path == "/ipxe":
		return bootIPXEScript
	case strings.HasPrefix(path, "/grub/"):
		return bootGrubConfig
	case strings.HasPrefix(path, "/images/") || strings.HasPrefix(path, "/ipxe/"):
		return bootFile
	}
	return bootOther
}

// bootMetered counts boot-port requests by kind and the bytes of boot
// files sent.
func (m *metrics) bootMetered(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := bootKind(r.URL.Path)
		m.boot.WithLabelValues(kind).Inc()
		if kind == bootOther {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&countingWriter{ResponseWriter: w, add: m.served.WithLabelValues(sourceBootHTTP).Add}, r)
	})
}

// download counts one content download: in flight while it runs, and its
// bytes sent. The returned writer replaces w; done ends the download.
func (m *metrics) download(w http.ResponseWriter) (_ http.ResponseWriter, done func()) {
	m.downloads.Inc()
	return &countingWriter{ResponseWriter: w, add: m.served.WithLabelValues(sourceContent).Add}, m.downloads.Dec
}

// tftp wraps the TFTP open function: a request counted, its bytes sent.
func (m *metrics) tftp(open func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error)) func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error) {
	return func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error) {
		m.boot.WithLabelValues(bootTFTP).Inc()
		rc, n, err := open(ctx, remote, name)
		if err != nil {
			return rc, n, err
		}
		return &countingReader{ReadCloser: rc, add: m.served.WithLabelValues(sourceTFTP).Add}, n, nil
	}
}

// countingWriter adds the body bytes written through it. It keeps
// io.ReaderFrom (sendfile on the plain-HTTP boot port) and lets
// http.ResponseController reach the connection.
type countingWriter struct {
	http.ResponseWriter
	add func(float64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.add(float64(n))
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.add(float64(n))
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type countingReader struct {
	io.ReadCloser
	add func(float64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.add(float64(n))
	return n, err
}

// failed reports whether err from a store is a fault rather than an
// answer: a missing record, a conflict, refused input or a canceled
// request are answers.
func failed(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch deploy.ErrorKind(err) {
	case deploy.KindNotFound, deploy.KindConflict, deploy.KindInvalid, deploy.KindForbidden,
		deploy.KindUnauthorized, deploy.KindTooLarge, deploy.KindThrottled:
		return false
	}
	return true
}
