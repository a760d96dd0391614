package pxe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/ipv4"
	"golang.org/x/sync/errgroup"
)

// Config configures a Service.
type Config struct {
	// Interface, when set, binds the three sockets to this network
	// interface (SO_BINDTODEVICE), so only its LAN is answered.
	Interface string
	// ServerIP is the IPv4 address machines reach TFTP and the boot port
	// on. When nil, the answer to a broadcast uses the first IPv4 address
	// of the interface the request arrived on, and the answer on PortProxy
	// the address the request was sent to. The interface is looked up in
	// the network namespace of the thread handling the packet, so a process
	// must run the Service wholly inside one namespace.
	ServerIP net.IP
	// BootPort is the TCP port of the HTTP boot port.
	BootPort int
	// IPXEDir holds the iPXE binaries served over TFTP.
	IPXEDir string
	// EFIFile is the iPXE binary for UEFI; empty means FileEFI.
	EFIFile string
	// SecureBoot, when set, is asked at every request whether x86-64 UEFI
	// PXE clients get the signed chain (Proxy.SecureBoot): the admin's
	// setting and whether the signed files are there.
	SecureBoot func() bool
	// Open serves TFTP names other than the iPXE binaries: the signed
	// chain, its GRUB configs and the boot image (boot.Handler.TFTPOpen).
	// nil serves only the iPXE binaries. remote is for logs.
	Open func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error)
	Log  *slog.Logger
}

// Service is the optional proxyDHCP + TFTP service of `imprint server
// --pxe`: proxyDHCP on UDP 67 and 4011 beside the site's unchanged DHCP
// server, and read-only TFTP of the iPXE binaries on UDP 69.
type Service struct {
	cfg         Config
	log         *slog.Logger
	proxy       Proxy
	dhcp, pxebs *ipv4.PacketConn
	tftp        net.PacketConn
	conns       []io.Closer // every socket, for Close
}

// Listen checks cfg and binds the three sockets, so that start-up errors
// (a port in use, no privilege for ports below 1024) surface at once.
func Listen(cfg Config) (_ *Service, err error) {
	if cfg.BootPort <= 0 || cfg.BootPort > 65535 {
		return nil, fmt.Errorf("pxe: BootPort: %d is not a TCP port", cfg.BootPort)
	}
	if cfg.ServerIP != nil && (cfg.ServerIP.To4() == nil || cfg.ServerIP.IsUnspecified()) {
		return nil, fmt.Errorf("pxe: ServerIP: %v is not a usable IPv4 address", cfg.ServerIP)
	}
	if cfg.IPXEDir == "" {
		return nil, errors.New("pxe: IPXEDir: must not be empty")
	}
	switch cfg.EFIFile {
	case "", "ipxe.efi", "snponly.efi":
	default:
		return nil, fmt.Errorf("pxe: EFIFile: want ipxe.efi or snponly.efi, got %q", cfg.EFIFile)
	}
	if cfg.Interface != "" {
		if _, err := net.InterfaceByName(cfg.Interface); err != nil {
			return nil, fmt.Errorf("pxe: interface %q: %w", cfg.Interface, err)
		}
	}
	s := &Service{cfg: cfg, log: cfg.Log, proxy: Proxy{BootPort: cfg.BootPort, EFIFile: cfg.EFIFile}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dhcp, err = s.listenDHCP(PortDHCP); err != nil {
		return nil, err
	}
	if s.pxebs, err = s.listenDHCP(PortProxy); err != nil {
		return nil, err
	}
	if s.tftp, err = s.listen(PortTFTP); err != nil {
		return nil, err
	}
	return s, nil
}

// listen binds 0.0.0.0:port (a proxyDHCP server must see broadcasts) with
// SO_REUSEADDR, so it can share port 67 with a DHCP server on this host,
// and SO_BINDTODEVICE when an interface is configured.
func (s *Service) listen(port int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: socketOptions(s.cfg.Interface)}
	pc, err := lc.ListenPacket(context.Background(), "udp4", ":"+strconv.Itoa(port))
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("pxe: listen on UDP %d: %w (needs root or CAP_NET_BIND_SERVICE)", port, err)
		}
		return nil, fmt.Errorf("pxe: listen on UDP %d: %w", port, err)
	}
	s.conns = append(s.conns, pc)
	return pc, nil
}

// listenDHCP is listen plus IP_PKTINFO, which tells on which interface and
// to which address a request came, and sends broadcasts out of that
// interface (255.255.255.255 has no route of its own).
func (s *Service) listenDHCP(port int) (*ipv4.PacketConn, error) {
	pc, err := s.listen(port)
	if err != nil {
		return nil, err
	}
	p := ipv4.NewPacketConn(pc)
	if err := p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		return nil, fmt.Errorf("pxe: UDP %d: IP_PKTINFO: %w", port, err)
	}
	return p, nil
}

// Close releases the sockets; Serve does it itself when it returns.
func (s *Service) Close() error {
	var errs []error
	for _, c := range s.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Serve answers on the three sockets until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	defer s.Close()
	g, ctx := errgroup.WithContext(ctx)
	context.AfterFunc(ctx, func() { s.Close() })
	g.Go(func() error { return s.serveDHCP(ctx, s.dhcp, PortDHCP) })
	g.Go(func() error { return s.serveDHCP(ctx, s.pxebs, PortProxy) })
	g.Go(func() error {
		t := &TFTPServer{OpenFrom: func(remote net.Addr, name string) (io.ReadCloser, int64, error) { return s.open(ctx, remote, name) }, Log: s.log}
		return t.Serve(ctx, s.tftp)
	})
	s.log.Info("proxyDHCP and TFTP started", "interface", s.cfg.Interface, "server_ip", s.cfg.ServerIP,
		"ports", []int{PortDHCP, PortProxy, PortTFTP}, "ipxe_dir", s.cfg.IPXEDir)
	return g.Wait()
}

func (s *Service) serveDHCP(ctx context.Context, conn *ipv4.PacketConn, port int) error {
	buf := make([]byte, 4096)
	for {
		n, cm, src, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pxe: read UDP %d: %w", port, err)
		}
		s.handle(conn, port, buf[:n], cm, src)
	}
}

// handle answers one request; everything it decides is logged at debug
// level, nothing it receives can stop the service.
func (s *Service) handle(conn *ipv4.PacketConn, port int, b []byte, cm *ipv4.ControlMessage, src net.Addr) {
	log := s.log.With("port", port, "from", src.String())
	req, err := dhcpv4.FromBytes(b)
	if err != nil {
		log.Debug("proxydhcp: malformed packet", "err", err)
		return
	}
	log = log.With("mac", req.ClientHWAddr.String(), "type", req.MessageType().String(), "xid", req.TransactionID.String())
	serverIP, err := s.serverIP(cm, port)
	if err != nil {
		log.Debug("proxydhcp: not answered", "reason", err)
		return
	}
	p := s.proxy
	// Only PXE firmware can be sent shim; asking (a settings read) for
	// every DHCP packet on the LAN would be waste.
	if s.cfg.SecureBoot != nil && strings.HasPrefix(req.ClassIdentifier(), "PXEClient") && !IsIPXE(req) {
		p.SecureBoot = s.cfg.SecureBoot()
	}
	reply, err := p.Reply(req, serverIP, port)
	if err != nil {
		log.Debug("proxydhcp: not answered", "reason", err)
		return
	}
	dst, wcm := replyAddr(req, port, src, cm)
	if _, err := conn.WriteTo(reply.ToBytes(), wcm, dst); err != nil {
		log.Warn("proxydhcp: send", "to", dst.String(), "err", err)
		return
	}
	arch, _ := ClientArch(req)
	log.Debug("proxydhcp: answered", "reply", reply.MessageType().String(), "to", dst.String(),
		"arch", uint16(arch), "ipxe", IsIPXE(req), "secure_boot", p.SecureBoot, "server_ip", serverIP.String(), "file", reply.BootFileName)
}

// serverIP is the address the answer names: the configured one, else the
// address a unicast request was sent to, else the first IPv4 address of
// the interface the request came in on.
func (s *Service) serverIP(cm *ipv4.ControlMessage, port int) (net.IP, error) {
	if s.cfg.ServerIP != nil {
		return s.cfg.ServerIP.To4(), nil
	}
	if cm == nil {
		return nil, errors.New("no packet info to find our address")
	}
	if port == PortProxy && cm.Dst != nil && cm.Dst.To4() != nil && !cm.Dst.Equal(net.IPv4bcast) {
		return cm.Dst.To4(), nil
	}
	ifi, err := net.InterfaceByIndex(cm.IfIndex)
	if err != nil {
		return nil, fmt.Errorf("interface %d: %w", cm.IfIndex, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("interface %s has no IPv4 address (set the server address)", ifi.Name)
}

// replyAddr is where an answer goes (RFC 2131 4.1): on PortProxy back to
// the sender; on PortDHCP to the relay (giaddr), else to ciaddr, else
// broadcast out of the interface the request came in on.
func replyAddr(req *dhcpv4.DHCPv4, port int, src net.Addr, cm *ipv4.ControlMessage) (net.Addr, *ipv4.ControlMessage) {
	if port == PortProxy {
		return src, nil
	}
	if g := req.GatewayIPAddr; g != nil && !g.IsUnspecified() {
		return &net.UDPAddr{IP: g, Port: PortDHCP}, nil
	}
	if c := req.ClientIPAddr; c != nil && !c.IsUnspecified() {
		return &net.UDPAddr{IP: c, Port: 68}, nil
	}
	var wcm *ipv4.ControlMessage
	if cm != nil {
		wcm = &ipv4.ControlMessage{IfIndex: cm.IfIndex}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: 68}, wcm
}

// tftpFile reports whether name is an iPXE binary TFTP may serve. Only
// these bare names are served: no paths, nothing else from the directory.
func tftpFile(name string) bool {
	switch name {
	case "ipxe.efi", "snponly.efi", "undionly.kpxe", "undionly.kkpxe", "ipxe.pxe":
		return true
	}
	return false
}

// open serves a TFTP read: an iPXE binary from IPXEDir, anything else
// through Config.Open.
func (s *Service) open(ctx context.Context, remote net.Addr, name string) (io.ReadCloser, int64, error) {
	if tftpFile(name) || s.cfg.Open == nil {
		return s.openIPXE(name)
	}
	host := "tftp"
	if ua, ok := remote.(*net.UDPAddr); ok {
		host = ua.IP.String()
	}
	return s.cfg.Open(ctx, host, name)
}

// openIPXE opens an iPXE binary in IPXEDir for TFTP (following symlinks,
// as Debian's /usr/lib/ipxe uses them; regular files only).
func (s *Service) openIPXE(name string) (io.ReadCloser, int64, error) {
	if !tftpFile(name) {
		return nil, 0, fmt.Errorf("tftp: %q is not an iPXE binary: %w", name, fs.ErrNotExist)
	}
	f, err := os.Open(filepath.Join(s.cfg.IPXEDir, name))
	if err != nil {
		return nil, 0, fmt.Errorf("tftp: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("tftp: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("tftp: %s is not a regular file: %w", f.Name(), fs.ErrNotExist)
	}
	return f, fi.Size(), nil
}
