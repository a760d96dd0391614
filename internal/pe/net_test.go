package pe_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/imprint-osd/imprint/internal/pe"
)

func TestSelectInterface(t *testing.T) {
	mac := func(s string) net.HardwareAddr { return mustMAC(t, s) }
	lo := pe.LinkInfo{Index: 1, Name: "lo", MAC: mac("00:00:00:00:00:00"), Loopback: true, Ethernet: true, Carrier: true}
	sit := pe.LinkInfo{Index: 2, Name: "sit0", Carrier: true}
	eth0 := pe.LinkInfo{Index: 3, Name: "eth0", MAC: mac("52:54:00:00:00:01"), Ethernet: true}
	eth1 := pe.LinkInfo{Index: 4, Name: "eth1", MAC: mac("52:54:00:00:00:02"), Ethernet: true, Carrier: true}
	eth2 := pe.LinkInfo{Index: 5, Name: "eth2", MAC: mac("52:54:00:00:00:03"), Ethernet: true, Carrier: true}
	tests := map[string]struct {
		links   []pe.LinkInfo
		mac     net.HardwareAddr
		want    string
		wantErr string
	}{
		"first with carrier":      {links: []pe.LinkInfo{lo, sit, eth0, eth1, eth2}, want: "eth1"},
		"by MAC, any case":        {links: []pe.LinkInfo{lo, eth0, eth1, eth2}, mac: mac("52-54-00-00-00-03"), want: "eth2"},
		"by MAC without carrier":  {links: []pe.LinkInfo{lo, eth0, eth1}, mac: mac("52:54:00:00:00:01"), wantErr: "eth0 (52:54:00:00:00:01) has no carrier"},
		"MAC not there":           {links: []pe.LinkInfo{lo, eth1}, mac: mac("52:54:00:00:00:09"), wantErr: "no interface has the boot MAC 52:54:00:00:00:09 (have: eth1 52:54:00:00:00:02 carrier)"},
		"none yet":                {links: []pe.LinkInfo{lo, sit}, wantErr: "no Ethernet interface has a carrier (have: none)"},
		"no carrier anywhere":     {links: []pe.LinkInfo{lo, eth0}, wantErr: "(have: eth0 52:54:00:00:00:01 no carrier)"},
		"loopback never selected": {links: []pe.LinkInfo{lo}, mac: mac("00:00:00:00:00:00"), wantErr: "no interface has the boot MAC"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := pe.SelectInterface(tt.links, tt.mac)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want {
				t.Errorf("selected %s, want %s", got.Name, tt.want)
			}
		})
	}
}

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire format, as nclient4 would hand it over.
	m, err = dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLeaseFromACK(t *testing.T) {
	mac := mustMAC(t, "52:54:00:12:34:56")
	a := netip.MustParseAddr
	ip := func(s string) net.IP { return net.ParseIP(s).To4() }
	tests := map[string]struct {
		ack     *dhcpv4.DHCPv4
		want    pe.Lease
		wantErr string
	}{
		"full": {
			ack: ack(t, dhcpv4.WithYourIP(ip("10.0.2.15")), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
				dhcpv4.WithRouter(ip("0.0.0.0"), ip("10.0.2.2")), dhcpv4.WithDNS(ip("10.0.2.3"), ip("1.1.1.1")),
				dhcpv4.WithServerIP(ip("10.0.2.2")), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.0.2.2"))),
				dhcpv4.WithLeaseTime(86400), dhcpv4.WithDomainSearchList("lab.test", "example.org"),
				dhcpv4.WithOption(dhcpv4.OptDomainName("ignored.test"))),
			want: pe.Lease{Interface: "eth0", MAC: mac, Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: a("10.0.2.2"),
				DNS: []netip.Addr{a("10.0.2.3"), a("1.1.1.1")}, Search: []string{"lab.test", "example.org"},
				ServerID: a("10.0.2.2"), Duration: 24 * time.Hour},
		},
		"restricted slirp: no router, domain name only": {
			ack: ack(t, dhcpv4.WithYourIP(ip("10.0.2.15")), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
				dhcpv4.WithOption(dhcpv4.OptDomainName("site.test"))),
			want: pe.Lease{Interface: "eth0", MAC: mac, Addr: netip.MustParsePrefix("10.0.2.15/24"), Search: []string{"site.test"}},
		},
		"no mask: classful": {
			ack:  ack(t, dhcpv4.WithYourIP(ip("10.1.2.3"))),
			want: pe.Lease{Interface: "eth0", MAC: mac, Addr: netip.MustParsePrefix("10.1.2.3/8")},
		},
		"no address": {ack: ack(t, dhcpv4.WithNetmask(net.CIDRMask(24, 32))), wantErr: "gives no address"},
		"zero mask":  {ack: ack(t, dhcpv4.WithYourIP(ip("10.0.2.15")), dhcpv4.WithNetmask(net.CIDRMask(0, 32))), wantErr: "invalid subnet mask"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := pe.LeaseFromACK("eth0", mac, tt.ack)
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
				t.Errorf("lease (-want +got):\n%s", d)
			}
		})
	}
}

func TestRenderResolvConf(t *testing.T) {
	a := netip.MustParseAddr
	got := pe.RenderResolvConf(pe.Lease{DNS: []netip.Addr{a("10.0.2.3"), a("1.1.1.1")}, Search: []string{"lab.test", "example.org"}})
	want := "# written by imprint-agent from the DHCP lease\nsearch lab.test example.org\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resolv.conf (-want +got):\n%s", d)
	}
	got = pe.RenderResolvConf(pe.StaticLease("eth0", nil, pe.IPConfig{Static: true, DNS: []netip.Addr{a("9.9.9.9")}}))
	want = "# written by imprint-agent from the static configuration\nnameserver 9.9.9.9\n"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("static resolv.conf (-want +got):\n%s", d)
	}
}

func TestLeaseString(t *testing.T) {
	l := pe.Lease{Interface: "eth0", MAC: mustMAC(t, "52:54:00:12:34:56"), Addr: netip.MustParsePrefix("10.0.2.15/24"),
		ServerID: netip.MustParseAddr("10.0.2.2"), Duration: time.Hour}
	if got, want := l.String(), "eth0 (52:54:00:12:34:56) 10.0.2.15/24 no gateway from 10.0.2.2 for 1h0m0s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
