//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// The bridged LAN of feasibility §6: the server's namespace and a
// namespace running dnsmasq as the site's DHCP server hang off bridge br0
// in a third namespace, which also holds the tap QEMU's NIC uses. Nothing
// connects to the host's network.
const (
	lanServerIP = "10.77.0.3" // the server's namespace
	lanDHCPIP   = "10.77.0.2" // dnsmasq's namespace
	lanRelayIP  = "10.77.0.4" // a branch relay's namespace (envOptions.Relay)
	lanTap      = "tap0"      // in LAN.NS
)

// LAN is one test's bridged LAN.
type LAN struct {
	NS     string // bridge br0 and the tap; QEMU runs here
	DHCPNS string // dnsmasq, the site's DHCP server
	// DHCPLog is dnsmasq's output (--log-dhcp).
	DHCPLog string
}

// newLAN builds the LAN around serverNS (which gets eth0 with
// lanServerIP) and starts dnsmasq, unchanged site DHCP with no PXE
// options; t.Cleanup removes it all.
func newLAN(t *testing.T, dir, serverNS string, nextServer bool) *LAN {
	t.Helper()
	testenv.LookPath(t, "dnsmasq")
	ctx := context.Background()
	l := &LAN{NS: serverNS + "-lan", DHCPNS: serverNS + "-dhcp", DHCPLog: filepath.Join(dir, "dnsmasq.log")}
	ip := func(args ...string) {
		t.Helper()
		if _, err := run(ctx, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{l.NS, l.DHCPNS} {
		ip("netns", "add", ns)
		t.Cleanup(func() {
			if _, err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		ip("-n", ns, "link", "set", "lo", "up")
	}
	// forward_delay 0: the bridge forwards at once, not after 15 s of
	// listening, which the firmware's first DISCOVER would not survive.
	ip("-n", l.NS, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
	ip("-n", l.NS, "link", "set", "br0", "up")
	ip("-n", l.NS, "tuntap", "add", "dev", lanTap, "mode", "tap")
	ip("-n", l.NS, "link", "set", lanTap, "master", "br0", "up")
	l.addLANHost(t, l.DHCPNS, "lan-dhcp", lanDHCPIP)
	l.addLANHost(t, serverNS, "lan-imprint", lanServerIP)
	l.startDNSMasq(t, dir, nextServer)
	return l
}

// startDNSMasq runs the site's DHCP server: addresses only, no boot
// options (--conf-file=/dev/null keeps the host's configuration out).
// dnsmasq names itself as the next server (siaddr); with nextServer it
// names Imprint instead, and still no boot file.
func (l *LAN) startDNSMasq(t *testing.T, dir string, nextServer bool) {
	t.Helper()
	logf, err := os.Create(l.DHCPLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.DHCPNS, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--user=root", "--interface=eth0", "--bind-interfaces", "--log-dhcp",
		"--dhcp-range=10.77.0.50,10.77.0.150,1h",
		"--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	if nextServer {
		cmd.Args = append(cmd.Args, "--dhcp-boot=,,"+lanServerIP) // no file, no server name, siaddr
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(l.DHCPLog)
			t.Logf("dnsmasq log (%s):\n%s", l.DHCPLog, b)
		}
	})
	// dnsmasq binds at once or exits; give it a moment to do either.
	select {
	case <-exited:
		b, _ := os.ReadFile(l.DHCPLog)
		t.Fatalf("dnsmasq exited during start:\n%s", b)
	case <-time.After(300 * time.Millisecond):
	}
}

// lanServerArgs are the flags of `imprint server` on the LAN: listening on
// the LAN address, with the built-in proxyDHCP and TFTP — unless a branch
// relay on the LAN answers PXE instead (relayed), whose forwarded calls
// the server then trusts to name the machine's address.
func lanServerArgs(relayed bool) []string {
	args := []string{
		"--listen", fmt.Sprintf("%s:%d", lanServerIP, apiPort),
		"--boot-listen", fmt.Sprintf("%s:%d", lanServerIP, bootPort),
		"--cert-host", lanServerIP,
		"--public-url", fmt.Sprintf("https://%s:%d", lanServerIP, apiPort),
		"--boot-url", fmt.Sprintf("http://%s:%d", lanServerIP, bootPort),
	}
	if relayed {
		return append(args, "--trusted-proxy", lanRelayIP+"/32")
	}
	return append(args, "--pxe", "--pxe-address", lanServerIP, "--pxe-interface", "eth0")
}

// addLANHost puts namespace ns on the LAN's bridge as eth0 with addr/24.
func (l *LAN) addLANHost(t *testing.T, ns, link, addr string) {
	t.Helper()
	ctx := context.Background()
	for _, args := range [][]string{
		{"-n", l.NS, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", l.NS, "link", "set", link, "master", "br0", "up"},
		// brd +: as DHCP would; udpcast (TestMulticastLAN) rendezvouses on
		// the broadcast address, which ip leaves at 0.0.0.0 unless asked.
		{"-n", ns, "addr", "add", addr + "/24", "brd", "+", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
}
