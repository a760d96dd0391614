package pxe_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/boot/pxe"
)

// startTFTP serves files on 127.0.0.1 and returns the server address.
func startTFTP(t *testing.T, files map[string]string) *net.UDPAddr {
	t.Helper()
	return startTFTPServer(t, &pxe.TFTPServer{Timeout: 200 * time.Millisecond}, files)
}

// startTFTPServer serves files with srv (its Open is set here) on
// 127.0.0.1 and returns the server address.
func startTFTPServer(t *testing.T, srv *pxe.TFTPServer, files map[string]string) *net.UDPAddr {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Open = func(name string) (io.ReadCloser, int64, error) {
		data, ok := files[name]
		if !ok {
			return nil, 0, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
		}
		return io.NopCloser(strings.NewReader(data)), int64(len(data)), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn.LocalAddr().(*net.UDPAddr)
}

// client is a minimal TFTP reader for the tests.
type client struct {
	t    *testing.T
	conn *net.UDPConn
	peer *net.UDPAddr // the transfer ID once the server answers
}

func newClient(t *testing.T) *client {
	t.Helper()
	return newClientAt(t, "127.0.0.1")
}

// newClientAt is a client on ip, one of the loopback addresses 127.0.0.x
// (Linux answers on all of 127/8 without configuration).
func newClientAt(t *testing.T, ip string) *client {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn}
}

func rrq(name, mode string, opts ...string) []byte {
	p := binary.BigEndian.AppendUint16(nil, 1)
	for _, s := range append([]string{name, mode}, opts...) {
		p = append(append(p, s...), 0)
	}
	return p
}

func ack(block uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 4), block)
}

func (c *client) send(p []byte, to *net.UDPAddr) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(p, to); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one packet (10 s safety deadline, never asserted on) and
// returns its opcode and the rest.
func (c *client) recv() (uint16, []byte) {
	c.t.Helper()
	buf := make([]byte, 70000)
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	if c.peer == nil {
		c.peer = from
	}
	return binary.BigEndian.Uint16(buf), bytes.Clone(buf[2:n])
}

// get reads name with the given options, acknowledging every block, and
// returns the data and the OACK options (nil when none).
func (c *client) get(server *net.UDPAddr, name string, opts ...string) (string, map[string]string) {
	c.t.Helper()
	c.send(rrq(name, "octet", opts...), server)
	var data []byte
	var oack map[string]string
	blksize := 512
	next := uint16(1)
	for {
		op, body := c.recv()
		switch op {
		case 6:
			oack = map[string]string{}
			f := bytes.Split(bytes.TrimSuffix(body, []byte{0}), []byte{0})
			for i := 0; i+1 < len(f); i += 2 {
				oack[string(f[i])] = string(f[i+1])
			}
			if v, ok := oack["blksize"]; ok {
				fmt.Sscan(v, &blksize)
			}
			c.send(ack(0), c.peer)
		case 3:
			block := binary.BigEndian.Uint16(body)
			if block != next {
				c.t.Fatalf("got block %d, want %d", block, next)
			}
			data = append(data, body[2:]...)
			c.send(ack(block), c.peer)
			next++
			if len(body)-2 < blksize {
				return string(data), oack
			}
		case 5:
			c.t.Fatalf("server error %d: %s", binary.BigEndian.Uint16(body), body[2:])
		default:
			c.t.Fatalf("unexpected opcode %d", op)
		}
	}
}

func TestTFTPRead(t *testing.T) {
	files := map[string]string{
		"empty":         "",
		"small":         "hello",
		"exact512":      strings.Repeat("x", 512),
		"undionly.kpxe": strings.Repeat("0123456789abcdef", 5000),
	}
	server := startTFTP(t, files)
	tests := []struct {
		name     string
		file     string
		opts     []string
		wantOACK map[string]string
	}{
		{"empty file", "empty", nil, nil},
		{"small", "small", nil, nil},
		{"exact block multiple ends with empty block", "exact512", nil, nil},
		{"many blocks", "undionly.kpxe", nil, nil},
		{"leading slash", "/small", nil, nil},
		{"blksize and tsize", "undionly.kpxe", []string{"blksize", "1468", "tsize", "0"}, map[string]string{"blksize": "1468", "tsize": "80000"}},
		{"blksize capped", "small", []string{"BLKSIZE", "70000"}, map[string]string{"blksize": "65464"}},
		{"timeout", "small", []string{"timeout", "3"}, map[string]string{"timeout": "3"}},
		{"timeout at the server's maximum", "small", []string{"timeout", "5"}, map[string]string{"timeout": "5"}},
		// RFC 2349 lets an OACK carry only the value asked for: a clamped
		// timeout is left out, and the server uses its maximum (5 s).
		{"timeout over the server's maximum not acknowledged", "small", []string{"timeout", "255", "tsize", "0"}, map[string]string{"tsize": "5"}},
		{"clamped timeout alone sends no OACK", "small", []string{"timeout", "255"}, nil},
		{"unknown option ignored", "small", []string{"windowsize", "4"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, oack := newClient(t).get(server, tt.file, tt.opts...)
			if want := files[strings.TrimPrefix(tt.file, "/")]; got != want {
				t.Errorf("got %d bytes, want %d", len(got), len(want))
			}
			if diff := cmp.Diff(tt.wantOACK, oack); diff != "" {
				t.Errorf("OACK (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTFTPErrors(t *testing.T) {
	server := startTFTP(t, map[string]string{"small": "hello"})
	wrq := rrq("small", "octet")
	wrq[1] = 2
	tests := []struct {
		name     string
		packet   []byte
		wantCode uint16
		wantMsg  string
	}{
		{"missing file", rrq("nope", "octet"), 1, `file "nope" not found`},
		{"write request", wrq, 2, "this server is read-only"},
		{"netascii", rrq("small", "netascii"), 0, `unsupported mode "netascii" (want octet)`},
		{"bad blksize", rrq("small", "octet", "blksize", "4"), 8, `blksize "4" is not a number from 8 to 65464`},
		{"bad timeout", rrq("small", "octet", "timeout", "0"), 8, `timeout "0" is not a number from 1 to 255`},
		{"ack as request", ack(1), 4, "expected a read request, got opcode 4"},
		{"no terminator", []byte("\x00\x01small\x00octet"), 0, "malformed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t)
			c.send(tt.packet, server)
			op, body := c.recv()
			if op != 5 {
				t.Fatalf("opcode %d, want ERROR", op)
			}
			got := struct {
				Code uint16
				Msg  string
			}{binary.BigEndian.Uint16(body), string(bytes.TrimSuffix(body[2:], []byte{0}))}
			if diff := cmp.Diff(struct {
				Code uint16
				Msg  string
			}{tt.wantCode, tt.wantMsg}, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTFTPRetransmit drops the first DATA packet (no ACK) and expects the
// same block again, then finishes the transfer.
func TestTFTPRetransmit(t *testing.T) {
	server := startTFTP(t, map[string]string{"small": "hello"})
	c := newClient(t)
	c.send(rrq("small", "octet"), server)
	op1, first := c.recv()
	op2, again := c.recv() // no ACK sent: the server must resend
	if op1 != 3 || op2 != 3 || !bytes.Equal(first, again) {
		t.Fatalf("got %d %q then %d %q, want the same DATA twice", op1, first, op2, again)
	}
	// A stranger on the transfer port gets "unknown transfer ID" and does not disturb it.
	stranger := newClient(t)
	stranger.send(ack(1), c.peer)
	if op, body := stranger.recv(); op != 5 || binary.BigEndian.Uint16(body) != 5 {
		t.Errorf("stranger got opcode %d %q, want ERROR 5", op, body)
	}
	c.send(ack(1), c.peer)
}

func TestTFTPServeNeedsOpen(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := (&pxe.TFTPServer{}).Serve(context.Background(), conn); err == nil || !strings.Contains(err.Error(), "Open is nil") {
		t.Errorf("Serve error %v, want one naming Open", err)
	}
}
