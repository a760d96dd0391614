//go:build s3 && linux

package cli_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/content/s3store/s3test"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// weed is the SeaweedFS S3 server the tests of this package share
// (started on first use).
var weed = s3test.New()

func TestMain(m *testing.M) {
	code := m.Run()
	weed.Close()
	os.Exit(code)
}

// cutProxy forwards TCP to an S3 server and, once cutAt bytes went
// upstream, cuts every connection and refuses new ones until up: a
// network that fails in the middle of an upload.
type cutProxy struct {
	ln     net.Listener
	target string
	cutAt  atomic.Int64 // 0: never
	sent   atomic.Int64

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			u.Close()
			continue
		}
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := u.Write(buf[:n]); werr != nil {
						break
					}
					if at := p.cutAt.Load(); at > 0 && p.sent.Add(int64(n)) >= at {
						p.cut()
						break
					}
				}
				if err != nil {
					break
				}
			}
			u.Close()
		}()
		go func() { io.Copy(c, u); c.Close() }()
	}
}

// cut closes every connection and refuses new ones.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up lets connections through again, without a cut to come.
func (p *cutProxy) up() {
	p.cutAt.Store(0)
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestMigrateContentToS3 moves a data directory's database and content to
// a SeaweedFS bucket while the network to it fails in the middle of the
// large blob (a multipart upload of two 16 MiB parts): the command fails
// saying how to resume, no object but complete blobs is in the bucket and
// the new database was not written; run again, it copies what is missing,
// and the bucket then holds exactly the referenced blobs, each hashing to
// its name.
func TestMigrateContentToS3(t *testing.T) {
	weed.Start(t)
	bucket := weed.Bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", weed.Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", weed.Secret)
	site := seedContent(t, 20<<20)
	proxy := startCutProxy(t, weed.Endpoint)
	url := "s3://" + bucket + "?endpoint=http://" + proxy.ln.Addr().String() + "&region=us-east-1"
	newDir := t.TempDir()
	args := []string{"--from", "sqlite:" + site.dir, "--to", "sqlite:" + newDir, "--content-to", url}

	proxy.cutAt.Store(8 << 20)
	code, out := migrate(t, args...)
	if code != 1 || !strings.Contains(out, "run the same command again to resume") {
		t.Fatalf("migrate over a cut connection: exit %d, want 1 saying to run it again:\n%s", code, out)
	}
	t.Logf("the cut run says:\n%s", out)
	if proxy.sent.Load() < 8<<20 {
		t.Fatalf("the connection was not cut: %d bytes sent", proxy.sent.Load())
	}
	store, err := s3store.Open(t.Context(), weed.Config(bucket), s3store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, k := range weed.Keys(t, bucket) {
		h := strings.TrimPrefix(k, "sha256/")
		h = h[strings.LastIndexByte(h, '/')+1:]
		if data, ok := site.blobs[h]; !ok || !strings.HasPrefix(k, "sha256/") {
			t.Errorf("after the cut the bucket holds %s, which is no complete blob", k)
		} else if err := store.Verify(t.Context(), h); err != nil {
			t.Errorf("after the cut blob %s (%d bytes) does not verify: %v", h, len(data), err)
		}
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(newDir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := db.ContentItems(t.Context())
	db.Close()
	if err != nil || len(items) != 0 {
		t.Errorf("a migrate stopped in the content wrote the new database: %d items (%v)", len(items), err)
	}

	proxy.up()
	code, out = migrate(t, args...)
	if code != 0 || !strings.Contains(out, "every table matches") || !strings.Contains(out, "all 2 present") {
		t.Fatalf("resumed migrate: exit %d:\n%s", code, out)
	}
	got := weed.Keys(t, bucket)
	var want []string
	for _, h := range site.hashes() {
		want = append(want, store.Key(h))
		if err := store.Verify(t.Context(), h); err != nil {
			t.Errorf("blob %s in the bucket: %v", h, err)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("bucket holds %q, want exactly the referenced blobs %q", got, want)
	}
	if _, err := weed.Client.StatObject(t.Context(), bucket, store.Key(site.orphan), minio.StatObjectOptions{}); err == nil {
		t.Errorf("the unreferenced blob %s was copied", site.orphan)
	}

	code, out = migrate(t, "--from", "sqlite:"+site.dir, "--content-to", url)
	if code != 0 || !strings.Contains(out, "0 copied") || !strings.Contains(out, "2 already there") {
		t.Errorf("migrate again: exit %d, want 0 copying nothing:\n%s", code, out)
	}
}
