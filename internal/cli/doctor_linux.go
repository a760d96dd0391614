package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

func platformDoctorEnv() doctorEnv {
	return doctorEnv{statfs: statfsFree, clock: adjtimexClock, proxyDHCP: probeProxyDHCP, owner: fileOwner}
}

func statfsFree(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// adjtimexClock asks the kernel, read-only, whether NTP (systemd-
// timesyncd, chrony, ntpd) keeps the clock synchronised: what
// timedatectl's "System clock synchronized" shows.
func adjtimexClock() (bool, time.Duration, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, 0, err
	}
	synced := state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	return synced, time.Duration(tx.Maxerror) * time.Microsecond, nil
}

func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// probeProxyDHCP broadcasts a UEFI x64 PXE DHCPDISCOVER on iface from
// port 68, once a second, and waits for an offer that answers it as a
// proxyDHCP does (vendor class PXEClient, a boot file, no address
// offered). A plain DHCP offer is reported, as it shows the DHCP server
// but not ours.
func probeProxyDHCP(ctx context.Context, iface string, timeout time.Duration) (string, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return "", fmt.Errorf("no interface %s: %w", iface, err)
	}
	conn, err := nclient4.NewRawUDPConn(iface, 68)
	if err != nil {
		return "", fmt.Errorf("cannot broadcast on %s: %w (needs root or CAP_NET_RAW)", iface, err)
	}
	defer conn.Close()
	d, err := dhcpv4.NewDiscovery(ifi.HardwareAddr,
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
	if err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	plain := ""
	end := time.Now().Add(timeout)
	for time.Now().Before(end) && ctx.Err() == nil {
		if _, err := conn.WriteTo(d.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
			return "", fmt.Errorf("send on %s: %w", iface, err)
		}
		dl := time.Now().Add(time.Second)
		if dl.After(end) {
			dl = end
		}
		conn.SetReadDeadline(dl)
		for {
			n, _, err := conn.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			} else if err != nil {
				return "", fmt.Errorf("receive on %s: %w", iface, err)
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || m.TransactionID != d.TransactionID || m.OpCode != dhcpv4.OpcodeBootReply {
				continue
			}
			if m.ClassIdentifier() == "PXEClient" && m.YourIPAddr.IsUnspecified() {
				return fmt.Sprintf("%s answered: boot file %q from %s", m.ServerIdentifier(), m.BootFileName, m.ServerIPAddr), nil
			}
			plain = m.ServerIdentifier().String()
		}
	}
	if plain != "" {
		return "", fmt.Errorf("the DHCP server %s answered, but no proxyDHCP within %s", plain, timeout)
	}
	return "", fmt.Errorf("no answer on %s within %s", iface, timeout)
}
