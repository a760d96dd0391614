// Package netlimit bounds what network clients can hold on a server: how
// many connections one address and all addresses together may keep open,
// which connections give way first when the server is full, and how long a
// transfer that makes no progress may keep one.
//
// A Listener wraps a net.Listener. It refuses a connection beyond the
// per-address cap, and when the global cap is reached it closes the
// connection that has been idle (or silent since it was accepted) the
// longest to make room; connections that carried an authenticated request
// are never chosen. Part of the global cap is kept for addresses that
// authenticated recently (Vouch), so machines already deploying keep
// working while strangers hold everything else.
//
// Listeners of one process may share a Budget: a cap on the connections
// they hold together, with the same eviction and reserve, since the
// open-file limit it protects is the process's, not a port's.
package netlimit

import (
	"container/list"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what a Listener enforces. Zero values switch a limit off.
type Config struct {
	// MaxConns is the most connections held at once.
	MaxConns int
	// Reserve is the part of MaxConns only vouched addresses may use.
	Reserve int
	// PerAddr is the most connections one source address may hold.
	PerAddr int
	// Exempt addresses have no per-address cap (trusted proxies, which
	// carry many clients); they still count towards MaxConns.
	Exempt []netip.Prefix
	// WriteStall fails a write that makes no progress for this long: a
	// client that stops reading a response loses its connection, one that
	// reads slowly keeps it for as long as bytes flow.
	WriteStall time.Duration
	// Vouched holds the addresses that authenticated recently; shared by
	// every listener of a server. Nil: no address is vouched for.
	Vouched *AddrSet
	// Budget caps the connections of every listener that shares it,
	// together; MaxConns still caps each. Nil: this listener's own.
	Budget *Budget
}

// Budget is a cap on the connections several listeners hold together.
// When it is full, a new connection takes the place of the longest idle
// unauthenticated one of its own listener, else of another listener of
// the budget, else it is refused. Listeners of a budget share its lock.
type Budget struct {
	max, reserve int

	mu      sync.Mutex
	held    int
	peak    int
	members []*Listener // every listener that shares the budget, first first
}

// NewBudget is a budget of max connections (0: no cap), reserve of them
// only for vouched addresses.
func NewBudget(max, reserve int) *Budget {
	return &Budget{max: max, reserve: reserve}
}

// BudgetStats counts what a Budget holds.
type BudgetStats struct {
	Max  int // the cap, 0: none
	Held int // connections open now, every listener together
	Peak int // most held at once
}

// Stats reports the counters.
func (b *Budget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Max: b.max, Held: b.held, Peak: b.peak}
}

// evictLocked unregisters the longest idle connection of l, else of
// another listener of b, which the caller closes; nil when every
// connection is busy or protected.
func (b *Budget) evictLocked(l *Listener) *Conn {
	if c := l.evictLocked(); c != nil {
		return c
	}
	for _, m := range b.members {
		if m == l {
			continue
		}
		if c := m.evictLocked(); c != nil {
			return c
		}
	}
	return nil
}

// room is how many connections a cap of max with reserve lets an address
// hold.
func room(max, reserve int, vouched bool) int {
	if vouched {
		return max
	}
	return max - reserve
}

// Stats counts what a Listener did.
type Stats struct {
	Held      int   // connections open now
	Peak      int   // most held at once
	Accepted  int64 // connections handed to the server
	Refused   int64 // closed at once: the address or the server was full
	Evicted   int64 // idle connections closed to make room
	Protected int   // held connections that carried an authenticated request
}

// Listener is a net.Listener with connection caps. Hand ConnState and
// ConnContext to the http.Server that serves it.
type Listener struct {
	net.Listener
	cfg Config
	now func() time.Time
	b   *Budget // cfg.Budget or one of its own; its mu guards what follows

	byAddr map[netip.Addr]int
	idle   list.List // *Conn that are idle or not yet active, oldest first
	stats  Stats
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg Config) *Listener {
	b := cfg.Budget
	if b == nil {
		b = NewBudget(0, 0)
	}
	l := &Listener{Listener: ln, cfg: cfg, now: time.Now, b: b, byAddr: map[netip.Addr]int{}}
	b.mu.Lock()
	b.members = append(b.members, l)
	b.mu.Unlock()
	return l
}

// Accept waits for a connection the limits allow. Connections over a limit
// are closed here (with a reset, so the server keeps no TIME_WAIT state for
// them) and never reach the server.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// admit registers c or reports nil when it must be refused.
func (l *Listener) admit(c net.Conn) *Conn {
	addr := addrOf(c.RemoteAddr())
	lc := &Conn{Conn: c, l: l, addr: addr, stall: l.cfg.WriteStall}
	var victim *Conn
	b := l.b
	b.mu.Lock()
	if l.cfg.PerAddr > 0 && addr.IsValid() && l.byAddr[addr] >= l.cfg.PerAddr && !l.exempt(addr) {
		l.stats.Refused++
		b.mu.Unlock()
		return nil
	}
	vouched := (l.cfg.MaxConns > 0 || b.max > 0) && l.cfg.Vouched.Has(addr, l.now())
	// When full, the newcomer takes a victim's place: one victim makes
	// room under both caps.
	ownFull := l.cfg.MaxConns > 0 && l.stats.Held >= room(l.cfg.MaxConns, l.cfg.Reserve, vouched)
	if ownFull || b.max > 0 && b.held >= room(b.max, b.reserve, vouched) {
		if ownFull {
			victim = l.evictLocked()
		} else {
			victim = b.evictLocked(l)
		}
		if victim == nil {
			l.stats.Refused++
			b.mu.Unlock()
			return nil
		}
	}
	if addr.IsValid() {
		l.byAddr[addr]++
	}
	l.stats.Held++
	l.stats.Accepted++
	l.stats.Peak = max(l.stats.Peak, l.stats.Held)
	b.held++
	b.peak = max(b.peak, b.held)
	lc.elem = l.idle.PushBack(lc) // silent until its first request
	b.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
	}
	return lc
}

// evictLocked unregisters the connection idle the longest, which the
// caller closes; nil when every connection is busy or protected.
func (l *Listener) evictLocked() *Conn {
	e := l.idle.Front()
	if e == nil {
		return nil
	}
	c := e.Value.(*Conn)
	l.releaseLocked(c)
	l.stats.Evicted++
	return c
}

func (l *Listener) exempt(a netip.Addr) bool {
	for _, p := range l.cfg.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// releaseLocked forgets c; it is called once per connection.
func (l *Listener) releaseLocked(c *Conn) {
	if c.released {
		return
	}
	c.released = true
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
	if c.protected {
		l.stats.Protected--
	}
	if c.addr.IsValid() {
		if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
			delete(l.byAddr, c.addr)
		}
	}
	l.stats.Held--
	l.b.held--
}

// Stats reports the counters.
func (l *Listener) Stats() Stats {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	return l.stats
}

// ConnState is the http.Server hook that tells which connections are idle.
func (l *Listener) ConnState(nc net.Conn, st http.ConnState) {
	c := connOf(nc)
	if c == nil || c.l != l {
		return
	}
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if c.released {
		return
	}
	switch st {
	case http.StateNew: // in the list since Accept
	case http.StateIdle:
		if c.elem == nil && !c.protected {
			c.elem = l.idle.PushBack(c)
		}
	default: // active, hijacked or closed: not a candidate
		if c.elem != nil {
			l.idle.Remove(c.elem)
			c.elem = nil
		}
	}
}

type ctxKey struct{}

// ConnContext is the http.Server hook that lets Vouch find a request's
// connection.
func (l *Listener) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	if c := connOf(nc); c != nil {
		return context.WithValue(ctx, ctxKey{}, c)
	}
	return ctx
}

// Vouch records that the request of ctx authenticated: its connection is
// never evicted and its address may use the reserve until ttl passes. A
// context from any other server is ignored.
func Vouch(ctx context.Context, ttl time.Duration) {
	c, _ := ctx.Value(ctxKey{}).(*Conn)
	if c == nil {
		return
	}
	l := c.l
	l.cfg.Vouched.Add(c.addr, l.now().Add(ttl))
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if c.released || c.protected {
		return
	}
	c.protected = true
	l.stats.Protected++
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
}

// Conn is a connection of a Listener.
type Conn struct {
	net.Conn
	l     *Listener
	addr  netip.Addr
	stall time.Duration

	// guarded by l.b.mu
	elem      *list.Element
	released  bool
	protected bool

	closeOnce sync.Once
	outer     atomic.Int64 // write deadline set by the server, UnixNano; 0: none
	armed     atomic.Int64 // write deadline last set on the socket, UnixNano
}

// Close closes the connection and frees its place.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.l.b.mu.Lock()
		c.l.releaseLocked(c)
		c.l.b.mu.Unlock()
	})
	return c.Conn.Close()
}

// progressChunk is the progress a client must make per WriteStall: it
// must take 64 KiB per stall (about 1 KiB/s with the server's default of a
// minute), however large the write.
const progressChunk = 64 << 10

// Write writes p, failing when the client does not take progressChunk
// bytes within WriteStall.
func (c *Conn) Write(p []byte) (n int, err error) {
	if c.stall <= 0 {
		return c.Conn.Write(p)
	}
	for len(p) > 0 {
		k := min(len(p), progressChunk)
		c.arm()
		m, err := c.Conn.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// arm sets the socket's write deadline to WriteStall from now (or the
// server's own deadline when that is sooner). It is set again only when it
// has moved by an eighth of WriteStall, which keeps timer updates rare
// while bytes flow.
func (c *Conn) arm() {
	if c.stall <= 0 {
		return
	}
	now := time.Now()
	d := now.Add(c.stall).UnixNano()
	if o := c.outer.Load(); o != 0 && o < d {
		d = o
	}
	if a := c.armed.Load(); a != 0 && a <= d && a-now.UnixNano() >= int64(c.stall-c.stall/8) {
		return
	}
	c.armed.Store(d)
	c.Conn.SetWriteDeadline(time.Unix(0, d))
}

// SetWriteDeadline records the server's deadline; Write combines it with
// WriteStall.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.setOuter(t)
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines (see SetWriteDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	c.setOuter(t)
	return c.Conn.SetDeadline(t)
}

func (c *Conn) setOuter(t time.Time) {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	c.outer.Store(n)
	c.armed.Store(n)
}

// ReadFrom keeps the kernel's sendfile for plain-HTTP downloads while
// still cutting a stalled client: it sends in chunks and moves the
// deadline between them.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok || c.stall <= 0 {
		return io.Copy(writerOnly{c}, r)
	}
	src, remain := r, int64(-1)
	if lr, ok := r.(*io.LimitedReader); ok {
		src, remain = lr.R, lr.N
		defer func() { lr.N = remain }()
	}
	var total int64
	for remain != 0 {
		chunk := int64(progressChunk)
		if remain > 0 && remain < chunk {
			chunk = remain
		}
		c.arm()
		n, err := rf.ReadFrom(&io.LimitedReader{R: src, N: chunk})
		total += n
		if remain > 0 {
			remain -= n
		}
		if err != nil || n < chunk {
			return total, err
		}
	}
	return total, nil
}

// CloseWrite lets the server finish a response before closing.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type writerOnly struct{ io.Writer }

// connOf finds the *Conn under a server's view of a connection.
func connOf(nc net.Conn) *Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*Conn)
	return c
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
