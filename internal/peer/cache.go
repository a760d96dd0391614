package peer

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache holds the verified chunks a machine has of one content version,
// for its own reader and for the peers it serves. Only Put adds chunks,
// and the Reader calls Put only with a chunk that matched the manifest.
type Cache struct {
	mu      sync.Mutex
	cond    chan struct{} // closed and replaced on every change
	chunks  map[int][]byte
	floor   int // chunks below floor were dropped and will not come back
	closed  bool
	served  int64
	serving int
	next    int // the chunk its reader is fetching
}

// NextHeader is the chunk server's answer header saying which chunk its
// machine is fetching: peers use it to tell who is about as far as they
// are (Reader.fetch).
const NextHeader = "Imprint-Peer-Next"

// SetNext records the chunk the reader is fetching.
func (c *Cache) SetNext(i int) {
	c.mu.Lock()
	c.next = i
	c.mu.Unlock()
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{cond: make(chan struct{}), chunks: map[int][]byte{}}
}

func (c *Cache) changed() {
	close(c.cond)
	c.cond = make(chan struct{})
}

// Put adds verified chunk i.
func (c *Cache) Put(i int, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || i < c.floor {
		return
	}
	c.chunks[i] = data
	c.changed()
}

// Get returns chunk i if the cache holds it.
func (c *Cache) Get(i int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.chunks[i]
	return b, ok
}

// Wait returns chunk i once the cache holds it, or ok false when ctx ends,
// the cache closes, or the chunk was dropped.
func (c *Cache) Wait(ctx context.Context, i int) ([]byte, bool) {
	for {
		c.mu.Lock()
		b, ok := c.chunks[i]
		gone := c.closed || i < c.floor
		ch := c.cond
		c.mu.Unlock()
		if ok {
			return b, true
		}
		if gone {
			return nil, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// DropBelow forgets the chunks below i (the reader is past them and
// keeps only a window to serve on).
func (c *Cache) DropBelow(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i <= c.floor {
		return
	}
	for k := range c.chunks {
		if k < i {
			delete(c.chunks, k)
		}
	}
	c.floor = i
	c.changed()
}

// Close empties the cache; waiting peers are answered at once.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.chunks = map[int][]byte{}
		c.changed()
	}
}

// Served is how many chunk bytes the handler sent to peers.
func (c *Cache) Served() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served
}

// MaxWait bounds how long a peer's request for a chunk not yet here waits
// for it (?wait=1).
const MaxWait = 10 * time.Second

// maxServing bounds the chunk requests served at once: a machine deploying
// must keep most of its uplink and memory for itself.
const maxServing = 16

// Handler serves the cache's chunks of the content whose SHA-256 is sum to
// whoever presents token (GET /peer/v1/{sum}/{index}, Authorization:
// Bearer token). A chunk it does not hold is 404 at once, or after up to
// MaxWait with ?wait=1 if it arrives meanwhile.
func Handler(c *Cache, sum, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, "a peer token is required", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/peer/v1/")
		s, idx, ok2 := strings.Cut(rest, "/")
		i, err := strconv.Atoi(idx)
		if !ok || !ok2 || err != nil || i < 0 {
			http.Error(w, "not a chunk path", http.StatusNotFound)
			return
		}
		if !strings.EqualFold(s, sum) {
			http.Error(w, "this peer is not fetching that content", http.StatusNotFound)
			return
		}
		c.mu.Lock()
		if c.serving >= maxServing {
			c.mu.Unlock()
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		c.serving++
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.serving--
			c.mu.Unlock()
		}()
		c.mu.Lock()
		w.Header().Set(NextHeader, strconv.Itoa(c.next))
		c.mu.Unlock()
		var b []byte
		if r.URL.Query().Get("wait") == "1" {
			ctx, cancel := context.WithTimeout(r.Context(), MaxWait)
			b, ok = c.Wait(ctx, i)
			cancel()
		} else {
			b, ok = c.Get(i)
		}
		if !ok {
			http.Error(w, "chunk not here", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		n, _ := w.Write(b)
		c.mu.Lock()
		c.served += int64(n)
		c.mu.Unlock()
	})
}
