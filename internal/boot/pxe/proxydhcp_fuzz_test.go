package pxe

import (
	"errors"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzProxyDHCP feeds any packet to the proxyDHCP path of UDP 67 and 4011:
// parse, decide, address the answer. Whatever arrives, an answer never
// hands out an address, echoes the client's transaction and hardware
// address, names one of the boot files the server has, and encodes to a
// packet that parses back; anything not answered says why (ErrIgnored).
// Seeds: testdata/fuzz/FuzzProxyDHCP.
func FuzzProxyDHCP(f *testing.F) {
	serverIP := net.IPv4(10, 77, 0, 3).To4()
	p := Proxy{BootPort: 8080}
	files := map[string]bool{
		FileBIOS: true, FileEFI: true,
		"http://10.77.0.3:8080/boot.ipxe": true, "http://10.77.0.3:8080/ipxe/" + FileEFI: true,
	}
	f.Fuzz(func(t *testing.T, b []byte, proxyPort bool) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return // dropped, logged at debug level
		}
		port := PortDHCP
		if proxyPort {
			port = PortProxy
		}
		IsIPXE(req)
		ClientArch(req)
		reply, err := p.Reply(req, serverIP, port)
		if err != nil {
			if !errors.Is(err, ErrIgnored) {
				t.Fatalf("Reply: %v, want an error wrapping ErrIgnored", err)
			}
			return
		}
		if reply.OpCode != dhcpv4.OpcodeBootReply {
			t.Fatalf("reply opcode %v", reply.OpCode)
		}
		if y := reply.YourIPAddr; y != nil && !y.IsUnspecified() {
			t.Fatalf("reply hands out address %v", y)
		}
		if reply.TransactionID != req.TransactionID || reply.ClientHWAddr.String() != req.ClientHWAddr.String() {
			t.Fatalf("reply xid %v chaddr %v, request xid %v chaddr %v", reply.TransactionID, reply.ClientHWAddr, req.TransactionID, req.ClientHWAddr)
		}
		if mt := reply.MessageType(); mt != dhcpv4.MessageTypeOffer && mt != dhcpv4.MessageTypeAck {
			t.Fatalf("reply message type %v", mt)
		}
		if !files[reply.BootFileName] || reply.GetOneOption(dhcpv4.OptionBootfileName) == nil {
			t.Fatalf("reply boot file %q (option 67 %q)", reply.BootFileName, reply.GetOneOption(dhcpv4.OptionBootfileName))
		}
		if sid := reply.ServerIdentifier(); !sid.Equal(serverIP) {
			t.Fatalf("reply server identifier %v", sid)
		}
		back, err := dhcpv4.FromBytes(reply.ToBytes())
		if err != nil {
			t.Fatalf("reply does not parse back: %v", err)
		}
		if back.TransactionID != reply.TransactionID || back.BootFileName != reply.BootFileName {
			t.Fatalf("reply parses back as xid %v file %q", back.TransactionID, back.BootFileName)
		}
		if dst, _ := replyAddr(req, port, &net.UDPAddr{IP: net.IPv4(10, 77, 0, 9), Port: 68}, nil); dst == nil {
			t.Fatal("no address to answer to")
		}
	})
}
