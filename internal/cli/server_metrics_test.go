package cli

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
)

// TestServerConfigMetricsListen covers --metrics-listen through every
// source (file < environment < flags); it is off unless one sets it.
func TestServerConfigMetricsListen(t *testing.T) {
	with := func(addr string) server.Config {
		c := server.DefaultConfig()
		c.MetricsListen = addr
		return c
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{"m.conf": "metrics-listen = 127.0.0.1:9101\n"}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	env := map[string]string{"IMPRINT_CONFIG": "m.conf", "IMPRINT_METRICS_LISTEN": "127.0.0.1:9102"}
	checkServerConfig(t, []serverConfigCase{
		{name: "off by default", want: with("")},
		{name: "file", flags: serverFlags{config: set("m.conf")}, want: with("127.0.0.1:9101")},
		{name: "environment beats file", env: env, want: with("127.0.0.1:9102")},
		{name: "flags beat environment", env: env, flags: serverFlags{metricsListen: set("[::1]:9103")}, want: with("[::1]:9103")},
	}, readFile)
	if cfg := parseServerFlags(t, []string{"--metrics-listen", "127.0.0.1:9104"}); cfg.MetricsListen != "127.0.0.1:9104" {
		t.Errorf("flag parsed to %q", cfg.MetricsListen)
	}
	bad := with("no-port")
	bad.DataDir = t.TempDir()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "metrics-listen") {
		t.Errorf("a metrics-listen address without a port: %v", err)
	}
}
