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
type TFTPServer struct {
	// Open returns a file and its size; errors wrapping fs.ErrNotExist
	// become "file not found".
	Open func(name string) (io.ReadCloser, int64, error)
	// Timeout is the retransmission timeout; zero means 2 s. A client's
	// timeout option overrides it.
	Timeout time.Duration
	// Retries is how often a packet is resent before giving up; zero means 5.
	Retries int
	Log     *slog.Logger
}

// Serve answers read requests on conn until ctx ends. conn is closed when
// Serve returns.
func (s *TFTPServer) Serve(ctx context.Context, conn net.PacketConn) error {
	if s.Open == nil {
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
	buf := make([]byte, 1500)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tftp: read: %w", err)
		}
		pkt := bytes.Clone(buf[:n])
		wg.Go(func() { s.handle(ctx, log, conn.LocalAddr(), addr, pkt) })
	}
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

func (s *TFTPServer) handle(ctx context.Context, log *slog.Logger, local, remote net.Addr, p []byte) {
	laddr := &net.UDPAddr{}
	if u, ok := local.(*net.UDPAddr); ok {
		laddr.IP = u.IP
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		log.Error("tftp: transfer socket", "err", err)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	t := &transfer{conn: conn, remote: remote, timeout: s.Timeout, retries: s.Retries}
	if t.timeout <= 0 {
		t.timeout = 2 * time.Second
	}
	if t.retries <= 0 {
		t.retries = 5
	}
	if len(p) < 4 {
		return // too short to answer meaningfully
	}
	switch op := binary.BigEndian.Uint16(p); op {
	case opRRQ:
	case opWRQ:
		t.sendError(errAccess, "this server is read-only")
		return
	default:
		t.sendError(errIllegalOp, fmt.Sprintf("expected a read request, got opcode %d", op))
		return
	}
	req, err := parseRequest(p)
	if err != nil {
		t.sendError(errNotDefined, err.Error())
		return
	}
	if req.mode != "octet" {
		t.sendError(errNotDefined, fmt.Sprintf("unsupported mode %q (want octet)", req.mode))
		return
	}
	name := strings.TrimPrefix(req.name, "/")
	f, size, err := s.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.sendError(errNotFound, fmt.Sprintf("file %q not found", name))
		} else {
			log.Error("tftp: open", "name", name, "err", err)
			t.sendError(errNotDefined, "could not open the file, see the server log")
		}
		return
	}
	defer f.Close()
	log.Info("tftp: read", "remote", remote.String(), "name", name, "size", size, "options", req.options)
	if err := t.send(req, f, size); err != nil {
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
	conn    *net.UDPConn
	remote  net.Addr
	timeout time.Duration
	retries int
	blksize int
}

func (t *transfer) sendError(code uint16, msg string) {
	p := binary.BigEndian.AppendUint16(nil, opERROR)
	p = binary.BigEndian.AppendUint16(p, code)
	p = append(append(p, msg...), 0)
	t.conn.WriteTo(p, t.remote)
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
		t.timeout = time.Duration(n) * time.Second
		add("timeout", v)
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
// timeout. Packets from other addresses get an "unknown transfer ID"
// error; duplicate ACKs of earlier blocks are ignored.
func (t *transfer) exchange(p []byte, block uint16) error {
	buf := make([]byte, 1500)
	for try := 0; try <= t.retries; try++ {
		if _, err := t.conn.WriteTo(p, t.remote); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		deadline := time.Now().Add(t.timeout)
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
				e := binary.BigEndian.AppendUint16(nil, opERROR)
				e = append(binary.BigEndian.AppendUint16(e, 5), "unknown transfer ID\x00"...)
				t.conn.WriteTo(e, addr)
				continue
			}
			if n < 4 {
				continue
			}
			switch binary.BigEndian.Uint16(buf) {
			case opACK:
				if binary.BigEndian.Uint16(buf[2:]) == block {
					return nil
				}
			case opERROR:
				return &clientError{code: binary.BigEndian.Uint16(buf[2:]), msg: string(bytes.TrimRight(buf[4:n], "\x00"))}
			}
		}
	}
	return fmt.Errorf("no acknowledgement after %d tries", t.retries+1)
}
