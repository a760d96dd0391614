package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/store/postgres"
)

const usageServer = `usage: imprint server [flags]

Runs the Imprint server: the HTTPS machine API, the plain-HTTP boot files and
the admin API on DIR/imprint.sock.

Flags:
  --data DIR             data directory (default ./imprint-data)
  --db URL               state database: a postgres://USER:PASS@HOST/DB URL
                         (several servers may share it), or empty for the
                         embedded SQLite file DIR/imprint.db (default)
  --content URL          content store: s3://BUCKET[/PREFIX]?endpoint=URL&region=R
                         for an S3-compatible bucket (several servers may
                         share it; keys from AWS_ACCESS_KEY_ID and
                         AWS_SECRET_ACCESS_KEY or DIR/s3-credentials), or
                         empty for the directory DIR/content (default)
  --listen HOST:PORT     HTTPS machine API (default :7281)
  --boot-listen HOST:PORT  plain-HTTP boot files (default :7282)
  --metrics-listen HOST:PORT  Prometheus metrics at /metrics in plain HTTP,
                         unauthenticated: use loopback or a management
                         network (default off)
  --cert-host HOST       extra name or IP for the server certificate (repeatable)
  --public-url URL       URL agents use to reach the API (default derived)
  --trusted-proxy CIDR   proxy whose X-Forwarded-For is believed (repeatable)
  --log-format text|json log format on stderr (default text)
  --log-level LEVEL      debug, info, warn or error (default info)
  --client-ca FILE       PEM bundle of CAs for client certificates (turns
                         certificate authentication on; needs --crl)
  --crl FILE             CRL of a client CA (repeatable); checking fails
                         closed when one is stale
  --cert-subject REGEX   anchored pattern a client certificate's subject DN
                         or a SAN must match
  --scripts DIR          server-side scripts (default DIR/scripts)
  --boot-url URL         the boot port as machines reach it (default derived)
  --boot-menu=true|false show the iPXE boot menu before deploying (default true)
  --kernel-args STR      appended to the boot image's kernel command line
  --pxe=true|false       run the built-in proxyDHCP (UDP 67, 4011) and TFTP
                         (UDP 69) beside the site's DHCP server (default false;
                         needs root or CAP_NET_BIND_SERVICE)
  --pxe-interface IFACE  answer PXE only on this interface (default all)
  --pxe-address IP       the IPv4 address machines reach the boot port and
                         TFTP on (default that of the receiving interface)
  --audit-syslog URL     copy every audit event to a syslog server or SIEM:
                         udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log
  --max-conns N          connections held at once on each of the API and boot
                         ports (default 4096); both ports together hold at
                         most (open-file limit - 256) / 2, and N is lowered
                         to that; an eighth is kept for machines that logged in
  --max-conns-per-addr N connections one address may hold on each port
                         (default 64; raise it for many machines behind NAT)
  --config FILE          configuration file (default $IMPRINT_CONFIG, none if unset)

Precedence: defaults < config file < environment < flags.

Environment: IMPRINT_DATA, IMPRINT_DB, IMPRINT_CONTENT, IMPRINT_LISTEN, IMPRINT_BOOT_LISTEN, IMPRINT_CERT_HOSTS
(comma-separated), IMPRINT_PUBLIC_URL, IMPRINT_TRUSTED_PROXIES (comma-separated),
IMPRINT_LOG_FORMAT, IMPRINT_LOG_LEVEL, IMPRINT_CLIENT_CA, IMPRINT_CRLS
(comma-separated), IMPRINT_CERT_SUBJECT, IMPRINT_SCRIPTS, IMPRINT_BOOT_URL,
IMPRINT_BOOT_MENU, IMPRINT_KERNEL_ARGS, IMPRINT_PXE, IMPRINT_PXE_INTERFACE,
IMPRINT_PXE_ADDRESS, IMPRINT_AUDIT_SYSLOG, IMPRINT_MAX_CONNS,
IMPRINT_MAX_CONNS_PER_ADDR, IMPRINT_METRICS_LISTEN, IMPRINT_CONFIG.

Config file: either a JSON object or "key = value" lines; keys are the flag
names (data, db, content, listen, boot-listen, cert-host, public-url, trusted-proxy,
log-format, log-level, client-ca, crl, cert-subject, scripts, boot-url,
boot-menu, kernel-args, pxe, pxe-interface, pxe-address, audit-syslog,
max-conns, max-conns-per-addr, metrics-listen). Blank lines and lines starting with # are ignored;
cert-host, trusted-proxy and crl may repeat or hold comma-separated values
(in JSON: a string or an array of strings). Example:

  # /etc/imprint.conf
  data = /var/lib/imprint
  listen = :7281
  cert-host = imprint.example.org
  log-format = json
`

// serverFlags are the flags of `imprint server`; nil/unset means not given.
type serverFlags struct {
	listen, bootListen, publicURL, logFormat, logLevel, config    optString
	db, content                                                   optString
	clientCA, certSubject, scripts, bootURL, bootMenu, kernelArgs optString
	auditSyslog                                                   optString
	pxe, pxeInterface, pxeAddress                                 optString
	maxConns, maxConnsPerAddr, metricsListen                      optString
	certHosts, trustedProxies, crls                               listFlag
}

// serverConfig merges the configuration of `imprint server`:
// defaults < config file < IMPRINT_* environment < flags, then validates it.
// data is the --data flag (global, so parsed elsewhere); readFile reads the
// config file.
func serverConfig(data optString, fl serverFlags, getenv func(string) string, readFile func(string) ([]byte, error)) (server.Config, error) {
	cfg := server.DefaultConfig()

	path := getenv("IMPRINT_CONFIG")
	if fl.config.set {
		path = fl.config.value
	}
	if path != "" {
		b, err := readFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		kv, err := parseConfigFile(path, b)
		if err != nil {
			return cfg, err
		}
		for _, e := range kv {
			if err := setConfig(&cfg, e.key, e.values, e.where); err != nil {
				return cfg, err
			}
		}
	}

	envs := []struct{ name, key string }{
		{"IMPRINT_DATA", "data"},
		{"IMPRINT_DB", "db"},
		{"IMPRINT_CONTENT", "content"},
		{"IMPRINT_LISTEN", "listen"},
		{"IMPRINT_BOOT_LISTEN", "boot-listen"},
		{"IMPRINT_CERT_HOSTS", "cert-host"},
		{"IMPRINT_PUBLIC_URL", "public-url"},
		{"IMPRINT_TRUSTED_PROXIES", "trusted-proxy"},
		{"IMPRINT_LOG_FORMAT", "log-format"},
		{"IMPRINT_LOG_LEVEL", "log-level"},
		{"IMPRINT_CLIENT_CA", "client-ca"},
		{"IMPRINT_CRLS", "crl"},
		{"IMPRINT_CERT_SUBJECT", "cert-subject"},
		{"IMPRINT_SCRIPTS", "scripts"},
		{"IMPRINT_BOOT_URL", "boot-url"},
		{"IMPRINT_BOOT_MENU", "boot-menu"},
		{"IMPRINT_KERNEL_ARGS", "kernel-args"},
		{"IMPRINT_PXE", "pxe"},
		{"IMPRINT_PXE_INTERFACE", "pxe-interface"},
		{"IMPRINT_PXE_ADDRESS", "pxe-address"},
		{"IMPRINT_AUDIT_SYSLOG", "audit-syslog"},
		{"IMPRINT_MAX_CONNS", "max-conns"},
		{"IMPRINT_MAX_CONNS_PER_ADDR", "max-conns-per-addr"},
		{"IMPRINT_METRICS_LISTEN", "metrics-listen"},
	}
	for _, e := range envs {
		if v := getenv(e.name); v != "" {
			if err := setConfig(&cfg, e.key, []string{v}, e.name); err != nil {
				return cfg, err
			}
		}
	}

	for _, f := range []struct {
		key string
		v   optString
	}{
		{"data", data}, {"db", fl.db}, {"content", fl.content}, {"listen", fl.listen}, {"boot-listen", fl.bootListen},
		{"public-url", fl.publicURL}, {"log-format", fl.logFormat}, {"log-level", fl.logLevel},
		{"client-ca", fl.clientCA}, {"cert-subject", fl.certSubject}, {"scripts", fl.scripts},
		{"boot-url", fl.bootURL}, {"boot-menu", fl.bootMenu}, {"kernel-args", fl.kernelArgs},
		{"pxe", fl.pxe}, {"pxe-interface", fl.pxeInterface}, {"pxe-address", fl.pxeAddress},
		{"audit-syslog", fl.auditSyslog},
		{"max-conns", fl.maxConns}, {"max-conns-per-addr", fl.maxConnsPerAddr},
		{"metrics-listen", fl.metricsListen},
	} {
		if f.v.set {
			if err := setConfig(&cfg, f.key, []string{f.v.value}, "--"+f.key); err != nil {
				return cfg, err
			}
		}
	}
	if len(fl.certHosts) > 0 {
		cfg.CertHosts = splitList(fl.certHosts)
	}
	if len(fl.trustedProxies) > 0 {
		cfg.TrustedProxies = splitList(fl.trustedProxies)
	}
	if len(fl.crls) > 0 {
		cfg.CRLFiles = splitList(fl.crls)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if cfg.DB != "" && !postgres.IsDSN(cfg.DB) {
		return cfg, fmt.Errorf("config: db: %q is not a postgres:// or postgresql:// URL (leave it empty for the embedded SQLite database)", postgres.Redact(cfg.DB))
	}
	if cfg.Content != "" {
		if !s3store.IsURL(cfg.Content) {
			return cfg, fmt.Errorf("config: content: %q is not an s3:// URL (leave it empty for the directory DATA/content)", s3store.Redact(cfg.Content))
		}
		if _, err := s3store.ParseURL(cfg.Content); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	return cfg, nil
}

// setConfig sets the field named by key (a flag name) from values; where
// names the source for errors. List keys replace what an earlier source set.
func setConfig(cfg *server.Config, key string, values []string, where string) error {
	one := func() (string, error) {
		if len(values) != 1 {
			return "", fmt.Errorf("config: %s: %s is given %d times", where, key, len(values))
		}
		return strings.TrimSpace(values[0]), nil
	}
	number := func() (int, error) { // Validate checks the range
		v, err := one()
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("config: %s: %s: %q is not a whole number", where, key, v)
		}
		return n, nil
	}
	var err error
	switch key {
	case "data":
		cfg.DataDir, err = one()
	case "db":
		cfg.DB, err = one()
	case "content":
		cfg.Content, err = one()
	case "listen":
		cfg.Listen, err = one()
	case "boot-listen":
		cfg.BootListen, err = one()
	case "metrics-listen":
		cfg.MetricsListen, err = one()
	case "public-url":
		cfg.PublicURL, err = one()
	case "log-format":
		cfg.LogFormat, err = one()
	case "log-level":
		cfg.LogLevel, err = one()
	case "cert-host":
		cfg.CertHosts = splitList(values)
	case "trusted-proxy":
		cfg.TrustedProxies = splitList(values)
	case "client-ca":
		cfg.ClientCAFile, err = one()
	case "crl":
		cfg.CRLFiles = splitList(values)
	case "cert-subject":
		cfg.CertSubjectPattern, err = one()
	case "scripts":
		cfg.ScriptsDir, err = one()
	case "boot-url":
		cfg.BootURL, err = one()
	case "boot-menu":
		var v string
		if v, err = one(); err == nil {
			cfg.BootMenu, err = parseBool(v, where, key)
		}
	case "kernel-args":
		// Kept as given: spaces inside are the separators of the arguments.
		cfg.KernelArgs, err = one()
	case "pxe":
		var v string
		if v, err = one(); err == nil {
			cfg.PXE, err = parseBool(v, where, key)
		}
	case "pxe-interface":
		cfg.PXEInterface, err = one()
	case "pxe-address":
		cfg.PXEServerIP, err = one()
	case "audit-syslog":
		cfg.AuditSyslog, err = one()
	case "max-conns":
		cfg.Limits.MaxConns, err = number()
	case "max-conns-per-addr":
		cfg.Limits.MaxConnsPerAddr, err = number()
	default:
		return fmt.Errorf("config: %s: unknown key %q (known: data, db, listen, boot-listen, cert-host, public-url, trusted-proxy, log-format, log-level, client-ca, crl, cert-subject, scripts, boot-url, boot-menu, kernel-args, pxe, pxe-interface, pxe-address, audit-syslog, max-conns, max-conns-per-addr, metrics-listen)", where, key)
	}
	return err
}

// parseBool accepts true/false, yes/no, on/off and 1/0.
func parseBool(v, where, key string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("config: %s: %s: %q is not true or false", where, key, v)
}

// splitList splits comma-separated values and drops empty ones.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// configEntry is one key of a config file with all its values.
type configEntry struct {
	key    string
	values []string
	where  string // file:line
}

// parseConfigFile reads a JSON object or "key = value" lines.
func parseConfigFile(path string, b []byte) ([]configEntry, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		return parseConfigJSON(path, t)
	}
	var out []configEntry
	idx := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, line)
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("config: %s: %q is not key = value", where, s)
		}
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		if i, seen := idx[k]; seen {
			out[i].values = append(out[i].values, v)
			continue
		}
		idx[k] = len(out)
		out = append(out, configEntry{key: k, values: []string{v}, where: where})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return out, nil
}

func parseConfigJSON(path string, b []byte) ([]configEntry, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	var out []configEntry
	for k, raw := range m {
		where := path + ": " + k
		var s string
		var list []string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			list = []string{s}
		case json.Unmarshal(raw, &list) == nil:
		default:
			return nil, fmt.Errorf("config: %s: must be a string or a list of strings", where)
		}
		out = append(out, configEntry{key: k, values: list, where: where})
	}
	// Map order is random; report errors deterministically.
	slices.SortFunc(out, func(a, b configEntry) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

// boolOpt lets an optString flag be given bare (--boot-menu means true)
// as well as --boot-menu=false.
type boolOpt struct{ *optString }

func (b boolOpt) IsBoolFlag() bool { return true }

// newLogger builds the server's logger on stderr. Log values carry text
// machines chose (paths, names, messages): both handlers quote a value
// with a line break or control character, so one record stays one line,
// and the text handler writes any character that is not printable as an
// escape. The JSON handler leaves C1 controls and bidi overrides raw;
// safeWriter escapes those too, as the same JSON.
func newLogger(a *app, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated already
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(safeWriter{a.stderr}, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}

// safeWriter passes whole JSON records through safeJSON (slog handlers
// write one record per Write).
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	if _, err := s.w.Write(safeJSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// serverFlagSet declares every `imprint server` flag on a new flag set.
func serverFlagSet(a *app) (*flags, *serverFlags) {
	var fl serverFlags
	fs := a.flagSet("imprint server", usageServer)
	fs.Var(&fl.db, "db", "")
	fs.Var(&fl.content, "content", "")
	fs.Var(&fl.listen, "listen", "")
	fs.Var(&fl.bootListen, "boot-listen", "")
	fs.Var(&fl.certHosts, "cert-host", "")
	fs.Var(&fl.publicURL, "public-url", "")
	fs.Var(&fl.trustedProxies, "trusted-proxy", "")
	fs.Var(&fl.logFormat, "log-format", "")
	fs.Var(&fl.logLevel, "log-level", "")
	fs.Var(&fl.config, "config", "")
	fs.Var(&fl.clientCA, "client-ca", "")
	fs.Var(&fl.crls, "crl", "")
	fs.Var(&fl.certSubject, "cert-subject", "")
	fs.Var(&fl.scripts, "scripts", "")
	fs.Var(&fl.bootURL, "boot-url", "")
	fs.Var(&boolOpt{&fl.bootMenu}, "boot-menu", "")
	fs.Var(&fl.kernelArgs, "kernel-args", "")
	fs.Var(&fl.auditSyslog, "audit-syslog", "")
	fs.Var(&boolOpt{&fl.pxe}, "pxe", "")
	fs.Var(&fl.pxeInterface, "pxe-interface", "")
	fs.Var(&fl.pxeAddress, "pxe-address", "")
	fs.Var(&fl.maxConns, "max-conns", "")
	fs.Var(&fl.maxConnsPerAddr, "max-conns-per-addr", "")
	fs.Var(&fl.metricsListen, "metrics-listen", "")
	return fs, &fl
}

func runServer(ctx context.Context, a *app, args []string) error {
	fs, fl := serverFlagSet(a)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	cfg, err := serverConfig(a.dataDir, *fl, a.getenv, os.ReadFile)
	if err != nil {
		return usagef(err.Error(), "run 'imprint server -h' for the flags, variables and file format")
	}
	log := newLogger(a, cfg.LogFormat, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The adapters are chosen here; the server fills in the embedded
	// SQLite database and content directory for the ones left nil.
	deps := server.Deps{Log: log}
	if deps.Store, err = openStore(ctx, cfg.DB); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if deps.Store != nil {
		log.Info("state store", "db", postgres.Redact(cfg.DB))
	}
	if deps.Blobs, err = openContent(ctx, cfg.Content, cfg.DataDir, a.getenv); err != nil {
		if deps.Store != nil {
			deps.Store.Close()
		}
		return fmt.Errorf("server: %w", err)
	}
	if deps.Blobs != nil {
		log.Info("content store", "content", s3store.Redact(cfg.Content))
	}
	// The server logs its bound addresses itself once it is ready.
	if err := server.Run(ctx, cfg, deps, nil); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// openStore opens the state store --db names: nil for the default (the
// server opens its embedded SQLite database), PostgreSQL for a postgres://
// URL (serverConfig has refused anything else).
func openStore(ctx context.Context, db string) (deploy.Store, error) {
	if db == "" {
		return nil, nil
	}
	st, err := postgres.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openContent opens the content store --content names: nil for the
// default (the server opens DATA/content), an S3 bucket for an s3:// URL
// (serverConfig has refused anything else), with its credentials from the
// environment or DATA/s3-credentials.
func openContent(ctx context.Context, u, dataDir string, getenv func(string) string) (content.Blobs, error) {
	if u == "" {
		return nil, nil
	}
	cfg, err := s3store.ParseURL(u)
	if err != nil {
		return nil, err
	}
	if err := s3store.Credentials(&cfg, dataDir, getenv); err != nil {
		return nil, err
	}
	st, err := s3store.Open(ctx, cfg, s3store.Options{})
	if err != nil {
		return nil, err
	}
	return st, nil
}
