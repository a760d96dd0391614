package pxe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// ErrIgnored is wrapped by Proxy.Reply for requests a proxyDHCP server
// must not answer; the error text says why.
var ErrIgnored = errors.New("not answered")

// iPXE binaries handed to firmware.
const (
	FileBIOS = "undionly.kpxe" // x86 BIOS, over TFTP
	FileEFI  = "ipxe.efi"      // x86-64 UEFI, over TFTP or HTTP
	// FileShim is Debian's shim, signed with Microsoft's UEFI CA: the
	// first link of the Secure Boot chain, for x86-64 UEFI over TFTP. It
	// loads grubx64.efi from the same TFTP directory.
	FileShim = "bootx64.efi"
)

// Well-known ports.
const (
	PortDHCP  = 67   // DHCP server port; proxyDHCP offers are broadcast from it
	PortProxy = 4011 // PXE boot-server port; iPXE sends its ProxyDHCPREQUEST here
	PortTFTP  = 69
)

// pxeDiscoveryControl is vendor option 43 holding PXE sub-option 6
// (PXE_DISCOVERY_CONTROL) with bit 3 set: "the boot file name is present,
// download it without boot-server discovery". iPXE also drops a
// ProxyDHCPACK that carries no PXE options, so every answer has it.
func pxeDiscoveryControl() []byte { return []byte{6, 1, 1 << 3, 255} }

// Proxy decides proxyDHCP answers (PXE 2.1, RFC 4578). It never hands out
// addresses: every answer has yiaddr 0.0.0.0 and only says where the boot
// file is. It holds no sockets; Service runs it on the network.
type Proxy struct {
	// BootPort is the TCP port of the HTTP boot port (/boot.ipxe, /ipxe/{file}).
	BootPort int
	// EFIFile is the iPXE binary for UEFI clients; empty means FileEFI.
	// snponly.efi is the alternative for NICs iPXE has no driver for.
	EFIFile string
	// SecureBoot sends x86-64 UEFI PXE clients FileShim, the signed chain
	// (shim → signed GRUB → signed kernel) that firmware with Secure Boot
	// on accepts, instead of iPXE, which it refuses. UEFI HTTP boot
	// clients still get iPXE: signed GRUB has no HTTP. BIOS clients, which
	// have no Secure Boot, always get iPXE.
	SecureBoot bool
}

// Reply returns the answer to req from a proxyDHCP server reachable at
// serverIP (IPv4). port is the UDP port req arrived on: PortDHCP or
// PortProxy. Requests that are not for us get an error wrapping ErrIgnored
// that names the reason: non-PXE clients, message types other than
// DISCOVER/REQUEST (and INFORM on PortProxy), a REQUEST on PortDHCP that
// selects another server, and architectures with no iPXE binary.
func (p Proxy) Reply(req *dhcpv4.DHCPv4, serverIP net.IP, port int) (*dhcpv4.DHCPv4, error) {
	ip4 := serverIP.To4()
	if ip4 == nil || ip4.IsUnspecified() {
		return nil, fmt.Errorf("proxydhcp: server address %v is not an IPv4 address", serverIP)
	}
	if p.BootPort <= 0 || p.BootPort > 65535 {
		return nil, fmt.Errorf("proxydhcp: boot port %d is not a TCP port", p.BootPort)
	}
	ignore := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrIgnored}, args...)...)
	}
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, ignore("not a BOOTREQUEST")
	}
	var answer dhcpv4.MessageType
	switch mt := req.MessageType(); {
	case mt == dhcpv4.MessageTypeDiscover:
		answer = dhcpv4.MessageTypeOffer
	case mt == dhcpv4.MessageTypeRequest:
		answer = dhcpv4.MessageTypeAck
		if port == PortDHCP {
			// A broadcast REQUEST selects one server; the others stay quiet (RFC 2131 4.3.2).
			if sid := req.ServerIdentifier(); sid == nil || !sid.Equal(ip4) {
				return nil, ignore("DHCPREQUEST is for server %v, not us", sid)
			}
		}
	case mt == dhcpv4.MessageTypeInform && port == PortProxy:
		answer = dhcpv4.MessageTypeAck
	default:
		return nil, ignore("message type %s", mt)
	}
	class := req.ClassIdentifier()
	replyClass := ""
	switch {
	case strings.HasPrefix(class, "PXEClient"):
		replyClass = "PXEClient"
	case strings.HasPrefix(class, "HTTPClient"):
		replyClass = "HTTPClient"
	default:
		return nil, ignore("not a PXE client (vendor class %q)", class)
	}

	file := ""
	bootURL := "http://" + net.JoinHostPort(ip4.String(), strconv.Itoa(p.BootPort))
	if IsIPXE(req) {
		file = bootURL + "/boot.ipxe" // already iPXE: chain to stage one, which ends the loop
	} else {
		arch, ok := ClientArch(req)
		if !ok {
			return nil, ignore("no client architecture (option 93, or Arch in vendor class %q)", class)
		}
		efi := p.EFIFile
		if efi == "" {
			efi = FileEFI
		}
		switch arch {
		case iana.INTEL_X86PC:
			file = FileBIOS
		case iana.EFI_X86_64, iana.EFI_BC:
			file = efi
			if p.SecureBoot {
				file = FileShim
			}
		case iana.EFI_X86_64_HTTP:
			file = bootURL + "/ipxe/" + efi
		default:
			return nil, ignore("no iPXE binary for client architecture %s (%d)", arch, uint16(arch))
		}
	}

	reply, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(answer),
		dhcpv4.WithClientIP(req.ClientIPAddr),
		dhcpv4.WithServerIP(ip4),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip4)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(replyClass)),
		dhcpv4.WithOption(dhcpv4.OptBootFileName(file)),
		dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, pxeDiscoveryControl()),
		dhcpv4.WithOptionCopied(req, dhcpv4.OptionClientMachineIdentifier),
	)
	if err != nil {
		return nil, fmt.Errorf("proxydhcp: build reply: %w", err)
	}
	reply.BootFileName = file
	return reply, nil
}

// IsIPXE reports whether req comes from iPXE: user class (option 77)
// "iPXE", raw as iPXE sends it or in RFC 3004 form, or iPXE's
// encapsulated option 175.
func IsIPXE(req *dhcpv4.DHCPv4) bool {
	if req.Options.Has(dhcpv4.OptionEtherboot) {
		return true
	}
	uc := req.Options.Get(dhcpv4.OptionUserClassInformation)
	if string(uc) == "iPXE" {
		return true
	}
	for len(uc) > 0 { // RFC 3004: length-prefixed instances
		n := int(uc[0])
		if n+1 > len(uc) {
			break
		}
		if string(uc[1:1+n]) == "iPXE" {
			return true
		}
		uc = uc[1+n:]
	}
	return false
}

// ClientArch returns the client's architecture from option 93 (its first
// entry) or, when that is absent, from the "Arch:NNNNN" field of the
// vendor class "PXEClient:Arch:NNNNN:UNDI:…".
func ClientArch(req *dhcpv4.DHCPv4) (iana.Arch, bool) {
	if b := req.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(b) >= 2 {
		return iana.Arch(binary.BigEndian.Uint16(b)), true
	}
	f := strings.Split(req.ClassIdentifier(), ":")
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "Arch" {
			if n, err := strconv.ParseUint(f[i+1], 10, 16); err == nil {
				return iana.Arch(n), true
			}
		}
	}
	return 0, false
}
