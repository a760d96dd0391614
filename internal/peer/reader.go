package peer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Server is what a Reader needs of the imprint server for one content
// version (the agent adapts *client.Machine to it).
type Server interface {
	// Join registers, or renews, this machine's chunk server and returns
	// the other machines fetching the version on its subnet.
	Join(ctx context.Context, j Join) (List, error)
	// Leave ends the registration.
	Leave(ctx context.Context) error
	// Chunk fetches n bytes from byte off (an HTTP Range request).
	Chunk(ctx context.Context, off, n int64) ([]byte, error)
}

// Config configures a Reader. Manifest and Server are required.
type Config struct {
	Manifest *Manifest
	Server   Server
	// Listen is the chunk server's address (":0" when empty: every
	// interface, a free port).
	Listen string
	// Ahead is how many chunks the reader fetches ahead of what it
	// delivered (4); Keep how many delivered chunks it keeps to serve on
	// (12). Memory is (Ahead+Keep) × ChunkSize.
	Ahead, Keep int
	// Renew is how often the registration is renewed and the peer list
	// read again (1 s: machines that start together soon see the same
	// list, and so agree whose turn each chunk is).
	Renew time.Duration
	// Wait bounds the wait for the peer whose turn it is to fetch a chunk
	// from the server (MaxWait).
	Wait time.Duration
	// Client fetches from peers (nil: a plain HTTP client that uses no
	// proxy).
	Client *http.Client
	// Log receives one line per notable event (may be nil).
	Log func(format string, args ...any)
}

// Reader delivers a content version in order, chunk by chunk: from a peer
// that has the chunk, else — when it is another peer's turn to fetch it
// from the server — from that peer once it has it, else from the server.
// Every chunk is checked against the manifest before it is delivered or
// served on; a peer that sent a bad chunk is not asked again and the chunk
// is fetched elsewhere. While it reads, the Reader serves the chunks it
// holds to the other peers.
type Reader struct {
	cfg   Config
	m     *Manifest
	cache *Cache
	token string
	ln    net.Listener
	hs    *http.Server

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	moved   chan struct{} // closed and replaced when next moves
	next    int           // first chunk not yet delivered
	err     error         // why the fetcher stopped
	self    Peer
	peers   []Peer
	renewed time.Time
	bad     map[string]bool // sent a chunk that failed verification
	late    map[string]int  // turns a peer let time out

	pos  int64 // bytes delivered
	peek []byte

	// fromPeers and fromServer count the verified chunk bytes fetched from
	// each; refused counts chunks from peers that failed verification.
	fromPeers, fromServer int64
	refused               int
}

// Open registers with the server, starts the chunk server and the fetcher.
func Open(ctx context.Context, cfg Config) (*Reader, error) {
	if cfg.Manifest == nil || cfg.Server == nil {
		return nil, errors.New("peer reader: manifest and server are required")
	}
	if cfg.Listen == "" {
		cfg.Listen = ":0"
	}
	if cfg.Ahead <= 0 {
		cfg.Ahead = 4
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 12
	}
	if cfg.Renew <= 0 {
		cfg.Renew = time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = MaxWait
	}
	if cfg.Client == nil {
		// Peers are on the LAN: never through a proxy from the environment.
		cfg.Client = &http.Client{Timeout: cfg.Wait + 10*time.Second, Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: cfg.Wait + 5*time.Second,
		}}
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("peer token: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("peer chunk server: %w", err)
	}
	r := &Reader{cfg: cfg, m: cfg.Manifest, cache: NewCache(), token: hex.EncodeToString(tok), ln: ln,
		moved: make(chan struct{}), done: make(chan struct{}), bad: map[string]bool{}, late: map[string]int{}}
	r.ctx, r.cancel = context.WithCancel(ctx)
	if err := r.renew(true); err != nil {
		ln.Close()
		r.cancel()
		return nil, err
	}
	r.hs = &http.Server{Handler: Handler(r.cache, r.m.SHA256, r.token), ReadHeaderTimeout: 10 * time.Second}
	go r.hs.Serve(ln) //nolint:errcheck // ends with Close
	go r.fetchLoop()
	return r, nil
}

// Addr is where the chunk server listens.
func (r *Reader) Addr() net.Addr { return r.ln.Addr() }

// Served is how many bytes the chunk server sent to peers.
func (r *Reader) Served() int64 { return r.cache.Served() }

// renew registers again when the last registration is older than Renew
// (or always when force); a failure keeps the previous list, and only
// the first registration's failure is returned.
func (r *Reader) renew(force bool) error {
	r.mu.Lock()
	stale := force || time.Since(r.renewed) >= r.cfg.Renew
	r.mu.Unlock()
	if !stale {
		return nil
	}
	_, port, _ := net.SplitHostPort(r.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	l, err := r.cfg.Server.Join(r.ctx, Join{Port: p, Token: r.token})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renewed = time.Now()
	if err != nil {
		if force {
			return fmt.Errorf("join peers: %w", err)
		}
		r.cfg.Log("Peer list: %v; keeping the last one", err)
		return nil
	}
	if len(l.Peers) != len(r.peers) {
		r.cfg.Log("Peer sharing: %d other machines on this subnet (this one serves on %s)", len(l.Peers), l.Self.Addr)
	}
	r.self, r.peers = l.Self, l.Peers
	return nil
}

// Read implements io.Reader: the bytes of verified chunks, in order.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.m.Size {
		return 0, io.EOF
	}
	if len(r.peek) == 0 {
		i := int(r.pos / r.m.ChunkSize)
		b, ok := r.cache.Wait(r.ctx, i)
		if !ok {
			r.mu.Lock()
			err := r.err
			r.mu.Unlock()
			if err == nil {
				err = r.ctx.Err()
			}
			if err == nil {
				err = deploy.Errorf(deploy.KindInternal, "chunk %d was dropped before it was read", i)
			}
			return 0, err
		}
		r.peek = b[r.pos-int64(i)*r.m.ChunkSize:]
	}
	n := copy(p, r.peek)
	r.peek = r.peek[n:]
	r.pos += int64(n)
	if len(r.peek) == 0 {
		next := int(r.pos / r.m.ChunkSize)
		if r.pos == r.m.Size {
			next = len(r.m.Chunks)
		}
		r.mu.Lock()
		r.next = next
		close(r.moved)
		r.moved = make(chan struct{})
		r.mu.Unlock()
		r.cache.DropBelow(next - r.cfg.Keep)
	}
	return n, nil
}

// Close stops the fetcher and the chunk server and leaves the peer list.
func (r *Reader) Close() error {
	r.cancel()
	<-r.done
	r.cache.Close()
	r.hs.Close()
	r.cfg.Client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.cfg.Server.Leave(ctx)
}

func (r *Reader) fetchLoop() {
	defer close(r.done)
	for i := range r.m.Chunks {
		for {
			r.mu.Lock()
			ahead := i < r.next+r.cfg.Ahead
			moved := r.moved
			r.mu.Unlock()
			if ahead {
				break
			}
			select {
			case <-moved:
			case <-r.ctx.Done():
				return
			}
		}
		b, err := r.fetch(i)
		if err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			r.cancel()
			return
		}
		r.cache.Put(i, b)
	}
}

// fetch gets chunk i: from a peer that has it, from the peer whose turn
// it is once it has it, else from the server.
func (r *Reader) fetch(i int) ([]byte, error) {
	_ = r.renew(false)
	r.cache.SetNext(i)
	r.mu.Lock()
	peers := slices.Clone(r.peers)
	self := r.self
	r.mu.Unlock()
	if len(peers) > 0 {
		// Ask those who may have it, starting at a different peer for each
		// chunk so no one peer serves everyone. Their answers say how far
		// each has got.
		near := []Peer{self}
		for k := range peers {
			p := peers[(i+k)%len(peers)]
			b, next, ok := r.fromPeer(p, i, false)
			if ok {
				return b, nil
			}
			// A peer about as far as this one takes its turn; one far
			// behind would keep us waiting, one past i dropped it.
			r.mu.Lock()
			late := r.late[p.Addr] >= maxLate
			r.mu.Unlock()
			if next >= 0 && next <= i && next >= i-turnSlack && !late {
				near = append(near, p)
			}
		}
		if owner := ownerOf(i, near); owner.Addr != self.Addr {
			if b, _, ok := r.fromPeer(owner, i, true); ok {
				return b, nil
			}
			r.mu.Lock()
			r.late[owner.Addr]++
			r.mu.Unlock()
			r.cfg.Log("Peer %s did not send chunk %d within %s; fetching it from the server", owner.Addr, i, r.cfg.Wait)
		}
	}
	if r.ctx.Err() != nil {
		return nil, r.ctx.Err()
	}
	b, err := r.cfg.Server.Chunk(r.ctx, int64(i)*r.m.ChunkSize, r.m.Len(i))
	if err != nil {
		return nil, fmt.Errorf("chunk %d from the server: %w", i, err)
	}
	if err := r.m.Verify(i, b); err != nil {
		return nil, fmt.Errorf("chunk %d from the server: %w", i, err)
	}
	r.mu.Lock()
	r.fromServer += int64(len(b))
	r.mu.Unlock()
	return b, nil
}

// turnSlack is how many chunks behind a peer may be and still take its
// turn to fetch a chunk from the server.
const turnSlack = 4

// maxLate is how many of its turns a peer may let time out before it is
// not waited for again (a stalled or lying peer costs at most this many
// waits).
const maxLate = 3

// ownerOf is the machine whose turn it is to fetch chunk i from the
// server: the members (this machine and the peers about as far as it),
// sorted by address, take the chunks in turn. Machines that see the same
// members agree without talking.
func ownerOf(i int, members []Peer) Peer {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b Peer) int { return compareAddr(a.Addr, b.Addr) })
	return members[i%len(members)]
}

// fromPeer asks p for chunk i (waiting up to Wait for it when wait) and
// returns it if it matches the manifest; next is the chunk p is fetching
// (-1 when it did not say). A chunk that does not match is refused and p
// is not asked again.
func (r *Reader) fromPeer(p Peer, i int, wait bool) (_ []byte, next int, ok bool) {
	next = -1
	r.mu.Lock()
	bad := r.bad[p.Addr]
	r.mu.Unlock()
	if bad || r.ctx.Err() != nil {
		return nil, next, false
	}
	u := "http://" + p.Addr + "/peer/v1/" + r.m.SHA256 + "/" + strconv.Itoa(i)
	if wait {
		u += "?wait=1"
	}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return nil, next, false
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return nil, next, false
	}
	defer resp.Body.Close()
	if n, err := strconv.Atoi(resp.Header.Get(NextHeader)); err == nil && n >= 0 {
		next = n
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, next, false
	}
	want := r.m.Len(i)
	b, err := io.ReadAll(io.LimitReader(resp.Body, want+1))
	if err != nil {
		return nil, next, false
	}
	if err := r.m.Verify(i, b); err != nil {
		r.mu.Lock()
		r.bad[p.Addr] = true
		r.refused++
		r.mu.Unlock()
		r.cfg.Log("Refused chunk %d from peer %s: %v; not asking it again", i, p.Addr, err)
		return nil, -1, false
	}
	r.mu.Lock()
	r.fromPeers += int64(len(b))
	r.mu.Unlock()
	return b, next, true
}

// Counts returns the bytes fetched from peers and from the server and the
// chunks refused, safe to call while the reader runs.
func (r *Reader) Counts() (peers, server int64, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fromPeers, r.fromServer, r.refused
}
