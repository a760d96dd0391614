package pxe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TFTP opcodes and error codes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6

	errNotDefined   = 0
	errNotFound     = 1
	errAccess       = 2
	errIllegalOp    = 4
	errOptionRefuse = 8
)

const (
	defaultBlockSize = 512
	maxBlockSize     = 65464 // RFC 2348
	minBlockSize     = 8
)

// TFTPServer serves files read-only over TFTP. Each transfer runs on its
// own UDP socket (the transfer ID), as RFC 1350 requires.
//
// A request costs a socket and a goroutine only once admitted: malformed
// requests and refusals are answered from the listening socket. Transfers
// are capped in number, per source address and in lifetime, and the
// server, not the client, bounds every timeout, so a flood of (possibly
// spoofed) requests holds a bounded number of descriptors for a bounded
// time. When the global cap is reached, a new request takes the place of
// the oldest transfer whose client has not acknowledged anything yet (a
// spoofed source never does); only when every transfer has heard from its
// client is the new request refused.
type TFTPServer struct {
	// Open returns a file and its size; errors wrapping fs.ErrNotExist
	// become "file not found".
	Open func(name string) (io.ReadCloser, int64, error)
	// OpenFrom, when set, is used instead of Open and is told the client's
	// address.
	OpenFrom func(remote net.Addr, name string) (io.ReadCloser, int64, error)
	// Timeout is the retransmission timeout; zero means 2 s. A client's
	// timeout option (RFC 2349) overrides it, up to MaxTimeout.
	Timeout time.Duration
	// MaxTimeout caps the timeout a client may ask for; zero means 5 s.
	// A larger request is not acknowledged (RFC 2349 allows only the
	// value asked for in the answer) and MaxTimeout is used instead.
	MaxTimeout time.Duration
	// Retries is how often a packet is resent before giving up; zero means 5.
	Retries int
	// MaxLifetime bounds a whole transfer, however promptly its client
	// acknowledges; zero means 2 minutes (an iPXE binary is about 1 MiB).
	MaxLifetime time.Duration
	// MaxTransfers caps the transfers running at once; zero means 128.
	MaxTransfers int
	// MaxPerAddr caps the transfers running at once for one source IP
	// address; zero means 4. A request beyond it gets an ERROR packet.
	MaxPerAddr int
	Log        *slog.Logger
}

// tftpLimits are a TFTPServer's limits with the defaults filled in.
type tftpLimits struct {
	timeout, maxTimeout, lifetime time.Duration
	retries, transfers, perAddr   int
}

func (s *TFTPServer) limits() tftpLimits {
	or := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	orInt := func(n, def int) int {
		if n <= 0 {
			return def
		}
		return n
	}
	l := tftpLimits{
		timeout:    or(s.Timeout, 2*time.Second),
		maxTimeout: or(s.MaxTimeout, 5*time.Second),
		lifetime:   or(s.MaxLifetime, 2*time.Minute),
		retries:    orInt(s.Retries, 5),
		transfers:  orInt(s.MaxTransfers, 128),
		perAddr:    orInt(s.MaxPerAddr, 4),
	}
	l.timeout = min(l.timeout, l.maxTimeout)
	return l
}

// Serve answers read requests on conn until ctx ends. conn is closed when
// Serve returns.
func (s *TFTPServer) Serve(ctx context.Context, conn net.PacketConn) error {
	if s.Open == nil && s.OpenFrom == nil {
		conn.Close()
		return errors.New("tftp: Open is nil")
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	lim := s.limits()
	table := newTransferTable(lim.transfers, lim.perAddr)
	buf := make([]byte, 1500)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tftp: read: %w", err)
		}
		req, ok := checkRequest(conn, addr, buf[:n])
		if !ok {
			continue
		}
		sl, displaced, refusal := table.acquire(addrIP(addr))
		if refusal != "" {
			// Debug only: a flood of refusals must not become a flood of log lines.
			log.Debug("tftp: request refused", "remote", addr.String(), "reason", refusal)
			replyError(conn, addr, errNotDefined, refusal)
			continue
		}
		tctx, cancel := context.WithCancelCause(ctx)
		sl.cancel = func() { cancel(errDisplaced) }
		wg.Go(func() {
			defer close(sl.done) // last: after handle has closed its socket
			defer table.release(sl)
			defer cancel(nil)
			if displaced != nil {
				<-displaced // cancelled, it ends at once
			}
			s.handle(tctx, log, lim, conn, addr, req, transferHooks{
				sent:  func() { table.sent(sl) },
				heard: func() { table.confirm(sl) },
			})
		})
	}
}

// checkRequest checks a packet that came to the listening socket and
// returns the read request in it. Anything else is answered there with an
// ERROR packet (or dropped when too short to answer), without a socket of
// its own.
func checkRequest(conn net.PacketConn, remote net.Addr, p []byte) (request, bool) {
	if len(p) < 4 {
		return request{}, false // too short to answer meaningfully
	}
	switch op := binary.BigEndian.Uint16(p); op {
	case opRRQ:
	case opWRQ:
		replyError(conn, remote, errAccess, "this server is read-only")
		return request{}, false
	default:
		replyError(conn, remote, errIllegalOp, fmt.Sprintf("expected a read request, got opcode %d", op))
		return request{}, false
	}
	req, err := parseRequest(p)
	if err != nil {
		replyError(conn, remote, errNotDefined, err.Error())
		return request{}, false
	}
	if req.mode != "octet" {
		replyError(conn, remote, errNotDefined, fmt.Sprintf("unsupported mode %q (want octet)", req.mode))
		return request{}, false
	}
	return req, true
}

// addrIP is the source IP address transfers are counted by.
func addrIP(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(u.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// replyError sends an ERROR packet from conn.
func replyError(conn net.PacketConn, to net.Addr, code uint16, msg string) {
	conn.WriteTo(errorPacket(code, msg), to)
}

func errorPacket(code uint16, msg string) []byte {
	p := binary.BigEndian.AppendUint16(nil, opERROR)
	p = binary.BigEndian.AppendUint16(p, code)
	return append(append(p, msg...), 0)
}

// request is a parsed RRQ.
type request struct {
	name    string
	mode    string
	options map[string]string // lowercase names
}

func parseRequest(p []byte) (request, error) {
	fields := bytes.Split(p[2:], []byte{0})
	if len(fields) < 3 || len(fields[len(fields)-1]) != 0 {
		return request{}, errors.New("malformed request")
	}
	fields = fields[:len(fields)-1]
	r := request{name: string(fields[0]), mode: strings.ToLower(string(fields[1])), options: map[string]string{}}
	rest := fields[2:]
	if len(rest)%2 != 0 {
		return request{}, errors.New("malformed options")
	}
	for i := 0; i < len(rest); i += 2 {
		r.options[strings.ToLower(string(rest[i]))] = string(rest[i+1])
	}
	return r, nil
}

// errDisplaced ends a transfer that never heard from its client when a
// new request needs its place.
var errDisplaced = errors.New("displaced by a new request")

// handle runs one admitted transfer until it ends, ctx is cancelled (the
// transfer was displaced or the server stops) or its lifetime is over.
func (s *TFTPServer) handle(ctx context.Context, log *slog.Logger, lim tftpLimits, listen net.PacketConn, remote net.Addr, req request, hooks transferHooks) {
	name := strings.TrimPrefix(req.name, "/")
	var (
		f    io.ReadCloser
		size int64
		err  error
	)
	if s.OpenFrom != nil {
		f, size, err = s.OpenFrom(remote, name)
	} else {
		f, size, err = s.Open(name)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			replyError(listen, remote, errNotFound, fmt.Sprintf("file %q not found", name))
		} else {
			log.Error("tftp: open", "name", name, "err", err)
			replyError(listen, remote, errNotDefined, "could not open the file, see the server log")
		}
		return
	}
	defer f.Close()
	laddr := &net.UDPAddr{}
	if u, ok := listen.LocalAddr().(*net.UDPAddr); ok {
		laddr.IP = u.IP
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		log.Error("tftp: transfer socket", "err", err)
		replyError(listen, remote, errNotDefined, "server busy, try again later")
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), errDisplaced) {
			// Tell the client at once: it may start again rather than wait.
			conn.WriteTo(errorPacket(errNotDefined, "server busy, try later"), remote)
		}
		conn.Close()
	})
	defer stop()
	t := &transfer{
		conn: conn, remote: remote, timeout: lim.timeout, maxTimeout: lim.maxTimeout,
		retries: lim.retries, deadline: time.Now().Add(lim.lifetime), lifetime: lim.lifetime,
		hooks: hooks,
	}
	log.Debug("tftp: read", "remote", remote.String(), "name", name, "size", size, "options", req.options)
	err = t.send(req, f, size)
	switch {
	case err == nil:
		log.Info("tftp: sent", "remote", remote.String(), "name", name, "size", size, "options", req.options)
	case ctx.Err() != nil:
		log.Debug("tftp: transfer ended by the server", "remote", remote.String(), "name", name, "err", err)
	case !t.heard:
		// Never heard from: a lost client or a spoofed source. Not worth
		// a warning each, or a flood of them becomes a flood of log lines.
		log.Debug("tftp: client never acknowledged", "remote", remote.String(), "name", name, "err", err)
	default:
		var ce *clientError
		if errors.As(err, &ce) && ce.code == errOptionRefuse {
			// UEFI firmware asks for the size (tsize) and then ends that
			// transfer to start the real one: normal, not a failure.
			log.Debug("tftp: client ended the transfer after option negotiation", "remote", remote.String(), "name", name, "err", err)
			return
		}
		log.Warn("tftp: transfer failed", "remote", remote.String(), "name", name, "err", err)
	}
}

// clientError is an ERROR packet the client sent.
type clientError struct {
	code uint16
	msg  string
}

func (e *clientError) Error() string { return fmt.Sprintf("client error %d: %s", e.code, e.msg) }

type transfer struct {
	conn                *net.UDPConn
	remote              net.Addr
	timeout, maxTimeout time.Duration
	retries             int
	blksize             int
	deadline            time.Time     // the end of the transfer's lifetime
	lifetime            time.Duration // for the error message
	hooks               transferHooks
	started             bool // the first packet was sent
	heard               bool // the client has acknowledged something
}

// transferHooks tell the transfer table how far a transfer got.
type transferHooks struct {
	sent  func() // the first packet went out
	heard func() // the client acknowledged a packet
}

func (t *transfer) sendError(code uint16, msg string) {
	t.conn.WriteTo(errorPacket(code, msg), t.remote)
}

// negotiate applies the options the server supports and returns the OACK
// payload, or nil when no option was accepted.
func (t *transfer) negotiate(req request, size int64) ([]byte, error) {
	t.blksize = defaultBlockSize
	var oack []byte
	add := func(k, v string) { oack = append(append(append(append(oack, k...), 0), v...), 0) }
	if v, ok := req.options["blksize"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < minBlockSize {
			return nil, fmt.Errorf("blksize %q is not a number from %d to %d", v, minBlockSize, maxBlockSize)
		}
		t.blksize = min(n, maxBlockSize)
		add("blksize", strconv.Itoa(t.blksize))
	}
	if v, ok := req.options["timeout"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 255 {
			return nil, fmt.Errorf("timeout %q is not a number from 1 to 255", v)
		}
		if d := time.Duration(n) * time.Second; d <= t.maxTimeout {
			t.timeout = d
			add("timeout", v)
		} else {
			// Clamped, and so not acknowledged: RFC 2349 lets the OACK
			// carry only the value asked for, and a client that sees no
			// timeout in it keeps its own.
			t.timeout = t.maxTimeout
		}
	}
	if _, ok := req.options["tsize"]; ok && size >= 0 {
		add("tsize", strconv.FormatInt(size, 10))
	}
	return oack, nil
}

func (t *transfer) send(req request, f io.Reader, size int64) error {
	oack, err := t.negotiate(req, size)
	if err != nil {
		t.sendError(errOptionRefuse, err.Error())
		return err
	}
	if oack != nil {
		p := append(binary.BigEndian.AppendUint16(nil, opOACK), oack...)
		if err := t.exchange(p, 0); err != nil {
			return fmt.Errorf("option ack: %w", err)
		}
	}
	data := make([]byte, t.blksize)
	for block := uint16(1); ; block++ { // wraps to 0 after 65535, as clients expect
		n, err := io.ReadFull(f, data)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			t.sendError(errNotDefined, "read error, see the server log")
			return fmt.Errorf("read: %w", err)
		}
		p := binary.BigEndian.AppendUint16(nil, opDATA)
		p = binary.BigEndian.AppendUint16(p, block)
		p = append(p, data[:n]...)
		if err := t.exchange(p, block); err != nil {
			return fmt.Errorf("block %d: %w", block, err)
		}
		if n < t.blksize {
			return nil
		}
	}
}

// exchange sends p until the client acknowledges block, resending on
// timeout, at most retries times and never past the transfer's lifetime.
// Packets from other addresses get an "unknown transfer ID" error;
// duplicate ACKs of earlier blocks are ignored.
func (t *transfer) exchange(p []byte, block uint16) error {
	buf := make([]byte, 1500)
	for try := 0; try <= t.retries; try++ {
		if !time.Now().Before(t.deadline) {
			t.sendError(errNotDefined, fmt.Sprintf("transfer took longer than %v, abandoned", t.lifetime))
			return fmt.Errorf("lifetime of %v over", t.lifetime)
		}
		if _, err := t.conn.WriteTo(p, t.remote); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if !t.started {
			t.started = true
			t.hooks.sent()
		}
		deadline := time.Now().Add(t.timeout)
		if deadline.After(t.deadline) {
			deadline = t.deadline
		}
		for {
			t.conn.SetReadDeadline(deadline)
			n, addr, err := t.conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // resend
				}
				return fmt.Errorf("receive: %w", err)
			}
			if addr.String() != t.remote.String() {
				t.conn.WriteTo(errorPacket(5, "unknown transfer ID"), addr)
				continue
			}
			if n < 4 {
				continue
			}
			switch binary.BigEndian.Uint16(buf) {
			case opACK:
				if binary.BigEndian.Uint16(buf[2:]) == block {
					if !t.heard {
						t.heard = true
						t.hooks.heard()
					}
					return nil
				}
			case opERROR:
				return &clientError{code: binary.BigEndian.Uint16(buf[2:]), msg: string(bytes.TrimRight(buf[4:n], "\x00"))}
			}
		}
	}
	if !time.Now().Before(t.deadline) {
		t.sendError(errNotDefined, fmt.Sprintf("transfer took longer than %v, abandoned", t.lifetime))
		return fmt.Errorf("lifetime of %v over", t.lifetime)
	}
	t.sendError(errNotDefined, fmt.Sprintf("no acknowledgement after %d tries, abandoned", t.retries+1))
	return fmt.Errorf("no acknowledgement after %d tries", t.retries+1)
}
