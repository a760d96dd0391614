package cli

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/server"
)

func TestServerConfig(t *testing.T) {
	def := server.DefaultConfig()
	with := func(f func(*server.Config)) server.Config {
		c := server.DefaultConfig()
		f(&c)
		return c
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{
		"kv.conf": `# comment
data = /srv/imprint
listen = :9000
cert-host = a.example.org
cert-host = b.example.org, 10.0.0.5
log-format = "json"
`,
		"cfg.json":     `{"listen":":9100","trusted-proxy":["10.0.0.0/8","192.168.0.0/16"],"log-level":"debug"}`,
		"bad-key.conf": "listen = :1\nlisten-addr = :2\n",
		"no-eq.conf":   "listen :1\n",
		"bad.json":     `{"listen": 7}`,
	}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	tests := []struct {
		name    string
		data    optString
		flags   serverFlags
		env     map[string]string
		want    server.Config
		wantErr string
	}{
		{name: "defaults", want: def},
		{
			name:  "config file key=value",
			flags: serverFlags{config: set("kv.conf")},
			want: with(func(c *server.Config) {
				c.DataDir, c.Listen, c.LogFormat = "/srv/imprint", ":9000", "json"
				c.CertHosts = []string{"a.example.org", "b.example.org", "10.0.0.5"}
			}),
		},
		{
			name: "config file JSON from IMPRINT_CONFIG",
			env:  map[string]string{"IMPRINT_CONFIG": "cfg.json"},
			want: with(func(c *server.Config) {
				c.Listen, c.LogLevel = ":9100", "debug"
				c.TrustedProxies = []string{"10.0.0.0/8", "192.168.0.0/16"}
			}),
		},
		{
			name:  "environment beats file",
			flags: serverFlags{config: set("kv.conf")},
			env: map[string]string{
				"IMPRINT_DATA": "/env/data", "IMPRINT_LISTEN": "127.0.0.1:1", "IMPRINT_BOOT_LISTEN": ":2",
				"IMPRINT_CERT_HOSTS": "x.example, y.example", "IMPRINT_PUBLIC_URL": "https://x.example:1",
				"IMPRINT_TRUSTED_PROXIES": "10.1.0.0/16", "IMPRINT_LOG_FORMAT": "text", "IMPRINT_LOG_LEVEL": "warn",
			},
			want: with(func(c *server.Config) {
				c.DataDir, c.Listen, c.BootListen = "/env/data", "127.0.0.1:1", ":2"
				c.CertHosts = []string{"x.example", "y.example"}
				c.PublicURL, c.TrustedProxies = "https://x.example:1", []string{"10.1.0.0/16"}
				c.LogFormat, c.LogLevel = "text", "warn"
			}),
		},
		{
			name: "flags beat environment and file",
			data: set("/flag/data"),
			flags: serverFlags{
				config: set("kv.conf"), listen: set(":7"), bootListen: set(":8"),
				certHosts: listFlag{"f1", "f2,f3"}, trustedProxies: listFlag{"172.16.0.0/12"},
				publicURL: set("https://f:7"), logFormat: set("text"), logLevel: set("error"),
			},
			env: map[string]string{"IMPRINT_DATA": "/env/data", "IMPRINT_LISTEN": ":5", "IMPRINT_CERT_HOSTS": "e"},
			want: with(func(c *server.Config) {
				c.DataDir, c.Listen, c.BootListen = "/flag/data", ":7", ":8"
				c.CertHosts, c.TrustedProxies = []string{"f1", "f2", "f3"}, []string{"172.16.0.0/12"}
				c.PublicURL, c.LogFormat, c.LogLevel = "https://f:7", "text", "error"
			}),
		},
		{name: "missing config file", flags: serverFlags{config: set("nope.conf")}, wantErr: "config file: open nope.conf"},
		{name: "unknown key names file and line", flags: serverFlags{config: set("bad-key.conf")}, wantErr: `bad-key.conf:2: unknown key "listen-addr"`},
		{name: "line without =", flags: serverFlags{config: set("no-eq.conf")}, wantErr: `no-eq.conf:1: "listen :1" is not key = value`},
		{name: "JSON wrong type", flags: serverFlags{config: set("bad.json")}, wantErr: "bad.json: listen: must be a string"},
		{name: "invalid listen from env", env: map[string]string{"IMPRINT_LISTEN": "7281"}, wantErr: `listen: "7281" is not host:port`},
		{name: "invalid log format flag", flags: serverFlags{logFormat: set("xml")}, wantErr: `log-format: "xml" is not text or json`},
		{name: "invalid proxy", flags: serverFlags{trustedProxies: listFlag{"10.0.0.1"}}, wantErr: `trusted-proxy: "10.0.0.1" is not a CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := serverConfig(tt.data, tt.flags, getenv, readFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerUsageErrors(t *testing.T) {
	r := newTestApp(t, nil)
	code := r.run("server", "--log-level", "loud")
	if code != exitUsage {
		t.Fatalf("exit = %d, want %d; stderr: %s", code, exitUsage, r.stderr)
	}
	if want := `imprint: config: log-level: "loud" is not debug, info, warn or error`; !strings.Contains(r.stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

// TestServerConfigAuthAndBoot covers the certificate, scripts and boot keys
// through every source: file < environment < flags.
func TestServerConfigAuthAndBoot(t *testing.T) {
	with := func(f func(*server.Config)) server.Config {
		c := server.DefaultConfig()
		f(&c)
		return c
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{
		"auth.conf": `client-ca = /etc/imprint/clients.pem
crl = /etc/imprint/a.crl
crl = /etc/imprint/b.crl, /etc/imprint/c.crl
cert-subject = CN=.*\.lab\.example
scripts = /srv/scripts
boot-url = http://10.0.0.1:7282
boot-menu = false
kernel-args = console=ttyS0,115200 quiet
`,
		"auth.json":     `{"crl":["/x.crl"],"boot-menu":"off","kernel-args":"ip=dhcp"}`,
		"bad-menu.conf": "boot-menu = maybe\n",
	}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	fromFile := with(func(c *server.Config) {
		c.ClientCAFile = "/etc/imprint/clients.pem"
		c.CRLFiles = []string{"/etc/imprint/a.crl", "/etc/imprint/b.crl", "/etc/imprint/c.crl"}
		c.CertSubjectPattern = `CN=.*\.lab\.example`
		c.ScriptsDir, c.BootURL, c.BootMenu = "/srv/scripts", "http://10.0.0.1:7282", false
		c.KernelArgs = "console=ttyS0,115200 quiet"
	})
	env := map[string]string{
		"IMPRINT_CONFIG": "auth.conf", "IMPRINT_CLIENT_CA": "/env/ca.pem", "IMPRINT_CRLS": "/env/1.crl,/env/2.crl",
		"IMPRINT_CERT_SUBJECT": "CN=env", "IMPRINT_SCRIPTS": "/env/scripts", "IMPRINT_BOOT_URL": "http://env:7282",
		"IMPRINT_BOOT_MENU": "true", "IMPRINT_KERNEL_ARGS": "env=1",
	}
	tests := []serverConfigCase{
		{name: "file", flags: serverFlags{config: set("auth.conf")}, want: fromFile},
		{name: "JSON file", flags: serverFlags{config: set("auth.json")}, want: with(func(c *server.Config) {
			c.CRLFiles, c.BootMenu, c.KernelArgs = []string{"/x.crl"}, false, "ip=dhcp"
		})},
		{name: "environment beats file", env: env, want: with(func(c *server.Config) {
			c.ClientCAFile, c.CRLFiles, c.CertSubjectPattern = "/env/ca.pem", []string{"/env/1.crl", "/env/2.crl"}, "CN=env"
			c.ScriptsDir, c.BootURL, c.BootMenu, c.KernelArgs = "/env/scripts", "http://env:7282", true, "env=1"
		})},
		{name: "flags beat environment", env: env, flags: serverFlags{
			clientCA: set("/f/ca.pem"), crls: listFlag{"/f/1.crl", "/f/2.crl"}, certSubject: set("CN=flag"),
			scripts: set("/f/scripts"), bootURL: set("http://f:1"), bootMenu: set("false"), kernelArgs: set("f=1 g=2"),
		}, want: with(func(c *server.Config) {
			c.ClientCAFile, c.CRLFiles, c.CertSubjectPattern = "/f/ca.pem", []string{"/f/1.crl", "/f/2.crl"}, "CN=flag"
			c.ScriptsDir, c.BootURL, c.BootMenu, c.KernelArgs = "/f/scripts", "http://f:1", false, "f=1 g=2"
		})},
		{name: "audit-syslog from env, flag wins", env: map[string]string{"IMPRINT_AUDIT_SYSLOG": "udp://env:514"},
			flags: serverFlags{auditSyslog: set("tcp://siem.example.org:6514")},
			want:  with(func(c *server.Config) { c.AuditSyslog = "tcp://siem.example.org:6514" })},
		{name: "bad audit-syslog", env: map[string]string{"IMPRINT_AUDIT_SYSLOG": "siem:514"}, wantErr: `audit-syslog: "siem:514"`},
		{name: "bad boot-menu in file", flags: serverFlags{config: set("bad-menu.conf")}, wantErr: `bad-menu.conf:1: boot-menu: "maybe" is not true or false`},
		{name: "bad boot-menu in env", env: map[string]string{"IMPRINT_BOOT_MENU": "sometimes"}, wantErr: `IMPRINT_BOOT_MENU: boot-menu: "sometimes" is not true or false`},
	}
	checkServerConfig(t, tests, readFile)
}

// serverConfigCase is one row of a serverConfig table.
type serverConfigCase struct {
	name    string
	flags   serverFlags
	env     map[string]string
	want    server.Config
	wantErr string
}

// checkServerConfig runs serverConfig for each case against readFile.
func checkServerConfig(t *testing.T, tests []serverConfigCase, readFile func(string) ([]byte, error)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serverConfig(optString{}, tt.flags, func(k string) string { return tt.env[k] }, readFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// parseServerFlags parses args with the real `imprint server` flag set and
// returns the resulting configuration.
func parseServerFlags(t *testing.T, args []string) server.Config {
	t.Helper()
	a := &app{getenv: func(string) string { return "" }}
	fs, fl := serverFlagSet(a)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	cfg, err := serverConfig(optString{}, *fl, a.getenv, nil)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg
}

// TestServerBootMenuFlag checks --boot-menu works bare and with a value
// through the real flag parsing.
func TestServerBootMenuFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--boot-menu"}, true},
		{[]string{"--boot-menu=false"}, false},
		{[]string{"--boot-menu=true"}, true},
	} {
		cfg := parseServerFlags(t, tt.args)
		if cfg.BootMenu != tt.want {
			t.Errorf("%v: BootMenu = %v, want %v", tt.args, cfg.BootMenu, tt.want)
		}
	}
}
