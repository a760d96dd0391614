package pxe_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/imprint-osd/imprint/internal/boot/pxe"
)

var (
	testMAC    = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	testServer = net.IPv4(10, 77, 0, 3)
	testUUID   = append([]byte{0}, []byte("0123456789abcdef")...) // option 97: type 0 + 16 bytes
)

// request builds a client packet of the given type with modifiers.
func request(t *testing.T, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{dhcpv4.WithHwAddr(testMAC), dhcpv4.WithMessageType(mt)}
	d, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through the wire format, as the service sees it.
	d, err = dhcpv4.FromBytes(d.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func pxeClient(arch iana.Arch) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(fmt.Sprintf("PXEClient:Arch:%05d:UNDI:003016", arch))),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, testUUID),
	}
}

// answer is what matters in a proxyDHCP reply.
type answer struct {
	Type       string
	YourIP     string
	ServerIP   string
	ServerID   string
	Class      string
	File       string
	FileOption string
	Vendor     []byte
	UUID       []byte
	Broadcast  bool
}

func summarise(r *dhcpv4.DHCPv4) answer {
	return answer{
		Type:       r.MessageType().String(),
		YourIP:     r.YourIPAddr.String(),
		ServerIP:   r.ServerIPAddr.String(),
		ServerID:   r.ServerIdentifier().String(),
		Class:      r.ClassIdentifier(),
		File:       r.BootFileName,
		FileOption: r.BootFileNameOption(),
		Vendor:     r.Options.Get(dhcpv4.OptionVendorSpecificInformation),
		UUID:       r.Options.Get(dhcpv4.OptionClientMachineIdentifier),
		Broadcast:  r.IsBroadcast(),
	}
}

func offer(file, class string) answer {
	return answer{Type: "OFFER", YourIP: "0.0.0.0", ServerIP: "10.77.0.3", ServerID: "10.77.0.3",
		Class: class, File: file, FileOption: file, Vendor: []byte{6, 1, 8, 255}, UUID: testUUID}
}

func TestProxyReply(t *testing.T) {
	p := pxe.Proxy{BootPort: 7282}
	ack := func(a answer) answer { a.Type = "ACK"; return a }
	noUUID := func(a answer) answer { a.UUID = nil; return a }
	bcast := func(a answer) answer { a.Broadcast = true; return a }
	tests := []struct {
		name string
		req  *dhcpv4.DHCPv4
		port int
		want answer
		// ignored is a substring of the reason when no answer is wanted.
		ignored string
	}{
		{name: "BIOS", req: request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.INTEL_X86PC)...),
			port: pxe.PortDHCP, want: offer("undionly.kpxe", "PXEClient")},
		{name: "UEFI x64 (7)", req: request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.EFI_X86_64)...),
			port: pxe.PortDHCP, want: offer("ipxe.efi", "PXEClient")},
		{name: "UEFI x64 (9)", req: request(t, dhcpv4.MessageTypeDiscover, append(pxeClient(iana.EFI_BC), dhcpv4.WithBroadcast(true))...),
			port: pxe.PortDHCP, want: bcast(offer("ipxe.efi", "PXEClient"))},
		{name: "UEFI HTTP", req: request(t, dhcpv4.MessageTypeDiscover,
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP))),
			port: pxe.PortDHCP, want: noUUID(offer("http://10.77.0.3:7282/ipxe/ipxe.efi", "HTTPClient"))},
		{name: "iPXE user class", req: request(t, dhcpv4.MessageTypeDiscover,
			append(pxeClient(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", false))...),
			port: pxe.PortDHCP, want: offer("http://10.77.0.3:7282/boot.ipxe", "PXEClient")},
		{name: "iPXE user class, RFC 3004 form", req: request(t, dhcpv4.MessageTypeDiscover,
			append(pxeClient(iana.INTEL_X86PC), dhcpv4.WithUserClass("iPXE", true))...),
			port: pxe.PortDHCP, want: offer("http://10.77.0.3:7282/boot.ipxe", "PXEClient")},
		{name: "iPXE option 175", req: request(t, dhcpv4.MessageTypeDiscover,
			append(pxeClient(iana.INTEL_X86PC), dhcpv4.WithGeneric(dhcpv4.OptionEtherboot, []byte{0xb1, 1, 1}))...),
			port: pxe.PortDHCP, want: offer("http://10.77.0.3:7282/boot.ipxe", "PXEClient")},
		{name: "iPXE ProxyDHCPREQUEST on 4011", req: request(t, dhcpv4.MessageTypeRequest,
			append(pxeClient(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", false),
				dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 60)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer)))...),
			port: pxe.PortProxy, want: ack(offer("http://10.77.0.3:7282/boot.ipxe", "PXEClient"))},
		{name: "REQUEST on 67 that selects us", req: request(t, dhcpv4.MessageTypeRequest,
			append(pxeClient(iana.EFI_X86_64), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer)))...),
			port: pxe.PortDHCP, want: ack(offer("ipxe.efi", "PXEClient"))},
		{name: "missing option 93, arch from vendor class", req: request(t, dhcpv4.MessageTypeDiscover,
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016"))),
			port: pxe.PortDHCP, want: noUUID(offer("ipxe.efi", "PXEClient"))},
		{name: "missing option 93 and no Arch in vendor class", req: request(t, dhcpv4.MessageTypeDiscover,
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient"))),
			port: pxe.PortDHCP, ignored: "no client architecture"},
		{name: "non-PXE client", req: request(t, dhcpv4.MessageTypeDiscover,
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("MSFT 5.0"))),
			port: pxe.PortDHCP, ignored: `not a PXE client (vendor class "MSFT 5.0")`},
		{name: "no vendor class", req: request(t, dhcpv4.MessageTypeDiscover),
			port: pxe.PortDHCP, ignored: "not a PXE client"},
		{name: "REQUEST on 67 for the site DHCP server", req: request(t, dhcpv4.MessageTypeRequest,
			append(pxeClient(iana.EFI_X86_64), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 2))))...),
			port: pxe.PortDHCP, ignored: "is for server 10.77.0.2"},
		{name: "INFORM on 67", req: request(t, dhcpv4.MessageTypeInform, pxeClient(iana.EFI_X86_64)...),
			port: pxe.PortDHCP, ignored: "message type INFORM"},
		{name: "ARM64 has no binary here", req: request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.EFI_ARM64)...),
			port: pxe.PortDHCP, ignored: "no iPXE binary for client architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Reply(tt.req, testServer, tt.port)
			if tt.ignored != "" {
				if !errors.Is(err, pxe.ErrIgnored) || !strings.Contains(err.Error(), tt.ignored) {
					t.Fatalf("Reply: got %v, %v; want an ErrIgnored saying %q", got, err, tt.ignored)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reply: %v", err)
			}
			if got.TransactionID != tt.req.TransactionID || got.ClientHWAddr.String() != testMAC.String() ||
				got.OpCode != dhcpv4.OpcodeBootReply {
				t.Errorf("reply xid %s mac %s op %s; want xid %s mac %s BootReply",
					got.TransactionID, got.ClientHWAddr, got.OpCode, tt.req.TransactionID, testMAC)
			}
			// Through the wire and back, as the client sees it.
			wire, err := dhcpv4.FromBytes(got.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarise(wire)); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProxyReplyBadConfig(t *testing.T) {
	req := request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.EFI_X86_64)...)
	tests := []struct {
		name string
		p    pxe.Proxy
		ip   net.IP
		want string
	}{
		{"no server IP", pxe.Proxy{BootPort: 1}, nil, "server address <nil> is not an IPv4 address"},
		{"IPv6 server IP", pxe.Proxy{BootPort: 1}, net.ParseIP("fe80::1"), "is not an IPv4 address"},
		{"no boot port", pxe.Proxy{}, testServer, "boot port 0 is not a TCP port"},
	}
	for _, tt := range tests {
		_, err := tt.p.Reply(req, tt.ip, pxe.PortDHCP)
		if err == nil || errors.Is(err, pxe.ErrIgnored) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

func TestProxySnponly(t *testing.T) {
	p := pxe.Proxy{BootPort: 80, EFIFile: "snponly.efi"}
	got, err := p.Reply(request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.EFI_X86_64)...), testServer, pxe.PortDHCP)
	if err != nil {
		t.Fatal(err)
	}
	if got.BootFileName != "snponly.efi" {
		t.Errorf("boot file %q, want snponly.efi", got.BootFileName)
	}
}

// TestProxySecureBoot: with Secure Boot on, x86-64 UEFI PXE firmware gets
// shim (bootx64.efi) instead of iPXE, which such firmware refuses; BIOS,
// UEFI HTTP boot and a client that already is iPXE are answered as before.
func TestProxySecureBoot(t *testing.T) {
	tests := []struct {
		name string
		req  *dhcpv4.DHCPv4
		want string // boot file with SecureBoot on
	}{
		{"UEFI x64 (7)", request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.EFI_X86_64)...), "bootx64.efi"},
		{"UEFI x64 (9)", request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.EFI_BC)...), "bootx64.efi"},
		{"BIOS", request(t, dhcpv4.MessageTypeDiscover, pxeClient(iana.INTEL_X86PC)...), "undionly.kpxe"},
		{"UEFI HTTP", request(t, dhcpv4.MessageTypeDiscover,
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP))), "http://10.77.0.3:7282/ipxe/ipxe.efi"},
		{"iPXE", request(t, dhcpv4.MessageTypeDiscover,
			append(pxeClient(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", false))...), "http://10.77.0.3:7282/boot.ipxe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, on := range []bool{true, false} {
				got, err := pxe.Proxy{BootPort: 7282, SecureBoot: on}.Reply(tt.req, testServer, pxe.PortDHCP)
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				if !on && want == "bootx64.efi" {
					want = "ipxe.efi"
				}
				if got.BootFileName != want || got.BootFileNameOption() != want {
					t.Errorf("SecureBoot %v: boot file %q (option 67 %q), want %q", on, got.BootFileName, got.BootFileNameOption(), want)
				}
			}
		})
	}
}
