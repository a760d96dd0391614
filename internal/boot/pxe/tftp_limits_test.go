package pxe_test

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/boot/pxe"
)

// big is a file of 40 blocks of 512 bytes and a last, empty one.
var big = strings.Repeat("0123456789abcdef", 40*32)

// start sends a read request for big and waits for DATA 1, without
// acknowledging it: a transfer the server has not heard back from.
func (c *client) start(server *net.UDPAddr, opts ...string) {
	c.t.Helper()
	c.send(rrq("big", "octet", opts...), server)
	if op, body := c.recv(); op != 3 || binary.BigEndian.Uint16(body) != 1 {
		c.t.Fatalf("got opcode %d %q, want DATA 1", op, body)
	}
}

// wantError reads one packet and fails unless it is an ERROR with msg.
func (c *client) wantError(msg string) {
	c.t.Helper()
	op, body := c.recv()
	if op != 5 {
		c.t.Fatalf("got opcode %d, want ERROR %q", op, msg)
	}
	if got := string(body[2 : len(body)-1]); got != msg {
		c.t.Fatalf("got ERROR %q, want %q", got, msg)
	}
}

// silent reports whether nothing arrives within d, after dropping what
// is already queued.
func (c *client) silent(d time.Duration) bool {
	buf := make([]byte, 70000)
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, _, err := c.conn.ReadFromUDP(buf); err != nil {
			break
		}
	}
	c.conn.SetReadDeadline(time.Now().Add(d))
	_, _, err := c.conn.ReadFromUDP(buf)
	return err != nil
}

// TestTFTPPerAddressCap: the MaxPerAddr+1th transfer from one address is
// refused with an ERROR packet from the listening socket (no transfer
// socket is opened for it); another address is still served.
func TestTFTPPerAddressCap(t *testing.T) {
	server := startTFTPServer(t, &pxe.TFTPServer{Timeout: time.Second, MaxPerAddr: 2}, map[string]string{"big": big})
	for range 2 {
		newClientAt(t, "127.0.0.2").start(server)
	}
	third := newClientAt(t, "127.0.0.2")
	third.send(rrq("big", "octet"), server)
	third.wantError("too many transfers from this address")
	if third.peer.String() != server.String() {
		t.Errorf("refusal came from %v, want the listening socket %v", third.peer, server)
	}
	if got, _ := newClientAt(t, "127.0.0.3").get(server, "big"); got != big {
		t.Errorf("another address got %d bytes, want %d", len(got), len(big))
	}
}

// TestTFTPGlobalCap: with MaxTransfers running, a new request displaces the
// oldest transfer whose client never answered (as a spoofed source never
// does), and is refused only when every client has answered.
func TestTFTPGlobalCap(t *testing.T) {
	t.Run("every client answered: refused", func(t *testing.T) {
		server := startTFTPServer(t, &pxe.TFTPServer{Timeout: time.Second, MaxTransfers: 2}, map[string]string{"big": big})
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			c := newClientAt(t, ip)
			c.start(server)
			c.send(ack(1), c.peer)
			if op, body := c.recv(); op != 3 || binary.BigEndian.Uint16(body) != 2 {
				t.Fatalf("got opcode %d %q, want DATA 2", op, body)
			}
		}
		c := newClientAt(t, "127.0.0.4")
		c.send(rrq("big", "octet"), server)
		c.wantError("server busy, try later")
	})
	t.Run("a client never answered: displaced", func(t *testing.T) {
		timeout := 200 * time.Millisecond
		server := startTFTPServer(t, &pxe.TFTPServer{Timeout: timeout, MaxTransfers: 2}, map[string]string{"big": big})
		oldest := newClientAt(t, "127.0.0.2")
		oldest.start(server)
		newClientAt(t, "127.0.0.3").start(server)
		if got, _ := newClientAt(t, "127.0.0.4").get(server, "big"); got != big {
			t.Errorf("new client got %d bytes, want %d", len(got), len(big))
		}
		// A live transfer resends DATA 1 every timeout; a displaced one is
		// gone. A resend already on its way when it was displaced may still
		// arrive on a loaded machine: let it land (silent drains it first).
		time.Sleep(timeout)
		if !oldest.silent(3 * timeout) {
			t.Errorf("the oldest unanswered transfer still sends after it was displaced")
		}
	})
}

// TestTFTPStalledClientReaped: a client that asks for a 255 s timeout and
// then stops acknowledging gets the server's maximum timeout instead, is
// abandoned after Retries resends with an ERROR packet, and its place is
// free again. Unclamped, the first resend would come after 255 s.
func TestTFTPStalledClientReaped(t *testing.T) {
	const retries = 2
	server := startTFTPServer(t, &pxe.TFTPServer{
		Timeout: 100 * time.Millisecond, MaxTimeout: 100 * time.Millisecond, Retries: retries, MaxPerAddr: 1,
	}, map[string]string{"big": big})
	c := newClientAt(t, "127.0.0.2")
	c.start(server, "timeout", "255") // clamped, so no OACK: DATA 1 comes at once
	for range retries {
		if op, body := c.recv(); op != 3 || binary.BigEndian.Uint16(body) != 1 {
			t.Fatalf("got opcode %d %q, want DATA 1 again", op, body)
		}
	}
	c.wantError("no acknowledgement after 3 tries, abandoned")
	// The place is released just after the ERROR is sent: allow for that.
	for try := 0; ; try++ {
		n := newClientAt(t, "127.0.0.2")
		n.send(rrq("big", "octet"), server)
		op, body := n.recv()
		if op == 3 {
			break
		}
		if try == 50 {
			t.Fatalf("the address's place was not released: opcode %d %q", op, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTFTPLifetime: a client that acknowledges every block, but slowly,
// cannot keep a transfer beyond MaxLifetime.
func TestTFTPLifetime(t *testing.T) {
	server := startTFTPServer(t, &pxe.TFTPServer{Timeout: time.Second, MaxLifetime: 300 * time.Millisecond}, map[string]string{"big": big})
	c := newClient(t)
	c.send(rrq("big", "octet"), server)
	blocks := 0
	for {
		op, body := c.recv()
		if op == 5 {
			if got, want := string(body[2:len(body)-1]), "transfer took longer than 300ms, abandoned"; got != want {
				t.Fatalf("got ERROR %q, want %q", got, want)
			}
			break
		}
		if op != 3 {
			t.Fatalf("got opcode %d, want DATA or ERROR", op)
		}
		if blocks++; len(body)-2 < 512 {
			t.Fatalf("the transfer completed (%d blocks, 20 ms apart) despite a 300 ms lifetime", blocks)
		}
		time.Sleep(20 * time.Millisecond)
		c.send(ack(binary.BigEndian.Uint16(body)), c.peer)
	}
	if blocks < 2 {
		t.Errorf("only %d blocks before the lifetime ended, want several", blocks)
	}
}
