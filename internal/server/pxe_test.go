//go:build linux

package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestServePXE starts `imprint server --pxe --pxe-interface eth0` with its
// PXE sockets in a network namespace and checks that iPXE on the other end
// of a veth is sent to this server's own boot port.
func TestServePXE(t *testing.T) {
	testenv.Root(t, "to create network namespaces and bind UDP 67")
	testenv.LookPath(t, "ip")
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1000000)
	srvNS, cliNS := "srv-pxe-"+id, "cli-pxe-"+id
	if out, err := exec.Command("ip", "netns", "add", srvNS).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot create a network namespace here (needs a kernel with network namespaces): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", srvNS).Run() })
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", cliNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", cliNS).Run() })
	run("-n", srvNS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", cliNS)
	run("-n", srvNS, "addr", "add", "10.78.0.1/24", "dev", "eth0")
	run("-n", srvNS, "link", "set", "eth0", "up")
	run("-n", cliNS, "link", "set", "eth0", "up")

	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	// --pxe-address is given: without it the service looks up the
	// receiving interface's address at request time, from whatever thread
	// handles the packet, which in this test is outside srvNS (a whole
	// process never straddles namespaces; pxe's own test covers that).
	cfg.PXE, cfg.PXEInterface, cfg.PXEServerIP = true, "eth0", "10.78.0.1"
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, cfg, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// Serve binds the PXE sockets on its own goroutine before anything
	// else; that goroutine's thread is in srvNS (and discarded afterwards).
	go func() {
		runtime.LockOSThread()
		if err := setns(srvNS); err != nil {
			done <- err
			return
		}
		done <- s.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	discover := func(ipxe bool) *dhcpv4.DHCPv4 {
		t.Helper()
		var offer *dhcpv4.DHCPv4
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // the thread is discarded: it stays in cliNS
			if err := setns(cliNS); err != nil {
				errc <- err
				return
			}
			var err error
			offer, err = pxeDiscover(ipxe)
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return offer
	}
	offer := discover(true)
	_, port, _ := net.SplitHostPort(s.BootAddr().String())
	if want := "http://10.78.0.1:" + port + "/boot.ipxe"; offer.BootFileName != want {
		t.Errorf("boot file %q, want %q", offer.BootFileName, want)
	}
	if !offer.ServerIPAddr.Equal(net.IPv4(10, 78, 0, 1)) || !offer.YourIPAddr.IsUnspecified() {
		t.Errorf("siaddr %v yiaddr %v, want 10.78.0.1 and 0.0.0.0", offer.ServerIPAddr, offer.YourIPAddr)
	}

	// UEFI firmware (not iPXE): Secure Boot mode is on by default, but
	// without the signed chain in the boot image it gets iPXE; with it,
	// shim; with the mode turned off, iPXE again.
	if f := discover(false).BootFileName; f != "ipxe.efi" {
		t.Errorf("no signed chain: firmware's boot file %q, want ipxe.efi", f)
	}
	images := filepath.Join(server.BootImagesDir(cfg.DataDir), "x86_64")
	os.MkdirAll(images, 0o755)
	for _, name := range []string{"shimx64.efi", "grubx64.efi", "vmlinuz", "initrd.img"} {
		if err := os.WriteFile(filepath.Join(images, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if f := discover(false).BootFileName; f != "bootx64.efi" {
		t.Errorf("signed chain there: firmware's boot file %q, want bootx64.efi (shim)", f)
	}
	if err := s.Store().PutSetting(ctx, "security", []byte(`{"secureBootOff":true}`)); err != nil {
		t.Fatal(err)
	}
	if f := discover(false).BootFileName; f != "ipxe.efi" {
		t.Errorf("Secure Boot mode off: firmware's boot file %q, want ipxe.efi", f)
	}
}

func setns(name string) error {
	f, err := os.Open(filepath.Join("/var/run/netns", name))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", name, err)
	}
	return nil
}

// pxeDiscover broadcasts a UEFI x64 PXE DISCOVER (iPXE's when ipxe) on
// eth0 every second until an offer comes (the server may still be
// binding); 30 s is a safety net.
func pxeDiscover(ipxe bool) (*dhcpv4.DHCPv4, error) {
	conn, err := nclient4.NewRawUDPConn("eth0", 68)
	if err != nil {
		return nil, fmt.Errorf("raw DHCP socket: %w", err)
	}
	defer conn.Close()
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		return nil, err
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
	}
	if ipxe {
		mods = append(mods, dhcpv4.WithUserClass("iPXE", false))
	}
	d, err := dhcpv4.NewDiscovery(ifi.HardwareAddr, mods...)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		if _, err := conn.WriteTo(d.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := conn.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			} else if err != nil {
				return nil, err
			}
			if m, err := dhcpv4.FromBytes(buf[:n]); err == nil && m.TransactionID == d.TransactionID {
				return m, nil
			}
		}
	}
	return nil, errors.New("no proxyDHCP offer in 30 s")
}
