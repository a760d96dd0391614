package cli

import (
	"io/fs"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
)

// TestServerConfigConnectionCaps covers --max-conns and
// --max-conns-per-addr through every source: file < environment < flags.
func TestServerConfigConnectionCaps(t *testing.T) {
	with := func(max, perAddr int) server.Config {
		c := server.DefaultConfig()
		c.Limits.MaxConns, c.Limits.MaxConnsPerAddr = max, perAddr
		return c
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{
		"caps.conf": "max-conns = 1000\nmax-conns-per-addr = 10\n",
		"caps.json": `{"max-conns":"2000"}`,
		"bad.conf":  "max-conns = lots\n",
	}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	env := map[string]string{"IMPRINT_CONFIG": "caps.conf", "IMPRINT_MAX_CONNS": "3000", "IMPRINT_MAX_CONNS_PER_ADDR": "30"}
	tests := []serverConfigCase{
		{name: "defaults", want: with(4096, 64)},
		{name: "file", flags: serverFlags{config: set("caps.conf")}, want: with(1000, 10)},
		{name: "JSON file", flags: serverFlags{config: set("caps.json")}, want: with(2000, 64)},
		{name: "environment beats file", env: env, want: with(3000, 30)},
		{name: "flags beat environment", env: env,
			flags: serverFlags{maxConns: set("500"), maxConnsPerAddr: set("5")}, want: with(500, 5)},
		{name: "not a number", flags: serverFlags{config: set("bad.conf")}, wantErr: `bad.conf:1: max-conns: "lots" is not a whole number`},
		{name: "zero", flags: serverFlags{maxConns: set("0")}, wantErr: "config: max-conns: 0 must be at least 1"},
		{name: "negative per address", env: map[string]string{"IMPRINT_MAX_CONNS_PER_ADDR": "-1"}, wantErr: "config: max-conns-per-addr: -1 must be at least 1"},
	}
	checkServerConfig(t, tests, readFile)
	if cfg := parseServerFlags(t, []string{"--max-conns", "123", "--max-conns-per-addr=7"}); cfg.Limits.MaxConns != 123 || cfg.Limits.MaxConnsPerAddr != 7 {
		t.Errorf("flags parsed to %+v", cfg.Limits)
	}
}
