package pe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// NetConfig says how BringUp configures the network.
type NetConfig struct {
	// MAC selects the interface with this address (imprint.mac); nil
	// selects the first Ethernet interface with a carrier.
	MAC net.HardwareAddr
	// IP is DHCP (the zero value) or a static address (imprint.ip).
	IP IPConfig
	// LinkTimeout bounds the wait for the interface to appear (drivers
	// load asynchronously) and report a carrier (e1000 takes seconds).
	// Zero means 30 s.
	LinkTimeout time.Duration
	// DHCPTimeout bounds DHCP, all retries included. Zero means 60 s.
	DHCPTimeout time.Duration
	// ResolvConf is the file the name servers are written to; empty
	// means /etc/resolv.conf.
	ResolvConf string
}

// Lease is the configuration BringUp applied.
type Lease struct {
	Interface string
	MAC       net.HardwareAddr
	// Addr is the address with its prefix length.
	Addr netip.Prefix
	// Gateway is the default router; invalid when there is none (for
	// example QEMU user networking with restrict=on).
	Gateway netip.Addr
	DNS     []netip.Addr
	Search  []string
	// ServerID is the DHCP server that gave the lease; invalid for a
	// static configuration.
	ServerID netip.Addr
	// Duration is the lease time; zero for a static configuration.
	Duration time.Duration
	Static   bool
}

// String is a one-line summary for the console and the log.
func (l Lease) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s (%s) %s", l.Interface, l.MAC, l.Addr)
	if l.Gateway.IsValid() {
		fmt.Fprintf(&sb, " gw %s", l.Gateway)
	} else {
		sb.WriteString(" no gateway")
	}
	if len(l.DNS) > 0 {
		fmt.Fprintf(&sb, " dns %s", joinAddrs(l.DNS, ","))
	}
	if l.Static {
		sb.WriteString(" static")
	} else {
		fmt.Fprintf(&sb, " from %s for %s", l.ServerID, l.Duration)
	}
	return sb.String()
}

func joinAddrs(as []netip.Addr, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, sep)
}

// LinkInfo is what interface selection looks at.
type LinkInfo struct {
	Index    int
	Name     string
	MAC      net.HardwareAddr
	Loopback bool
	// Ethernet is true for interfaces with a 6-byte hardware address
	// (physical NICs, virtio, veth), false for tunnels and the like.
	Ethernet bool
	Carrier  bool
}

// errNoLink means "not yet": keep waiting for interfaces and carriers.
var errNoLink = errors.New("no usable network interface")

// SelectInterface picks the interface to configure from links (in kernel
// index order): the one whose MAC is mac when mac is given, else the first
// Ethernet interface with a carrier. The error says what is missing; it
// wraps a "not yet" condition that waiting may cure.
func SelectInterface(links []LinkInfo, mac net.HardwareAddr) (LinkInfo, error) {
	var seen []string
	for _, l := range links {
		if l.Loopback || !l.Ethernet {
			continue
		}
		state := "no carrier"
		if l.Carrier {
			state = "carrier"
		}
		seen = append(seen, fmt.Sprintf("%s %s %s", l.Name, l.MAC, state))
		if mac != nil {
			if strings.EqualFold(l.MAC.String(), mac.String()) {
				if !l.Carrier {
					return LinkInfo{}, fmt.Errorf("%w: %s (%s) has no carrier: is the cable in?", errNoLink, l.Name, mac)
				}
				return l, nil
			}
			continue
		}
		if l.Carrier {
			return l, nil
		}
	}
	have := "none"
	if len(seen) > 0 {
		have = strings.Join(seen, "; ")
	}
	if mac != nil {
		return LinkInfo{}, fmt.Errorf("%w: no interface has the boot MAC %s (have: %s); is its driver in the boot image's module list?", errNoLink, mac, have)
	}
	return LinkInfo{}, fmt.Errorf("%w: no Ethernet interface has a carrier (have: %s)", errNoLink, have)
}

// LeaseFromACK translates a DHCP ACK into a Lease for the interface.
func LeaseFromACK(iface string, mac net.HardwareAddr, ack *dhcpv4.DHCPv4) (Lease, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return Lease{}, fmt.Errorf("DHCP answer from %s gives no address", ack.ServerIPAddr)
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	bits, size := mask.Size()
	if size != 32 || bits == 0 {
		return Lease{}, fmt.Errorf("DHCP answer has an invalid subnet mask %s", net.IP(mask))
	}
	l := Lease{Interface: iface, MAC: mac, Addr: netip.PrefixFrom(ip, bits), Duration: ack.IPAddressLeaseTime(0)}
	for _, r := range ack.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && !a.IsUnspecified() {
			l.Gateway = a
			break
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && !a.IsUnspecified() {
			l.DNS = append(l.DNS, a)
		}
	}
	if ds := ack.DomainSearch(); ds != nil {
		l.Search = append(l.Search, ds.Labels...)
	}
	if dn := ack.DomainName(); dn != "" && len(l.Search) == 0 {
		l.Search = []string{dn}
	}
	if sid := ack.ServerIdentifier(); sid != nil {
		l.ServerID, _ = netip.AddrFromSlice(sid.To4())
	}
	return l, nil
}

// StaticLease is the Lease for a static IPConfig on an interface.
func StaticLease(iface string, mac net.HardwareAddr, c IPConfig) Lease {
	return Lease{Interface: iface, MAC: mac, Addr: c.Addr, Gateway: c.Gateway, DNS: c.DNS, Static: true}
}

// RenderResolvConf is the resolv.conf for a lease.
func RenderResolvConf(l Lease) string {
	var sb strings.Builder
	sb.WriteString("# written by imprint-agent from the " + map[bool]string{false: "DHCP lease", true: "static configuration"}[l.Static] + "\n")
	if len(l.Search) > 0 {
		sb.WriteString("search " + strings.Join(l.Search, " ") + "\n")
	}
	for _, d := range l.DNS {
		sb.WriteString("nameserver " + d.String() + "\n")
	}
	return sb.String()
}

func (c *NetConfig) defaults() {
	if c.LinkTimeout <= 0 {
		c.LinkTimeout = 30 * time.Second
	}
	if c.DHCPTimeout <= 0 {
		c.DHCPTimeout = 60 * time.Second
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
}
