package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
)

// Config is everything `imprint server` needs. DefaultConfig gives the
// embedded defaults; flags, IMPRINT_* variables and the optional config file
// override them (see internal/cli).
type Config struct {
	DataDir string // --data, IMPRINT_DATA
	// DB names the state database: empty for the embedded SQLite file
	// DATA/imprint.db, or a postgres:// URL. The command wiring opens it
	// (internal/cli) and hands it over as Deps.Store.
	DB string // --db, IMPRINT_DB
	// Content names the content store: empty for the directory
	// DATA/content, or an s3://BUCKET[/PREFIX]?endpoint=…&region=… URL.
	// The command wiring opens it (internal/cli) and hands it over as
	// Deps.Blobs.
	Content    string // --content, IMPRINT_CONTENT
	Listen     string // --listen, IMPRINT_LISTEN: HTTPS machine API
	BootListen string // --boot-listen, IMPRINT_BOOT_LISTEN: plain-HTTP boot files
	// MetricsListen serves Prometheus metrics at /metrics in plain HTTP,
	// without authentication: bind it to loopback or a management
	// network. Empty (the default) serves no metrics.
	MetricsListen string // --metrics-listen, IMPRINT_METRICS_LISTEN
	// Hostnames and IPs added to the generated server certificate besides
	// localhost, 127.0.0.1, ::1 and the machine's hostname.
	CertHosts []string // --cert-host (repeatable), IMPRINT_CERT_HOSTS (comma-separated)
	// PublicURL is the URL agents use to reach the API; derived from the
	// first cert host and the listen port when empty.
	PublicURL string // --public-url, IMPRINT_PUBLIC_URL
	// BootURL is this server's boot port as machines reach it (iPXE fetches
	// the kernel from it); derived like PublicURL when empty.
	BootURL string // --boot-url, IMPRINT_BOOT_URL
	// BootMenu shows the iPXE menu (deploy, local disk, shell) before deploying.
	BootMenu bool // --boot-menu, IMPRINT_BOOT_MENU
	// PXE runs the built-in proxyDHCP (UDP 67 and 4011) and TFTP (UDP 69)
	// service beside the site's unchanged DHCP server.
	PXE bool // --pxe, IMPRINT_PXE
	// PXEInterface binds the PXE service to one network interface; empty
	// means all of them.
	PXEInterface string // --pxe-interface, IMPRINT_PXE_INTERFACE
	// PXEServerIP is the IPv4 address machines reach the boot port and
	// TFTP on; empty means the address of the interface a request came in on.
	PXEServerIP string // --pxe-address, IMPRINT_PXE_ADDRESS
	// KernelArgs are appended to the boot image's kernel command line.
	KernelArgs string // --kernel-args, IMPRINT_KERNEL_ARGS
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string // --trusted-proxy, IMPRINT_TRUSTED_PROXIES
	LogFormat      string   // --log-format text|json, IMPRINT_LOG_FORMAT
	LogLevel       string   // --log-level debug|info|warn|error, IMPRINT_LOG_LEVEL
	// Certificate authentication: a client-CA bundle turns it on. CRLs are
	// mandatory with it (checking fails closed when one is stale).
	ClientCAFile       string   // --client-ca, IMPRINT_CLIENT_CA
	CRLFiles           []string // --crl (repeatable), IMPRINT_CRLS (comma-separated)
	CertSubjectPattern string   // --cert-subject, IMPRINT_CERT_SUBJECT: anchored regexp on subject DN or a SAN
	// CRLReload is how often the CRL files are read again (default 1m).
	CRLReload time.Duration
	// AuditSyslog copies every audit event to a syslog server or SIEM:
	// udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log.
	AuditSyslog string // --audit-syslog, IMPRINT_AUDIT_SYSLOG
	// ScriptsDir holds server-side scripts; default DIR/scripts.
	ScriptsDir string // --scripts, IMPRINT_SCRIPTS
	// WindowsAgent is the windows/amd64 imprint-agent.exe served to boot
	// images that deploy Windows; empty looks at
	// DIR/agents/windows-amd64/imprint-agent.exe, then beside the server's
	// executable (winagent.go).
	WindowsAgent string
	// BuildBootImage overrides the web console's boot image build (tests
	// give a quick one to test the console's job); nil is the real build,
	// bootimage.BuildDebian (console.go).
	BuildBootImage func(ctx context.Context, log io.Writer) error
	// PasscodeArgon2 overrides the Argon2id cost (tests use a cheap one);
	// zero means auth.DefaultArgon2Params.
	PasscodeArgon2 auth.Argon2Params
	// Limits bound what clients may hold on the listeners (limits.go).
	Limits Limits
	// Throttle overrides the login throttle's settings; zero fields take
	// auth.DefaultThrottleConfig's. Tests inject a clock through it (its
	// Now also times the aggregated refusal records).
	Throttle auth.ThrottleConfig
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
	// RunLostAfter marks a run lost when its agent is silent this long.
	RunLostAfter time.Duration
	// Quotas bound what one machine session may make the server do; zero
	// fields take DefaultQuotas (quota.go).
	Quotas Quotas
}

// DefaultConfig returns the embedded defaults of contract §8.
func DefaultConfig() Config {
	return Config{
		DataDir:         "imprint-data",
		Listen:          ":7281",
		BootListen:      ":7282",
		LogFormat:       "text",
		LogLevel:        "info",
		ShutdownTimeout: 15 * time.Second,
		RunLostAfter:    30 * time.Minute,
		BootMenu:        true,
		Limits:          DefaultLimits(),
	}
}

// Validate checks the configuration and names the offending field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: data: must not be empty")
	}
	for name, addr := range map[string]string{"listen": c.Listen, "boot-listen": c.BootListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("config: %s: %q is not host:port: %v", name, addr, err)
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("config: metrics-listen: %q is not host:port: %v", c.MetricsListen, err)
		}
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("config: trusted-proxy: %q is not a CIDR", p)
		}
	}
	if err := c.validatePXE(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if c.AuditSyslog != "" {
		if _, _, err := syslogTarget(c.AuditSyslog); err != nil {
			return fmt.Errorf("config: audit-syslog: %w", err)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log-format: %q is not text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func (c Config) validatePXE() error {
	if !c.PXE {
		if c.PXEInterface != "" {
			return fmt.Errorf("config: pxe-interface: set without pxe (add --pxe)")
		}
		if c.PXEServerIP != "" {
			return fmt.Errorf("config: pxe-address: set without pxe (add --pxe)")
		}
		return nil
	}
	if c.PXEServerIP != "" {
		ip := net.ParseIP(c.PXEServerIP)
		if ip == nil || ip.To4() == nil || ip.IsUnspecified() {
			return fmt.Errorf("config: pxe-address: %q is not an IPv4 address", c.PXEServerIP)
		}
	}
	if strings.ContainsAny(c.PXEInterface, "/ \t") || len(c.PXEInterface) > 15 {
		return fmt.Errorf("config: pxe-interface: %q is not a network interface name", c.PXEInterface)
	}
	return nil
}

// SocketPath is the admin socket inside the data directory.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, "imprint.sock") }

// CACertPath is the CA certificate agents pin.
func CACertPath(dataDir string) string { return filepath.Join(dataDir, "tls", "ca.crt") }
