package pe

import (
	"context"
	"fmt"
	"github.com/imprint-osd/imprint/internal/atomicfile"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BringUp configures the network: it brings up lo, waits for the
// interface (by cfg.MAC, else the first Ethernet interface with a
// carrier), sets it up, gets an address with DHCP (retrying with backoff
// until cfg.DHCPTimeout) or applies the static one, adds the default route
// when there is a gateway, and writes the name servers to cfg.ResolvConf.
// Progress goes to log.
//
// Every namespace-sensitive system call (netlink, the DHCP raw socket) is
// made on the calling goroutine, so a caller that has locked its thread
// into a network namespace configures that namespace.
func BringUp(ctx context.Context, cfg NetConfig, log io.Writer) (*Lease, error) {
	cfg.defaults()
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}
	link, err := waitLink(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	var lease Lease
	if cfg.IP.Static {
		lease = StaticLease(link.Attrs().Name, link.Attrs().HardwareAddr, cfg.IP)
	} else {
		if lease, err = runDHCP(ctx, link, cfg.DHCPTimeout, log); err != nil {
			return nil, err
		}
	}
	if err := applyLease(link, lease); err != nil {
		return nil, err
	}
	if len(lease.DNS) > 0 {
		if err := writeFileAtomic(cfg.ResolvConf, []byte(RenderResolvConf(lease))); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	fmt.Fprintf(log, "network: %s\n", lease)
	return &lease, nil
}

// waitLink polls the kernel's interfaces until SelectInterface accepts
// one, setting candidate interfaces up on the way (a carrier is only
// reported for an interface that is up).
func waitLink(ctx context.Context, cfg NetConfig, log io.Writer) (netlink.Link, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.LinkTimeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastMsg string
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("network: list interfaces: %w", err)
		}
		infos := make([]LinkInfo, 0, len(links))
		byIndex := map[int]netlink.Link{}
		for _, l := range links {
			a := l.Attrs()
			info := LinkInfo{
				Index:    a.Index,
				Name:     a.Name,
				MAC:      a.HardwareAddr,
				Loopback: a.Flags&net.FlagLoopback != 0,
				Ethernet: a.EncapType == "ether" && len(a.HardwareAddr) == 6,
				Carrier:  a.RawFlags&unix.IFF_LOWER_UP != 0,
			}
			candidate := info.Ethernet && !info.Loopback &&
				(cfg.MAC == nil || strings.EqualFold(a.HardwareAddr.String(), cfg.MAC.String()))
			if candidate && a.Flags&net.FlagUp == 0 {
				if err := netlink.LinkSetUp(l); err != nil {
					fmt.Fprintf(log, "network: set %s up: %v\n", a.Name, err)
				}
			}
			infos = append(infos, info)
			byIndex[a.Index] = l
		}
		chosen, err := SelectInterface(infos, cfg.MAC)
		if err == nil {
			return byIndex[chosen.Index], nil
		}
		if msg := err.Error(); msg != lastMsg {
			fmt.Fprintf(log, "network: waiting: %s\n", msg)
			lastMsg = msg
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("network: after %s: %w", cfg.LinkTimeout, err)
		case <-tick.C:
		}
	}
}

// runDHCP gets a lease, retrying with backoff until timeout.
func runDHCP(ctx context.Context, link netlink.Link, timeout time.Duration, log io.Writer) (Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name, mac := link.Attrs().Name, link.Attrs().HardwareAddr
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		lease, err := dhcpOnce(ctx, name, mac)
		if err == nil {
			return lease, nil
		}
		fmt.Fprintf(log, "network: DHCP on %s, attempt %d: %v\n", name, attempt, err)
		select {
		case <-ctx.Done():
			hint := ""
			if strings.Contains(err.Error(), "random") {
				hint = " (the kernel has no entropy yet; under QEMU use -cpu max or a virtio-rng device)"
			}
			return Lease{}, fmt.Errorf("network: no DHCP lease on %s within %s: %w%s", name, timeout, err, hint)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 8*time.Second)
	}
}

func dhcpOnce(ctx context.Context, name string, mac net.HardwareAddr) (Lease, error) {
	c, err := nclient4.New(name, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(2))
	if err != nil {
		return Lease{}, err
	}
	defer c.Close()
	l, err := c.Request(ctx, dhcpv4.WithRequestedOptions(dhcpv4.OptionDNSDomainSearchList))
	if err != nil {
		return Lease{}, err
	}
	return LeaseFromACK(name, mac, l.ACK)
}

// applyLease sets the address and the default route.
func applyLease(link netlink.Link, l Lease) error {
	ipnet := &net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), 32)}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("network: add %s to %s: %w", l.Addr, l.Interface, err)
	}
	if !l.Gateway.IsValid() {
		return nil
	}
	gw := net.IP(l.Gateway.AsSlice())
	if !l.Addr.Masked().Contains(l.Gateway) {
		// A gateway outside the subnet needs a route to itself first.
		host := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}}
		if err := netlink.RouteReplace(host); err != nil {
			return fmt.Errorf("network: route to gateway %s: %w", l.Gateway, err)
		}
	}
	def := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw,
		Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}
	if err := netlink.RouteReplace(def); err != nil {
		return fmt.Errorf("network: default route via %s: %w", l.Gateway, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o644)
}
