// Package s3test runs a real S3-compatible server for tests: SeaweedFS's
// `weed server -s3` (Apache-2.0), on loopback ports in a temporary
// directory, with one access key. It is built from the Go module proxy by
// scripts/weed.sh into bin/tools/weed (make deps runs it); IMPRINT_WEED
// names another binary. A missing binary skips a test run by hand and
// fails it under IMPRINT_TEST_REQUIRE (internal/testenv).
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// Weed is one SeaweedFS server, started on first use and shared by the
// tests of a package: TestMain creates it with New and closes it after
// m.Run.
type Weed struct {
	once sync.Once
	err  error // why it did not start
	skip bool  // err is a missing binary

	dir      string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	log      bytes.Buffer
	Endpoint string // host:port of the S3 API
	Access   string
	Secret   string
	Client   *minio.Client
}

// New returns a server that starts when a test first needs it.
func New() *Weed { return &Weed{} }

// Binary is the weed to run: $IMPRINT_WEED, else bin/tools/weed in the
// repository, else weed on PATH; "" if none.
func Binary() string {
	if p := os.Getenv("IMPRINT_WEED"); p != "" {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				p := filepath.Join(d, "bin", "tools", "weed")
				if _, err := os.Stat(p); err == nil {
					return p
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p
	}
	return ""
}

// Start returns the running server, starting it if needed, or ends t: a
// missing binary through testenv.Missing, a failed start with Fatal.
func (w *Weed) Start(t testing.TB) *Weed {
	t.Helper()
	w.once.Do(func() { w.err = w.start() })
	if w.err != nil {
		if w.skip {
			testenv.Missing(t, "%v", w.err)
		}
		t.Fatalf("start SeaweedFS: %v", w.err)
	}
	return w
}

func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (w *Weed) start() error {
	bin := Binary()
	if bin == "" {
		w.skip = true
		return errors.New("weed (SeaweedFS) is not built: run scripts/weed.sh (make deps does), or set IMPRINT_WEED")
	}
	dir, err := os.MkdirTemp("", "imprint-weed-")
	if err != nil {
		return err
	}
	w.dir = dir
	w.Access, w.Secret = "imprint-test", rand.Text()
	conf := map[string]any{"identities": []any{map[string]any{
		"name":        "imprint",
		"credentials": []any{map[string]string{"accessKey": w.Access, "secretKey": w.Secret}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), b, 0o600); err != nil {
		return err
	}
	// Grpc ports are picked apart: weed's default (port+10000) could
	// collide with another test's server.
	p, err := freePorts(8)
	if err != nil {
		return err
	}
	args := []string{"server", "-s3",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + dir,
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]),
		"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
		"-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
		"-s3.port=" + strconv.Itoa(p[6]), "-s3.port.grpc=" + strconv.Itoa(p[7]),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config=" + filepath.Join(dir, "s3.json"),
		"-master.telemetry=false", // it would call an outside host
		"-master.volumeSizeLimitMB=256", "-volume.max=0",
	}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Dir = dir
	w.cmd.Stdout, w.cmd.Stderr = &syncWriter{b: &w.log}, &syncWriter{b: &w.log}
	w.cmd.SysProcAttr = sysProcAttr()
	if err := w.cmd.Start(); err != nil {
		w.cmd = nil
		return fmt.Errorf("run %s: %w", bin, err)
	}
	w.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(w.cmd, w.exited)
	w.Endpoint = "127.0.0.1:" + strconv.Itoa(p[6])
	w.Client, err = minio.New(w.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(w.Access, w.Secret, "")})
	if err != nil {
		w.Close()
		return err
	}
	// Ready when a bucket can be made and written to: the S3 gateway is
	// up and the filer has a volume to write into.
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last = w.probe(ctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-w.exited:
			w.Close()
			return fmt.Errorf("weed exited: %v\n%s", last, tail(w.log.String(), 3000))
		case <-time.After(300 * time.Millisecond):
		}
	}
	w.Close()
	return fmt.Errorf("not ready after 90 s: %v\n%s", last, tail(w.log.String(), 3000))
}

func (w *Weed) probe(ctx context.Context) error {
	const b = "imprint-ready"
	if err := w.Client.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
		if r := minio.ToErrorResponse(err); r.Code != "BucketAlreadyOwnedByYou" && r.Code != "BucketAlreadyExists" {
			return err
		}
	}
	_, err := w.Client.PutObject(ctx, b, "probe", strings.NewReader("ok"), 2, minio.PutObjectOptions{})
	return err
}

// Bucket makes a fresh, empty bucket for t.
func (w *Weed) Bucket(t testing.TB) string {
	t.Helper()
	name := "t-" + strings.ToLower(rand.Text())[:20]
	if err := w.Client.MakeBucket(t.Context(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return name
}

// Config is an s3store.Config for bucket on this server.
func (w *Weed) Config(bucket string) s3store.Config {
	return s3store.Config{Bucket: bucket, Endpoint: w.Endpoint, Region: "us-east-1", AccessKey: w.Access, SecretKey: w.Secret}
}

// URL is the --content URL of bucket on this server.
func (w *Weed) URL(bucket string) string {
	return "s3://" + bucket + "?endpoint=http://" + w.Endpoint + "&region=us-east-1"
}

// Store opens an s3store.Store on a fresh bucket, closed when t ends.
func (w *Weed) Store(t testing.TB, opts s3store.Options) *s3store.Store {
	t.Helper()
	w.Start(t)
	s, err := s3store.Open(t.Context(), w.Config(w.Bucket(t)), opts)
	if err != nil {
		t.Fatalf("open s3 store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Keys lists every object key in bucket.
func (w *Weed) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range w.Client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list objects: %v", o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// Uploads lists the incomplete multipart uploads in bucket.
func (w *Weed) Uploads(t testing.TB, bucket string) []string {
	t.Helper()
	var keys []string
	for u := range w.Client.ListIncompleteUploads(t.Context(), bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads: %v", u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys
}

// Close stops the server and removes its directory.
func (w *Weed) Close() {
	if w.cmd != nil {
		w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			w.cmd.Process.Kill()
			<-w.exited
		}
		w.cmd = nil
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
		w.dir = ""
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		s.b.Reset()
	}
	return s.b.Write(p)
}
