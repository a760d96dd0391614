package pe_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imprint-osd/imprint/internal/pe"
)

const fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseCmdline(t *testing.T) {
	base := "imprint.server=https://imprint.example:7281 imprint.ca=" + fp
	cmpOpts := cmp.Options{cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})}
	tests := map[string]struct {
		cmdline string
		want    pe.Boot
		wantErr string
	}{
		"minimal": {
			cmdline: base,
			want:    pe.Boot{ServerURL: "https://imprint.example:7281", CASHA256: fp},
		},
		"iPXE line with kernel args": {
			cmdline: "BOOT_IMAGE=vmlinuz initrd=initrd.img console=ttyS0,115200 console=tty0 " + base +
				" imprint.mac=52-54-00-AB-CD-01 ip=dhcp imprint.debug=1 loglevel=7 imprint.trace=1\n",
			want: pe.Boot{ServerURL: "https://imprint.example:7281", CASHA256: fp,
				MAC: mustMAC(t, "52:54:00:ab:cd:01"), Debug: true, Unknown: []string{"imprint.trace"}},
		},
		"everything": {
			cmdline: base + ` imprint.ts=TS-42 imprint.debug imprint.var.OSDComputerName=PC01 imprint.var.Note="two  words" "imprint.var.Quoted=a b" imprint.var.Empty= imprint.var.OSDComputerName=PC02 imprint.ip=static:10.0.2.15/24,10.0.2.2,10.0.2.3`,
			want: pe.Boot{ServerURL: "https://imprint.example:7281", CASHA256: fp, TSID: "TS-42", Debug: true,
				Vars: map[string]string{"OSDComputerName": "PC02", "Note": "two  words", "Quoted": "a b", "Empty": ""},
				IP: pe.IPConfig{Static: true, Addr: netip.MustParsePrefix("10.0.2.15/24"),
					Gateway: netip.MustParseAddr("10.0.2.2"), DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}}},
		},
		"fingerprint with colons upper case": {
			cmdline: "imprint.server=https://h/ imprint.ca=" + strings.ToUpper(colons(fp)),
			want:    pe.Boot{ServerURL: "https://h", CASHA256: fp},
		},
		"debug off, dhcp": {
			cmdline: base + " imprint.debug=0 imprint.ip=dhcp",
			want:    pe.Boot{ServerURL: "https://imprint.example:7281", CASHA256: fp},
		},
		"static without gateway": {
			cmdline: base + " imprint.ip=static:192.168.1.9/16",
			want: pe.Boot{ServerURL: "https://imprint.example:7281", CASHA256: fp,
				IP: pe.IPConfig{Static: true, Addr: netip.MustParsePrefix("192.168.1.9/16")}},
		},
		"no server":            {cmdline: "imprint.ca=" + fp, wantErr: "no server"},
		"empty":                {cmdline: "", wantErr: "no server"},
		"no ca":                {cmdline: "imprint.server=https://h", wantErr: "no CA fingerprint"},
		"http server":          {cmdline: "imprint.server=http://h imprint.ca=" + fp, wantErr: "must start with https://"},
		"server without host":  {cmdline: "imprint.server=https:// imprint.ca=" + fp, wantErr: "has no host"},
		"server without value": {cmdline: "imprint.server imprint.ca=" + fp, wantErr: "imprint.server needs a value"},
		"short fingerprint":    {cmdline: "imprint.server=https://h imprint.ca=abcd", wantErr: `CA fingerprint "abcd" is not a SHA-256`},
		"non-hex fingerprint":  {cmdline: "imprint.server=https://h imprint.ca=" + strings.Repeat("z", 64), wantErr: "not a SHA-256"},
		"bad mac":              {cmdline: base + " imprint.mac=52-54-00", wantErr: `imprint.mac "52-54-00" is not an Ethernet address`},
		"bad debug":            {cmdline: base + " imprint.debug=maybe", wantErr: "imprint.debug"},
		"var without name":     {cmdline: base + " imprint.var.=x", wantErr: "needs a name"},
		"var without value":    {cmdline: base + " imprint.var.X", wantErr: "imprint.var.X needs =VALUE"},
		"bad ip mode":          {cmdline: base + " imprint.ip=bootp", wantErr: "want dhcp or static"},
		"bad static addr":      {cmdline: base + " imprint.ip=static:10.0.2.15", wantErr: `address "10.0.2.15" is not an IPv4 ADDR/PREFIX`},
		"bad gateway":          {cmdline: base + " imprint.ip=static:10.0.2.15/24,gw", wantErr: `gateway "gw"`},
		"bad dns":              {cmdline: base + " imprint.ip=static:10.0.2.15/24,,x", wantErr: `name server "x"`},
		"prefix 32":            {cmdline: base + " imprint.ip=static:10.0.2.15/32", wantErr: "prefix length 32"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := pe.ParseCmdline(tt.cmdline)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("Boot (-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadBootJSON(t *testing.T) {
	js := []byte(`{"serverURL":"https://iso.example:7281","caSHA256":"` + strings.ToUpper(fp) + `","other":1}`)
	other := strings.Repeat("ab", 32)
	tests := map[string]struct {
		cmdline string
		json    []byte
		want    pe.Boot
		wantErr string
	}{
		"from json":           {cmdline: "console=ttyS0", json: js, want: pe.Boot{ServerURL: "https://iso.example:7281", CASHA256: fp}},
		"cmdline wins":        {cmdline: "imprint.server=https://cmd.example imprint.ca=" + other, json: js, want: pe.Boot{ServerURL: "https://cmd.example", CASHA256: other}},
		"mixed":               {cmdline: "imprint.ca=" + other, json: js, want: pe.Boot{ServerURL: "https://iso.example:7281", CASHA256: other}},
		"json not needed bad": {cmdline: "imprint.server=https://cmd.example imprint.ca=" + other, json: []byte("{"), want: pe.Boot{ServerURL: "https://cmd.example", CASHA256: other}},
		"bad json":            {cmdline: "", json: []byte("{"), wantErr: "boot.json"},
		"bad json url":        {json: []byte(`{"serverURL":"ftp://x","caSHA256":"` + fp + `"}`), wantErr: "boot.json serverURL"},
		"bad json ca":         {json: []byte(`{"serverURL":"https://x","caSHA256":"12"}`), wantErr: "boot.json caSHA256"},
		"json lacks ca":       {json: []byte(`{"serverURL":"https://x"}`), wantErr: "no CA fingerprint"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := pe.LoadBoot(tt.cmdline, tt.json)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); d != "" {
				t.Errorf("Boot (-want +got):\n%s", d)
			}
		})
	}
}

func TestIPConfigStringRoundTrip(t *testing.T) {
	for _, s := range []string{"dhcp", "static:10.0.2.15/24,10.0.2.2", "static:10.0.2.15/24,", "static:10.1.2.3/8,10.0.0.1,1.1.1.1,8.8.8.8"} {
		c, err := pe.ParseIPConfig(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := c.String(); got != s {
			t.Errorf("ParseIPConfig(%q).String() = %q", s, got)
		}
	}
}

func colons(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
