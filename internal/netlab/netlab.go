// Package netlab builds a bridged LAN of Linux network namespaces for
// tests: hosts that each have eth0 on one bridge, and nothing connected to
// the machine's own network. It needs root and iproute2; under
// IMPRINT_TEST_REQUIRE a missing prerequisite fails the test
// (internal/testenv).
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// Host is one namespace on the LAN.
type Host struct {
	NS string // network namespace name
	IP string // eth0's IPv4 address (/24)
}

// LAN is a bridge and its hosts.
type LAN struct {
	ns    string // holds bridge br0
	Hosts []Host
}

// New builds a LAN of n hosts with addresses 10.78.0.10, .11, …;
// t.Cleanup removes every namespace.
func New(t testing.TB, n int) *LAN {
	t.Helper()
	testenv.Root(t, "to make network namespaces")
	testenv.LookPath(t, "ip")
	b := make([]byte, 3)
	rand.Read(b)
	id := "nl" + hex.EncodeToString(b)
	l := &LAN{ns: id + "-br"}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	addNS := func(ns string) {
		run("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run("-n", ns, "link", "set", "lo", "up")
	}
	addNS(l.ns)
	run("-n", l.ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "mcast_snooping", "0")
	run("-n", l.ns, "link", "set", "br0", "up")
	for i := range n {
		h := Host{NS: fmt.Sprintf("%s-h%d", id, i), IP: fmt.Sprintf("10.78.0.%d", 10+i)}
		addNS(h.NS)
		port := fmt.Sprintf("p%d", i)
		run("-n", l.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		run("-n", l.ns, "link", "set", port, "master", "br0", "up")
		// brd +: udpcast sends its rendezvous to the broadcast address, which
		// ip leaves at 0.0.0.0 unless asked (DHCP clients set it).
		run("-n", h.NS, "addr", "add", h.IP+"/24", "brd", "+", "dev", "eth0")
		run("-n", h.NS, "link", "set", "eth0", "up")
		// Multicast leaves by eth0, the only way out.
		run("-n", h.NS, "route", "add", "224.0.0.0/4", "dev", "eth0")
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

// Command runs name in the host's namespace.
func (h Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// TxBytes returns the bytes eth0 has sent.
func (h Host) TxBytes(t testing.TB) int64 {
	t.Helper()
	return h.counter(t, "tx_bytes")
}

// RxBytes returns the bytes eth0 has received.
func (h Host) RxBytes(t testing.TB) int64 {
	t.Helper()
	return h.counter(t, "rx_bytes")
}

func (h Host) counter(t testing.TB, name string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", h.NS, "cat", "/sys/class/net/eth0/statistics/"+name).Output()
	if err != nil {
		t.Fatalf("read %s of %s: %v", name, h.NS, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("read %s of %s: %v", name, h.NS, err)
	}
	return n
}

// Self is the path of the running test binary, for re-running it inside a
// host's namespace.
func Self(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
