package pxe_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/boot/pxe"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// The proxy runs in its own process under `ip netns exec`, because the
// TFTP server opens a new socket per transfer on whatever thread it is on;
// only a whole process is reliably inside a namespace. TestMain turns the
// test binary into that process when helperEnv is set.
const (
	helperEnv      = "IMPRINT_PXE_TEST_HELPER" // the iPXE directory
	helperPortEnv  = "IMPRINT_PXE_TEST_BOOT_PORT"
	helperIfaceEnv = "IMPRINT_PXE_TEST_IFACE"
	testBootPort   = 7282
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(runHelper(dir))
	}
	os.Exit(m.Run())
}

// runHelper runs a Service until SIGTERM, saying READY on stdout once its
// sockets are bound; its debug log goes to stderr.
func runHelper(dir string) int {
	port, _ := strconv.Atoi(os.Getenv(helperPortEnv))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := pxe.Listen(pxe.Config{Interface: os.Getenv(helperIfaceEnv), BootPort: port, IPXEDir: dir, Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("READY")
	if err := svc.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// pxeLAN is the bridged LAN of feasibility §6 made for one test: netns
// lan holds bridge br0; site (10.77.0.2, dnsmasq as the site's DHCP
// server), proxy (10.77.0.3, our Service) and client (no address) hang
// off it by veth.
type pxeLAN struct {
	lan, site, proxy, client string
	clientMAC                net.HardwareAddr
}

func newPXELAN(t *testing.T) pxeLAN {
	t.Helper()
	testenv.Root(t, "to create network namespaces")
	for _, cmd := range []string{"ip", "dnsmasq"} {
		testenv.LookPath(t, cmd)
	}
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1000000)
	l := pxeLAN{lan: "pxe-lan-" + id, site: "pxe-site-" + id, proxy: "pxe-proxy-" + id, client: "pxe-cli-" + id}
	if out, err := exec.Command("ip", "netns", "add", l.lan).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot create a network namespace here (needs a kernel with network namespaces): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.lan).Run() })
	for _, ns := range []string{l.site, l.proxy, l.client} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	ipCmd(t, "-n", l.lan, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
	ipCmd(t, "-n", l.lan, "link", "set", "br0", "up")
	for _, m := range []struct{ ns, name, addr string }{
		{l.site, "site", "10.77.0.2/24"}, {l.proxy, "proxy", "10.77.0.3/24"}, {l.client, "cli", ""},
	} {
		ipCmd(t, "-n", l.lan, "link", "add", "lan-"+m.name, "type", "veth", "peer", "name", "eth0", "netns", m.ns)
		ipCmd(t, "-n", l.lan, "link", "set", "lan-"+m.name, "master", "br0", "up")
		if m.addr != "" {
			ipCmd(t, "-n", m.ns, "addr", "add", m.addr, "dev", "eth0")
		}
		ipCmd(t, "-n", m.ns, "link", "set", "eth0", "up")
	}
	link := ipCmd(t, "-n", l.client, "-o", "link", "show", "eth0")
	f := strings.Fields(link[strings.Index(link, "link/ether"):])
	var err error
	if l.clientMAC, err = net.ParseMAC(f[1]); err != nil {
		t.Fatal(err)
	}
	return l
}

func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lockedBuffer collects a child's output for the test log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs a command in namespace ns until the test ends, and logs its
// output if the test failed.
func start(t *testing.T, ns, what string, stdout *os.File, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	out := &lockedBuffer{}
	cmd.Stderr, cmd.Env = out, append(os.Environ(), env...)
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = out
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", what, out.String())
		}
	})
}

// startProxy runs the Service in the proxy namespace and waits until its
// sockets are bound.
func startProxy(t *testing.T, l pxeLAN, ipxeDir string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	start(t, l.proxy, "proxy", w, []string{helperEnv + "=" + ipxeDir,
		helperPortEnv + "=" + strconv.Itoa(testBootPort), helperIfaceEnv + "=eth0"}, os.Args[0])
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if line != "READY\n" {
		t.Fatalf("proxy did not start: %q, %v", line, err)
	}
}

// inNetns runs fn on an OS thread that has joined the named network
// namespace. The thread is never unlocked, so Go discards it afterwards
// and no other goroutine runs in that namespace by accident.
func inNetns(t *testing.T, name string, fn func() error) {
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
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// offers is what a PXE client heard after its DISCOVER.
type offers struct {
	site, proxy *dhcpv4.DHCPv4
}

// discover broadcasts a PXE DISCOVER on eth0 (from the client namespace)
// until it has heard both the site server's address offer and a proxy
// offer from proxyIP, resending every second. The overall deadline is a
// safety net, not a measurement.
func discover(conn net.PacketConn, d *dhcpv4.DHCPv4, proxyIP net.IP) (offers, error) {
	var got offers
	buf := make([]byte, 4096)
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: pxe.PortDHCP}
	end := time.Now().Add(60 * time.Second)
	for time.Now().Before(end) {
		if _, err := conn.WriteTo(d.ToBytes(), bcast); err != nil {
			return got, fmt.Errorf("send DISCOVER: %w", err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return got, fmt.Errorf("receive: %w", err)
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || m.TransactionID != d.TransactionID || m.MessageType() != dhcpv4.MessageTypeOffer {
				continue
			}
			if m.ServerIdentifier().Equal(proxyIP) {
				got.proxy = m
			} else if !m.YourIPAddr.IsUnspecified() {
				got.site = m
			}
			if got.site != nil && got.proxy != nil {
				return got, nil
			}
		}
	}
	return got, fmt.Errorf("after 60 s: site offer %v, proxy offer %v", got.site != nil, got.proxy != nil)
}

// request takes the site server's offer and waits for its ACK.
func requestLease(conn net.PacketConn, offer *dhcpv4.DHCPv4, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	req, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	end := time.Now().Add(60 * time.Second)
	for time.Now().Before(end) {
		if _, err := conn.WriteTo(req.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: pxe.PortDHCP}); err != nil {
			return nil, fmt.Errorf("send REQUEST: %w", err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				break
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && m.TransactionID == req.TransactionID && m.MessageType() == dhcpv4.MessageTypeAck {
				if !m.ServerIdentifier().Equal(offer.ServerIdentifier()) {
					return nil, fmt.Errorf("DHCPACK from %v, want the site server %v", m.ServerIdentifier(), offer.ServerIdentifier())
				}
				return m, nil
			}
		}
	}
	return nil, errors.New("no DHCPACK after 60 s")
}

// proxyView is what the client needs from a proxy answer.
type proxyView struct {
	Type, YourIP, ServerIP, File, Class string
	Vendor                              []byte
}

func viewProxy(m *dhcpv4.DHCPv4) proxyView {
	return proxyView{Type: m.MessageType().String(), YourIP: m.YourIPAddr.String(), ServerIP: m.ServerIPAddr.String(),
		File: m.BootFileName, Class: m.ClassIdentifier(), Vendor: m.Options.Get(dhcpv4.OptionVendorSpecificInformation)}
}

// tftpRead fetches name from server with plain RFC 1350 (512-byte
// blocks), as PXE firmware does at its simplest.
func tftpRead(server *net.UDPAddr, name string) ([]byte, error) {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	p := binary.BigEndian.AppendUint16(nil, 1)
	p = append(append(append(append(p, name...), 0), "octet"...), 0)
	if _, err := conn.WriteToUDP(p, server); err != nil {
		return nil, err
	}
	var data []byte
	buf := make([]byte, 1500)
	for next := uint16(1); ; {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", next, err)
		}
		if n < 4 {
			return nil, fmt.Errorf("short packet of %d bytes", n)
		}
		switch op := binary.BigEndian.Uint16(buf); op {
		case 3:
		case 5:
			return nil, fmt.Errorf("TFTP error %d: %s", binary.BigEndian.Uint16(buf[2:]), bytes.TrimRight(buf[4:n], "\x00"))
		default:
			return nil, fmt.Errorf("unexpected opcode %d", op)
		}
		block := binary.BigEndian.Uint16(buf[2:])
		if block == next {
			data = append(data, buf[4:n]...)
			next++
		}
		a := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 4), block)
		if _, err := conn.WriteToUDP(a, from); err != nil {
			return nil, err
		}
		if block == next-1 && n-4 < 512 {
			return data, nil
		}
	}
}

// TestProxyDHCPInNetns runs the Service beside dnsmasq as the site's
// unchanged DHCP server on a bridged LAN of network namespaces. A PXE
// client (UEFI x64) must hear both offers, take the site's lease and read
// the iPXE binary over TFTP; iPXE itself (user class iPXE) must be sent to
// /boot.ipxe on the boot port, also when it asks on port 4011.
func TestProxyDHCPInNetns(t *testing.T) {
	l := newPXELAN(t)
	dir := t.TempDir()
	efi := make([]byte, 70_000) // 137 blocks of 512 bytes, the last one short
	for i := range efi {
		efi[i] = byte(i * 7 / 5)
	}
	if err := os.WriteFile(filepath.Join(dir, "ipxe.efi"), efi, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("not for TFTP"), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, l.site, "dnsmasq", nil, nil, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--no-ping", "--user=root", "--interface=eth0", "--bind-interfaces", "--log-dhcp",
		"--dhcp-range=10.77.0.50,10.77.0.150,1h",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	startProxy(t, l, dir)
	proxyIP := net.IPv4(10, 77, 0, 3).To4()
	uuid := append([]byte{0}, bytes.Repeat([]byte{0xab}, 16)...)
	pxeClient := func(mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
		return dhcpv4.NewDiscovery(l.clientMAC, append([]dhcpv4.Modifier{
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
			dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, uuid),
		}, mods...)...)
	}

	t.Run("UEFI firmware", func(t *testing.T) {
		var got offers
		var ack *dhcpv4.DHCPv4
		inNetns(t, l.client, func() error {
			conn, err := nclient4.NewRawUDPConn("eth0", 68)
			if err != nil {
				return fmt.Errorf("raw DHCP socket: %w", err)
			}
			defer conn.Close()
			d, err := pxeClient()
			if err != nil {
				return err
			}
			if got, err = discover(conn, d, proxyIP); err != nil {
				return err
			}
			ack, err = requestLease(conn, got.site)
			return err
		})
		want := proxyView{Type: "OFFER", YourIP: "0.0.0.0", ServerIP: "10.77.0.3", File: "ipxe.efi",
			Class: "PXEClient", Vendor: []byte{6, 1, 8, 255}}
		if diff := cmp.Diff(want, viewProxy(got.proxy)); diff != "" {
			t.Errorf("proxy offer (-want +got):\n%s", diff)
		}
		if !bytes.Equal(got.proxy.Options.Get(dhcpv4.OptionClientMachineIdentifier), uuid) {
			t.Errorf("proxy offer UUID %x, want %x echoed", got.proxy.Options.Get(dhcpv4.OptionClientMachineIdentifier), uuid)
		}
		if sid := got.site.ServerIdentifier(); !sid.Equal(net.IPv4(10, 77, 0, 2)) {
			t.Errorf("site offer from %v, want dnsmasq at 10.77.0.2", sid)
		}
		ipCmd(t, "-n", l.client, "addr", "replace", ack.YourIPAddr.String()+"/24", "dev", "eth0")

		var data []byte
		var refused error
		inNetns(t, l.client, func() error {
			var err error
			tftp := &net.UDPAddr{IP: got.proxy.ServerIPAddr, Port: pxe.PortTFTP}
			if data, err = tftpRead(tftp, got.proxy.BootFileName); err != nil {
				return fmt.Errorf("TFTP %s: %w", got.proxy.BootFileName, err)
			}
			_, refused = tftpRead(tftp, "secret.txt")
			return nil
		})
		if !bytes.Equal(data, efi) {
			t.Errorf("TFTP read %d bytes, want the %d bytes of ipxe.efi", len(data), len(efi))
		}
		if refused == nil || !strings.Contains(refused.Error(), "TFTP error 1") {
			t.Errorf("TFTP of a file that is not an iPXE binary: %v, want error 1 (file not found)", refused)
		}
	})

	t.Run("iPXE", func(t *testing.T) {
		var got offers
		var ack, proxyAck *dhcpv4.DHCPv4
		var proxyFrom net.Addr
		inNetns(t, l.client, func() error {
			conn, err := nclient4.NewRawUDPConn("eth0", 68)
			if err != nil {
				return fmt.Errorf("raw DHCP socket: %w", err)
			}
			defer conn.Close()
			d, err := pxeClient(dhcpv4.WithUserClass("iPXE", false))
			if err != nil {
				return err
			}
			if got, err = discover(conn, d, proxyIP); err != nil {
				return err
			}
			if ack, err = requestLease(conn, got.site); err != nil {
				return err
			}
			return nil
		})
		want := proxyView{Type: "OFFER", YourIP: "0.0.0.0", ServerIP: "10.77.0.3",
			File: "http://10.77.0.3:" + strconv.Itoa(testBootPort) + "/boot.ipxe", Class: "PXEClient", Vendor: []byte{6, 1, 8, 255}}
		if diff := cmp.Diff(want, viewProxy(got.proxy)); diff != "" {
			t.Errorf("proxy offer (-want +got):\n%s", diff)
		}
		ipCmd(t, "-n", l.client, "addr", "replace", ack.YourIPAddr.String()+"/24", "dev", "eth0")

		// iPXE's ProxyDHCPREQUEST: unicast from port 68 to the proxy's
		// port 4011; it accepts only an answer from port 4011.
		inNetns(t, l.client, func() error {
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ack.YourIPAddr, Port: 68})
			if err != nil {
				return err
			}
			defer conn.Close()
			req, err := dhcpv4.New(dhcpv4.WithHwAddr(l.clientMAC), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
				dhcpv4.WithClientIP(ack.YourIPAddr), dhcpv4.WithUserClass("iPXE", false),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(proxyIP)),
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
			if err != nil {
				return err
			}
			if _, err := conn.WriteTo(req.ToBytes(), &net.UDPAddr{IP: proxyIP, Port: pxe.PortProxy}); err != nil {
				return err
			}
			buf := make([]byte, 4096)
			for {
				conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				n, from, err := conn.ReadFrom(buf)
				if err != nil {
					return fmt.Errorf("no ProxyDHCPACK: %w", err)
				}
				if m, err := dhcpv4.FromBytes(buf[:n]); err == nil && m.TransactionID == req.TransactionID {
					proxyAck, proxyFrom = m, from
					return nil
				}
			}
		})
		want.Type = "ACK"
		if diff := cmp.Diff(want, viewProxy(proxyAck)); diff != "" {
			t.Errorf("ProxyDHCPACK (-want +got):\n%s", diff)
		}
		if s := proxyFrom.String(); s != "10.77.0.3:4011" {
			t.Errorf("ProxyDHCPACK came from %s, want 10.77.0.3:4011 (iPXE drops anything else)", s)
		}
	})
}
