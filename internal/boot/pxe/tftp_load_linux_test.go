package pxe_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/boot/pxe"
)

// TestTFTPFlood is the load test of issue 9: 10,000 read requests, from 200
// source ports on eight loopback addresses, whose senders never answer
// (as spoofed sources cannot). Before the caps every request held a socket
// for (retries+1) x timeout and the descriptors ran out; now the server's
// sockets stay under MaxTransfers and a real download made in the middle of
// the flood completes. Linux only: it counts descriptors in /proc/self/fd
// and uses 127.0.0.x addresses.
func TestTFTPFlood(t *testing.T) {
	const (
		requests  = 10000
		addrs     = 8
		portsEach = 25
		bound     = 3 * time.Second // the issue asks for 1 s; margin for a loaded 2-core machine
	)
	file := strings.Repeat("imprint!", 10000) // 80,000 bytes, the size of undionly.kpxe
	tests := []struct {
		name string
		srv  *pxe.TFTPServer
	}{
		// The per-address cap turns away all but 4 x 8 of the requests.
		{"defaults", &pxe.TFTPServer{}},
		// As if every request came from an address of its own: the global
		// cap holds, and new requests displace unanswered transfers.
		{"no per-address cap", &pxe.TFTPServer{MaxPerAddr: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := startTFTPServer(t, tt.srv, map[string]string{"undionly.kpxe": file})
			var senders []*net.UDPConn
			for a := range addrs {
				for range portsEach {
					c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+a))})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
					senders = append(senders, c)
				}
			}
			baseline := openFDs(t)
			var peak atomic.Int64
			stopSampling := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if n := int64(openFDs(t)); n > peak.Load() {
						peak.Store(n)
					}
					select {
					case <-stopSampling:
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
			}()

			var sent atomic.Int64
			var flood sync.WaitGroup
			packet := rrq("undionly.kpxe", "octet", "blksize", "1468")
			flood.Go(func() {
				// 10,000 a second, so that the server reads them rather
				// than the kernel dropping most of a burst.
				start := time.Now()
				for i := range requests {
					if ahead := time.Until(start.Add(time.Duration(i) * time.Second / requests)); ahead > time.Millisecond {
						time.Sleep(ahead)
					}
					senders[i%len(senders)].WriteToUDP(packet, server)
					sent.Add(1)
				}
			})
			for sent.Load() < requests/5 {
				time.Sleep(time.Millisecond)
			}
			began, sentBefore := time.Now(), sent.Load()
			got, err := retryingGet(server, "undionly.kpxe", 10*time.Second)
			took, sentDuring := time.Since(began), sent.Load()-sentBefore
			flood.Wait()
			time.Sleep(50 * time.Millisecond) // let the last requests be admitted
			close(stopSampling)
			<-sampled

			if err != nil {
				t.Fatalf("real download during the flood: %v", err)
			}
			if got != file {
				t.Fatalf("real download got %d bytes, want %d", len(got), len(file))
			}
			t.Logf("%d requests from %d ports: a real download took %v (%d flood packets sent meanwhile); descriptors %d -> peak %d",
				requests, len(senders), took.Round(time.Millisecond), sentDuring, baseline, peak.Load())
			if took > bound {
				t.Errorf("real download took %v during the flood, want under %v", took, bound)
			}
			// The server's sockets: at most MaxTransfers (128 by default), the
			// real client's and the sampler's own.
			if extra := int(peak.Load()) - baseline; extra > 128+4 {
				t.Errorf("descriptors rose by %d during the flood, want at most 128 transfers and a few more", extra)
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(d)
}

// retryingGet downloads name as a PXE client does under load: it resends
// its last packet when nothing comes within 100 ms and starts over (on a new
// port) when the server says it is busy or the transfer goes silent.
func retryingGet(server *net.UDPAddr, name string, limit time.Duration) (string, error) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		data, err := getOnce(server, name, end)
		if err == nil {
			return data, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", errors.New("no complete download in time")
}

func getOnce(server *net.UDPAddr, name string, end time.Time) (string, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	last, to := rrq(name, "octet", "blksize", "1468"), server
	var peer *net.UDPAddr
	var data []byte
	next, blksize := uint16(1), 512
	buf := make([]byte, 2000)
	for silent := 0; silent < 8 && time.Now().Before(end); {
		if _, err := conn.WriteToUDP(last, to); err != nil {
			return "", err
		}
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			silent++
			continue
		}
		if peer == nil && from.Port != server.Port {
			peer = from
		}
		if n < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(buf) {
		case 6: // OACK
			if bytes.Contains(buf[2:n], []byte("blksize\x001468\x00")) {
				blksize = 1468
			}
			last, to = ack(0), peer
		case 3:
			if binary.BigEndian.Uint16(buf[2:]) != next {
				continue // a resend of an earlier block
			}
			data = append(data, buf[4:n]...)
			last, to = ack(next), peer
			if n-4 < blksize {
				conn.WriteToUDP(last, to)
				return string(data), nil
			}
			next++
		case 5:
			return "", fmt.Errorf("server error: %s", buf[4:n-1])
		}
	}
	return "", errors.New("transfer went silent")
}
