package cli

import (
	"io/fs"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
)

// TestServerConfigPXE covers --pxe, --pxe-interface and --pxe-address
// through every source: file < environment < flags.
func TestServerConfigPXE(t *testing.T) {
	with := func(on bool, iface, addr string) server.Config {
		c := server.DefaultConfig()
		c.PXE, c.PXEInterface, c.PXEServerIP = on, iface, addr
		return c
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{
		"pxe.conf":     "pxe = yes\npxe-interface = eth1\npxe-address = 10.0.0.5\n",
		"pxe.json":     `{"pxe":"true","pxe-interface":"br0"}`,
		"no-pxe.conf":  "pxe-interface = eth1\n",
		"bad-pxe.conf": "pxe = perhaps\n",
	}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	env := map[string]string{"IMPRINT_CONFIG": "pxe.conf", "IMPRINT_PXE": "1",
		"IMPRINT_PXE_INTERFACE": "env0", "IMPRINT_PXE_ADDRESS": "10.9.9.9"}
	tests := []serverConfigCase{
		{name: "default off", want: with(false, "", "")},
		{name: "file", flags: serverFlags{config: set("pxe.conf")}, want: with(true, "eth1", "10.0.0.5")},
		{name: "JSON file", flags: serverFlags{config: set("pxe.json")}, want: with(true, "br0", "")},
		{name: "environment beats file", env: env, want: with(true, "env0", "10.9.9.9")},
		{name: "flags beat environment", env: env,
			flags: serverFlags{pxeInterface: set("flag0"), pxeAddress: set("192.168.1.2")},
			want:  with(true, "flag0", "192.168.1.2")},
		{name: "flag turns it off", env: env,
			flags:   serverFlags{pxe: set("false")},
			wantErr: "pxe-interface: set without pxe"},
		{name: "interface without pxe", flags: serverFlags{config: set("no-pxe.conf")}, wantErr: "config: pxe-interface: set without pxe (add --pxe)"},
		{name: "address without pxe", flags: serverFlags{pxeAddress: set("10.0.0.1")}, wantErr: "config: pxe-address: set without pxe (add --pxe)"},
		{name: "bad pxe in file", flags: serverFlags{config: set("bad-pxe.conf")}, wantErr: `bad-pxe.conf:1: pxe: "perhaps" is not true or false`},
		{name: "bad pxe in env", env: map[string]string{"IMPRINT_PXE": "maybe"}, wantErr: `IMPRINT_PXE: pxe: "maybe" is not true or false`},
		{name: "IPv6 address", flags: serverFlags{pxe: set("true"), pxeAddress: set("fe80::1")}, wantErr: `config: pxe-address: "fe80::1" is not an IPv4 address`},
		{name: "hostname as address", flags: serverFlags{pxe: set("true"), pxeAddress: set("imprint.lan")}, wantErr: `config: pxe-address: "imprint.lan" is not an IPv4 address`},
		{name: "bad interface name", flags: serverFlags{pxe: set("true"), pxeInterface: set("../eth0")}, wantErr: `config: pxe-interface: "../eth0" is not a network interface name`},
	}
	checkServerConfig(t, tests, readFile)
}

// TestServerPXEFlag checks --pxe works bare and with a value through the
// real flag parsing.
func TestServerPXEFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--pxe"}, true},
		{[]string{"--pxe=false"}, false},
		{[]string{"--pxe=true", "--pxe-interface", "eth0"}, true},
	} {
		cfg := parseServerFlags(t, tt.args)
		if cfg.PXE != tt.want {
			t.Errorf("%v: PXE = %v, want %v", tt.args, cfg.PXE, tt.want)
		}
	}
}
