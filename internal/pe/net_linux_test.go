package pe_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/pe"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// lan is a veth pair between two network namespaces made for one test:
// srv (10.213.0.1/24 on "vs", up) and cli ("vc", down, for BringUp).
type lan struct {
	srv, cli string
	cliMAC   net.HardwareAddr
}

func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLAN(t *testing.T) lan {
	t.Helper()
	testenv.Root(t, "to create network namespaces")
	testenv.LookPath(t, "ip")
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	l := lan{srv: "pe-srv-" + id, cli: "pe-cli-" + id}
	if out, err := exec.Command("ip", "netns", "add", l.srv).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot create a network namespace here (needs a kernel with network namespaces): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.srv).Run() })
	ipCmd(t, "netns", "add", l.cli)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.cli).Run() })
	ipCmd(t, "-n", l.srv, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", l.cli)
	ipCmd(t, "-n", l.srv, "addr", "add", "10.213.0.1/24", "dev", "vs")
	ipCmd(t, "-n", l.srv, "link", "set", "vs", "up")
	ipCmd(t, "-n", l.srv, "link", "set", "lo", "up")
	var err error
	link := ipCmd(t, "-n", l.cli, "-o", "link", "show", "vc")
	f := strings.Fields(link[strings.Index(link, "link/ether"):])
	if l.cliMAC, err = net.ParseMAC(f[1]); err != nil {
		t.Fatal(err)
	}
	return l
}

// inNetns runs fn on an OS thread that has joined the named network
// namespace. The thread is discarded afterwards (never unlocked), so no
// other goroutine runs in that namespace by accident.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", name))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// startDHCPServer answers DISCOVER and REQUEST on vs in the server
// namespace with a fixed lease, and counts the ACKs it sent.
func startDHCPServer(t *testing.T, l lan, withRouter bool) *atomic.Int32 {
	t.Helper()
	acks := new(atomic.Int32)
	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		var typ dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		srvIP := net.IPv4(10, 213, 0, 1).To4()
		mods := []dhcpv4.Modifier{
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.IPv4(10, 213, 0, 50)),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithDNS(srvIP),
			dhcpv4.WithServerIP(srvIP),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvIP)),
			dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithDomainSearchList("lab.test"),
		}
		if withRouter {
			mods = append(mods, dhcpv4.WithRouter(srvIP))
		}
		resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
		if err != nil {
			t.Errorf("dhcp reply: %v", err)
			return
		}
		if _, err := conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}); err != nil {
			t.Errorf("dhcp send: %v", err)
			return
		}
		if typ == dhcpv4.MessageTypeAck {
			acks.Add(1)
		}
	}
	var srv *server4.Server
	var err error
	inNetns(t, l.srv, func() {
		srv, err = server4.NewServer("vs", &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	})
	if err != nil {
		t.Fatalf("dhcp server: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve() }()
	t.Cleanup(func() { srv.Close(); <-done })
	return acks
}

func bringUpIn(t *testing.T, ns string, cfg pe.NetConfig) (*pe.Lease, string, error) {
	t.Helper()
	var lease *pe.Lease
	var err error
	var log bytes.Buffer
	inNetns(t, ns, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		lease, err = pe.BringUp(ctx, cfg, &log)
	})
	return lease, log.String(), err
}

func TestBringUpDHCPInNetns(t *testing.T) {
	l := newLAN(t)
	acks := startDHCPServer(t, l, true)
	resolv := filepath.Join(t.TempDir(), "etc", "resolv.conf")

	lease, log, err := bringUpIn(t, l.cli, pe.NetConfig{ResolvConf: resolv, LinkTimeout: 20 * time.Second, DHCPTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("BringUp: %v\nlog:\n%s", err, log)
	}
	if got, want := lease.String(), "vc ("+l.cliMAC.String()+") 10.213.0.50/24 gw 10.213.0.1 dns 10.213.0.1 from 10.213.0.1 for 1h0m0s"; got != want {
		t.Errorf("lease = %q, want %q", got, want)
	}
	if acks.Load() == 0 {
		t.Error("the DHCP server sent no ACK")
	}
	// What the kernel in the client namespace now has.
	if addr := ipCmd(t, "-n", l.cli, "-4", "-o", "addr", "show", "dev", "vc"); !strings.Contains(addr, "inet 10.213.0.50/24") {
		t.Errorf("vc addresses: %s", addr)
	}
	if routes := ipCmd(t, "-n", l.cli, "-4", "route"); !strings.Contains(routes, "default via 10.213.0.1 dev vc") {
		t.Errorf("routes: %s", routes)
	}
	if lo := ipCmd(t, "-n", l.cli, "-o", "link", "show", "lo"); !strings.Contains(lo, "UP") {
		t.Errorf("lo not up: %s", lo)
	}
	b, err := os.ReadFile(resolv)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# written by imprint-agent from the DHCP lease\nsearch lab.test\nnameserver 10.213.0.1\n"; string(b) != want {
		t.Errorf("resolv.conf = %q, want %q", b, want)
	}
}

func TestBringUpStaticByMACInNetns(t *testing.T) {
	l := newLAN(t)
	cfg := pe.NetConfig{
		MAC:         l.cliMAC,
		IP:          pe.IPConfig{Static: true, Addr: mustPrefix(t, "10.213.0.60/24"), Gateway: mustAddr(t, "10.213.0.1")},
		ResolvConf:  filepath.Join(t.TempDir(), "resolv.conf"),
		LinkTimeout: 20 * time.Second,
	}
	lease, log, err := bringUpIn(t, l.cli, cfg)
	if err != nil {
		t.Fatalf("BringUp: %v\nlog:\n%s", err, log)
	}
	if !lease.Static || lease.Interface != "vc" {
		t.Errorf("lease = %s", lease)
	}
	if addr := ipCmd(t, "-n", l.cli, "-4", "-o", "addr", "show", "dev", "vc"); !strings.Contains(addr, "inet 10.213.0.60/24") {
		t.Errorf("vc addresses: %s", addr)
	}
	if routes := ipCmd(t, "-n", l.cli, "-4", "route"); !strings.Contains(routes, "default via 10.213.0.1 dev vc") {
		t.Errorf("routes: %s", routes)
	}
	if _, err := os.Stat(cfg.ResolvConf); !os.IsNotExist(err) {
		t.Errorf("resolv.conf written without name servers: %v", err)
	}
}

func TestBringUpUnknownMACInNetns(t *testing.T) {
	l := newLAN(t)
	cfg := pe.NetConfig{MAC: mustMAC(t, "02:00:00:00:00:99"), LinkTimeout: 500 * time.Millisecond}
	_, log, err := bringUpIn(t, l.cli, cfg)
	if err == nil || !strings.Contains(err.Error(), "no interface has the boot MAC 02:00:00:00:00:99") || !strings.Contains(err.Error(), "vc "+l.cliMAC.String()) {
		t.Fatalf("err = %v, want one naming the missing MAC and the interfaces seen", err)
	}
	if !strings.Contains(log, "network: waiting:") {
		t.Errorf("no progress in the log:\n%s", log)
	}
}

func TestBringUpNoDHCPServerInNetns(t *testing.T) {
	l := newLAN(t)
	cfg := pe.NetConfig{LinkTimeout: 20 * time.Second, DHCPTimeout: 2 * time.Second}
	_, log, err := bringUpIn(t, l.cli, cfg)
	if err == nil || !strings.Contains(err.Error(), "no DHCP lease on vc within 2s") {
		t.Fatalf("err = %v, want a DHCP timeout naming the interface", err)
	}
	if !strings.Contains(log, "DHCP on vc, attempt 1:") {
		t.Errorf("no attempt in the log:\n%s", log)
	}
}

func TestBringUpDHCPNoRouterInNetns(t *testing.T) {
	l := newLAN(t)
	startDHCPServer(t, l, false)
	lease, log, err := bringUpIn(t, l.cli, pe.NetConfig{ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"), DHCPTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("BringUp: %v\nlog:\n%s", err, log)
	}
	if lease.Gateway.IsValid() {
		t.Errorf("gateway %s from a lease without a router", lease.Gateway)
	}
	if routes := ipCmd(t, "-n", l.cli, "-4", "route"); strings.Contains(routes, "default") {
		t.Errorf("default route without a router: %s", routes)
	}
}
