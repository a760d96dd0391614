package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func content(t *testing.T, size int) ([]byte, *Manifest) {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	m, err := Build(context.Background(), bytes.NewReader(b), int64(size), hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

func TestManifest(t *testing.T) {
	b, m := content(t, 2*ChunkSize+100)
	if len(m.Chunks) != 3 || m.Len(2) != 100 || m.Len(0) != ChunkSize {
		t.Fatalf("manifest has %d chunks, last of %d bytes", len(m.Chunks), m.Len(2))
	}
	if err := m.Check(m.Size, m.SHA256); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(b[ChunkSize : 2*ChunkSize])
	bad[7] ^= 1
	tests := []struct {
		name string
		i    int
		data []byte
		ok   bool
	}{
		{"first chunk", 0, b[:ChunkSize], true},
		{"last, short chunk", 2, b[2*ChunkSize:], true},
		{"one bit flipped", 1, bad, false},
		{"truncated", 1, b[ChunkSize : 2*ChunkSize-1], false},
		{"another chunk's bytes", 0, b[ChunkSize : 2*ChunkSize], false},
		{"index past the end", 3, b[:100], false},
		{"negative index", -1, b[:100], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Verify(tt.i, tt.data)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
	checks := []struct {
		name string
		edit func(m *Manifest)
	}{
		{"size differs", func(m *Manifest) { m.Size++ }},
		{"sha differs", func(m *Manifest) { m.SHA256 = strings.Repeat("0", 64) }},
		{"chunk missing", func(m *Manifest) { m.Chunks = m.Chunks[:2] }},
		{"chunk not a hash", func(m *Manifest) { m.Chunks[1] = "zz" }},
		{"no chunk size", func(m *Manifest) { m.ChunkSize = 0 }},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			c := *m
			c.Chunks = append([]string(nil), m.Chunks...)
			tt.edit(&c)
			if err := c.Check(m.Size, m.SHA256); deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Fatalf("Check = %v, want invalid", err)
			}
		})
	}
	if _, err := Build(context.Background(), bytes.NewReader(b[:10]), int64(len(b)), ""); err == nil {
		t.Error("Build of short content succeeded")
	}
	if _, err := Build(context.Background(), bytes.NewReader(b), int64(len(b)), strings.Repeat("a", 64)); err == nil {
		t.Error("Build with the wrong SHA-256 succeeded")
	}
}

func TestRegistry(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	reg := &Registry{TTL: time.Minute, Now: func() time.Time { return now }}
	tok := strings.Repeat("t", 32)
	join := func(member, ip string) List {
		t.Helper()
		l, err := reg.Register("c:1", member, ip, Join{Port: 7000, Token: tok + member})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	join("a", "10.0.0.2")
	join("b", "10.0.0.3")
	join("far", "10.0.1.2")
	join("v6", "fd00::2")
	l := join("c", "::ffff:10.0.0.4")
	if l.Self.Addr != "10.0.0.4:7000" || len(l.Peers) != 2 || l.Peers[0].Addr != "10.0.0.2:7000" || l.Peers[1].Addr != "10.0.0.3:7000" {
		t.Fatalf("peers of c = %+v, want a and b on its /24, itself not among them", l)
	}
	if l.Peers[0].Token != tok+"a" {
		t.Errorf("a's token = %q", l.Peers[0].Token)
	}
	reg.Leave("c:1", "a")
	now = now.Add(30 * time.Second)
	join("b", "10.0.0.3") // renewed
	now = now.Add(45 * time.Second)
	if l := join("c", "10.0.0.4"); len(l.Peers) != 1 || l.Peers[0].Addr != "10.0.0.3:7000" {
		t.Fatalf("after a left and the others expired, c sees %+v, want only b", l.Peers)
	}
	if n := reg.Count("c:1"); n != 2 {
		t.Errorf("Count = %d, want 2 (b and c)", n)
	}
	for _, j := range []Join{{Port: 0, Token: tok}, {Port: 70000, Token: tok}, {Port: 80, Token: "short"}} {
		if _, err := reg.Register("c:1", "x", "10.0.0.9", j); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Register(%+v) = %v, want invalid", j, err)
		}
	}
	if _, err := reg.Register("c:1", "x", "not-an-ip", Join{Port: 80, Token: tok}); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("Register from a bad address = %v, want invalid", err)
	}
}

// direct is the imprint server's side of peer sharing for these tests: a
// real Registry and the content's bytes, with no HTTP between (the server
// package's tests cover the API).
type direct struct {
	reg     *Registry
	member  string
	data    []byte
	barrier *sync.WaitGroup // first Join waits for the others' first Join
	joined  bool

	mu     sync.Mutex
	served int64
}

func (d *direct) Join(ctx context.Context, j Join) (List, error) {
	if !d.joined && d.barrier != nil {
		d.joined = true
		l, err := d.reg.Register("c:1", d.member, "127.0.0.1", j)
		d.barrier.Done()
		d.barrier.Wait()
		if err != nil {
			return l, err
		}
	}
	return d.reg.Register("c:1", d.member, "127.0.0.1", j)
}

func (d *direct) Leave(ctx context.Context) error { d.reg.Leave("c:1", d.member); return nil }

func (d *direct) Chunk(ctx context.Context, off, n int64) ([]byte, error) {
	d.mu.Lock()
	d.served += n
	d.mu.Unlock()
	return bytes.Clone(d.data[off : off+n]), nil
}

func readAll(t *testing.T, r *Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two machines fetching the same content at once take each chunk from the
// server once between them.
func TestReadersShare(t *testing.T) {
	data, m := content(t, 6*ChunkSize+5)
	reg := &Registry{}
	var barrier sync.WaitGroup
	barrier.Add(2)
	srv := []*direct{{reg: reg, member: "a", data: data, barrier: &barrier}, {reg: reg, member: "b", data: data, barrier: &barrier}}
	readers := make([]*Reader, 2)
	var wg sync.WaitGroup
	for k := range srv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Open(context.Background(), Config{Manifest: m, Server: srv[k], Listen: "127.0.0.1:0", Renew: time.Hour, Log: t.Logf})
			if err != nil {
				t.Error(err)
				return
			}
			readers[k] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	outs := make([][]byte, 2)
	for k, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := io.ReadAll(r)
			if err != nil {
				t.Error(err)
			}
			outs[k] = b
		}()
	}
	wg.Wait()
	var fromServer, fromPeers int64
	for k, r := range readers {
		if !bytes.Equal(outs[k], data) {
			t.Errorf("reader %d delivered %d bytes that differ from the content", k, len(outs[k]))
		}
		p, s, refused := r.Counts()
		fromServer += s
		fromPeers += p
		if refused != 0 {
			t.Errorf("reader %d refused %d chunks from an honest peer", k, refused)
		}
		t.Logf("reader %d: %d bytes from peers, %d from the server, served %d", k, p, s, r.Served())
	}
	for _, r := range readers {
		r.Close()
	}
	if fromServer != m.Size || fromPeers != m.Size {
		t.Errorf("the server sent %d bytes and peers %d for two machines and %d bytes of content; want each chunk once from the server, once from a peer",
			fromServer, fromPeers, m.Size)
	}
	if n := reg.Count("c:1"); n != 0 {
		t.Errorf("%d peers registered after both closed", n)
	}
}

// A peer that serves a corrupted chunk is refused and not asked again;
// the chunk comes from the server and the content delivered is intact.
func TestCorruptPeerRefused(t *testing.T) {
	data, m := content(t, 3*ChunkSize)
	reg := &Registry{}
	liar := NewCache()
	for i := range m.Chunks {
		b := bytes.Clone(data[int64(i)*ChunkSize : int64(i)*ChunkSize+m.Len(i)])
		b[100] ^= 0xff
		liar.Put(i, b)
	}
	tok := strings.Repeat("L", 40)
	hs := httptest.NewServer(Handler(liar, m.SHA256, tok))
	defer hs.Close()
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	if _, err := reg.Register("c:1", "liar", "127.0.0.1", Join{Port: port, Token: tok}); err != nil {
		t.Fatal(err)
	}
	srv := &direct{reg: reg, member: "honest", data: data}
	r, err := Open(context.Background(), Config{Manifest: m, Server: srv, Listen: "127.0.0.1:0", Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r)
	r.Close()
	p, s, refused := r.Counts()
	if !bytes.Equal(got, data) {
		t.Fatal("the reader delivered bytes that differ from the content")
	}
	if refused != 1 || p != 0 || s != m.Size {
		t.Errorf("refused %d chunks, %d bytes from peers, %d from the server; want the first bad chunk refused, the liar not asked again, all %d bytes from the server",
			refused, p, s, m.Size)
	}
	if liar.Served() != ChunkSize {
		t.Errorf("the liar served %d bytes, want one chunk (%d)", liar.Served(), ChunkSize)
	}
}

// The chunk server answers only with its token, only for its content, and
// only chunks it holds.
func TestHandler(t *testing.T) {
	c := NewCache()
	c.Put(0, []byte("chunk zero"))
	sum := strings.Repeat("ab", 32)
	tok := strings.Repeat("k", 40)
	hs := httptest.NewServer(Handler(c, sum, tok))
	defer hs.Close()
	tests := []struct {
		name, path, token string
		want              int
	}{
		{"held chunk", "/peer/v1/" + sum + "/0", tok, http.StatusOK},
		{"no token", "/peer/v1/" + sum + "/0", "", http.StatusUnauthorized},
		{"wrong token", "/peer/v1/" + sum + "/0", tok[:39] + "x", http.StatusUnauthorized},
		{"other content", "/peer/v1/" + strings.Repeat("cd", 32) + "/0", tok, http.StatusNotFound},
		{"chunk not held", "/peer/v1/" + sum + "/1", tok, http.StatusNotFound},
		{"not a chunk", "/peer/v1/" + sum + "/x", tok, http.StatusNotFound},
		{"dropped chunk, waiting", "/peer/v1/" + sum + "/0?wait=1", tok, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "dropped chunk, waiting" {
				c.DropBelow(1)
			}
			req := httptest.NewRequest(http.MethodGet, hs.URL+tt.path, nil)
			req.RequestURI = ""
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want == http.StatusOK && string(body) != "chunk zero" {
				t.Errorf("body %q", body)
			}
		})
	}
}
