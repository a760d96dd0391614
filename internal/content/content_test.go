package content_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

func newStore(t testing.TB) *content.Store {
	t.Helper()
	s, err := content.Open(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// files lists the regular files under dir/sub, relative to dir.
func files(t testing.TB, dir, sub string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", sub, err)
	}
	return out
}

// assertEmpty fails unless the store holds no blobs and no temp files.
func assertEmpty(t testing.TB, s *content.Store) {
	t.Helper()
	if got := files(t, s.Dir(), "sha256"); len(got) != 0 {
		t.Errorf("blobs stored: %v", got)
	}
	if got := files(t, s.Dir(), "tmp"); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
}

func wantKind(t testing.TB, err error, kind deploy.Kind) {
	t.Helper()
	if got := deploy.ErrorKind(err); got != kind {
		t.Fatalf("error kind = %q, want %q (err: %v)", got, kind, err)
	}
}

func TestPutRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(t, 3<<20+17) // several copy buffers
	b, err := s.Put(ctx, bytes.NewReader(data), content.PutOptions{})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	want := content.Blob{SHA256: sum(data), Size: int64(len(data))}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("Put blob (-want +got):\n%s", diff)
	}
	st, err := s.Stat(ctx, b.SHA256)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("Stat (-want +got):\n%s", diff)
	}
	f, err := s.Open(ctx, b.SHA256)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("content read back differs from content put")
	}
	wantPath := filepath.Join(s.Dir(), "sha256", b.SHA256[:2], b.SHA256)
	if p := s.Path(b.SHA256); p != wantPath {
		t.Errorf("Path = %q, want %q", p, wantPath)
	}
	fi, err := os.Stat(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o400 {
		t.Errorf("blob mode = %v, want owner read-only 0400", fi.Mode().Perm())
	}
	if got := files(t, s.Dir(), "tmp"); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
}

func TestPutEmpty(t *testing.T) {
	s := newStore(t)
	b, err := s.Put(t.Context(), strings.NewReader(""), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := content.Blob{SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPutDedup(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(t, 100_000)
	b1, err := s.Put(ctx, bytes.NewReader(data), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.Put(ctx, bytes.NewReader(data), content.PutOptions{ExpectSHA256: b1.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b1, b2); diff != "" {
		t.Errorf("second Put (-first +second):\n%s", diff)
	}
	want := []string{"sha256/" + b1.SHA256[:2] + "/" + b1.SHA256}
	if diff := cmp.Diff(want, files(t, s.Dir(), "sha256")); diff != "" {
		t.Errorf("stored files (-want +got):\n%s", diff)
	}
	if got := files(t, s.Dir(), "tmp"); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
}

func TestPutExpectSHA256Mismatch(t *testing.T) {
	s := newStore(t)
	data := []byte("the wrong bytes")
	_, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{ExpectSHA256: sum([]byte("the right bytes"))})
	wantKind(t, err, deploy.KindInvalid)
	if !strings.Contains(err.Error(), "mismatch") || !strings.Contains(err.Error(), sum(data)) {
		t.Errorf("error %q should say mismatch and name the actual hash", err)
	}
	assertEmpty(t, s)
}

func TestPutBadExpectSHA256(t *testing.T) {
	s := newStore(t)
	_, err := s.Put(t.Context(), strings.NewReader("x"), content.PutOptions{ExpectSHA256: "ABC"})
	wantKind(t, err, deploy.KindInvalid)
	assertEmpty(t, s)
}

func TestPutMaxSize(t *testing.T) {
	tests := map[string]struct {
		size, max int64
		wantKind  deploy.Kind
	}{
		"below limit":   {size: 99, max: 100},
		"at limit":      {size: 100, max: 100},
		"one over":      {size: 101, max: 100, wantKind: deploy.KindTooLarge},
		"far over":      {size: 5 << 20, max: 1 << 20, wantKind: deploy.KindTooLarge},
		"zero no limit": {size: 5000, max: 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			data := randomBytes(t, int(tt.size))
			_, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{MaxSize: tt.max})
			if got := deploy.ErrorKind(err); got != tt.wantKind {
				t.Fatalf("kind = %q, want %q (err %v)", got, tt.wantKind, err)
			}
			if tt.wantKind != "" {
				assertEmpty(t, s)
			}
		})
	}
}

// cancelReader returns n bytes, then cancels its context before handing out more.
type cancelReader struct {
	data   []byte
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.n <= 0 {
		c.cancel()
		// A real reader would keep going; Put must stop on its own.
	}
	k := min(len(p), len(c.data), 64<<10)
	copy(p, c.data[:k])
	c.data = c.data[k:]
	c.n -= k
	return k, nil
}

func TestPutCancelMidStream(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancelReader{data: randomBytes(t, 4<<20), n: 256 << 10, cancel: cancel}
	_, err := s.Put(ctx, r, content.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put error = %v, want context.Canceled", err)
	}
	if len(r.data) == 0 {
		t.Errorf("Put read the whole stream after cancellation")
	}
	assertEmpty(t, s)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestPutReadError(t *testing.T) {
	s := newStore(t)
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("some bytes"), errReader{boom})
	_, err := s.Put(t.Context(), r, content.PutOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("Put error = %v, want it to wrap %v", err, boom)
	}
	assertEmpty(t, s)

	// A domain error from the reader (say, a body limit) keeps its kind.
	_, err = s.Put(t.Context(), errReader{deploy.Errorf(deploy.KindTooLarge, "body too large")}, content.PutOptions{})
	wantKind(t, err, deploy.KindTooLarge)
	assertEmpty(t, s)
}

func TestBadHashes(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	good := sum([]byte("x"))
	bad := map[string]string{
		"traversal":    "../../etc/passwd",
		"uppercase":    strings.ToUpper(good),
		"short":        good[:63],
		"long":         good + "0",
		"empty":        "",
		"non-hex":      strings.Repeat("g", 64),
		"slash":        good[:10] + "/" + good[11:],
		"padded":       " " + good[1:],
		"traversal 64": "../" + good[3:],
		"nul":          good[:63] + "\x00",
	}
	for name, h := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := s.Stat(ctx, h)
			wantKind(t, err, deploy.KindInvalid)
			_, err = s.Open(ctx, h)
			wantKind(t, err, deploy.KindInvalid)
			wantKind(t, s.Remove(ctx, h), deploy.KindInvalid)
			_, err = s.Put(ctx, strings.NewReader("x"), content.PutOptions{ExpectSHA256: h})
			if h != "" {
				wantKind(t, err, deploy.KindInvalid)
			}
			if p := s.Path(h); p != "" {
				t.Errorf("Path(%q) = %q, want empty", h, p)
			}
			if content.ValidHash(h) {
				t.Errorf("ValidHash(%q) = true", h)
			}
		})
	}
	if !content.ValidHash(good) {
		t.Errorf("ValidHash(%q) = false", good)
	}
}

func TestMissingAndRemove(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	missing := sum([]byte("never stored"))
	_, err := s.Stat(ctx, missing)
	wantKind(t, err, deploy.KindNotFound)
	_, err = s.Open(ctx, missing)
	wantKind(t, err, deploy.KindNotFound)
	if err := s.Remove(ctx, missing); err != nil {
		t.Errorf("Remove missing: %v, want nil", err)
	}

	b, err := s.Put(ctx, strings.NewReader("to be removed"), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, b.SHA256); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	_, err = s.Stat(ctx, b.SHA256)
	wantKind(t, err, deploy.KindNotFound)
	// Stored again after removal: published afresh.
	if _, err := s.Put(ctx, strings.NewReader("to be removed"), content.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, b.SHA256); err != nil {
		t.Errorf("Stat after re-Put: %v", err)
	}
}

func TestOpenIdempotentAndCleans(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s1, err := content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s1.Put(t.Context(), strings.NewReader("kept"), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()
	for _, n := range []string{"put-aaaa", "put-bbbb"} {
		if err := os.WriteFile(filepath.Join(dir, "tmp", n), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Cleaned != 2 {
		t.Errorf("Cleaned = %d, want 2", s2.Cleaned)
	}
	if got := files(t, dir, "tmp"); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
	if _, err := s2.Stat(t.Context(), b.SHA256); err != nil {
		t.Errorf("blob lost on reopen: %v", err)
	}
	s3, err := content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if s3.Cleaned != 0 {
		t.Errorf("third Open Cleaned = %d, want 0", s3.Cleaned)
	}
}

func TestWalk(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	var want []string
	for _, c := range []string{"a", "b", "c"} {
		b, err := s.Put(ctx, strings.NewReader(c), content.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b.SHA256)
	}
	// A stray file is not a blob.
	if err := os.WriteFile(filepath.Join(s.Dir(), "sha256", "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.Walk(ctx, func(bi content.BlobInfo) error {
		if bi.Size != 1 || bi.ModTime.IsZero() {
			t.Errorf("blob %s: size %d, mtime %v", bi.SHA256, bi.Size, bi.ModTime)
		}
		got = append(got, bi.SHA256)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("Walk (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	slices.Sort(out)
	return out
})

// repeatReader yields n bytes by repeating buf, with the first 8 bytes
// replaced by seed so that each benchmark iteration stores a new blob.
type repeatReader struct {
	buf  []byte
	seed uint64
	off  int64
	n    int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := copy(p, r.buf[r.off%int64(len(r.buf)):])
	k = int(min(int64(k), r.n-r.off))
	if r.off == 0 && k >= 8 {
		binary.LittleEndian.PutUint64(p, r.seed)
	}
	r.off += int64(k)
	return k, nil
}

// BenchmarkPut compares Put (hash + temp file + fsync + rename + dir fsync)
// with a plain io.Copy to a file plus fsync, for 256 MiB. Run with
//
//	go test -run '^$' -bench Put -benchtime 3x ./internal/content/
func BenchmarkPut(b *testing.B) {
	const size = 256 << 20
	buf := randomBytes(b, 1<<20)
	b.Run("baseline-copy", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(size)
		for i := range b.N {
			f, err := os.Create(filepath.Join(dir, "plain"))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, &repeatReader{buf: buf, seed: uint64(i), n: size}); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("put", func(b *testing.B) {
		s := newStore(b)
		b.SetBytes(size)
		for i := range b.N {
			blob, err := s.Put(b.Context(), &repeatReader{buf: buf, seed: uint64(i), n: size}, content.PutOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := s.Remove(b.Context(), blob.SHA256); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

func TestPutConcurrentSameContent(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 3<<20)
	const n = 8
	errs := make(chan error, n)
	hashes := make(chan string, n)
	for range n {
		go func() {
			b, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{})
			errs <- err
			hashes <- b.SHA256
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Put: %v", err)
		}
		if h := <-hashes; h != sum(data) {
			t.Errorf("concurrent Put hash = %s, want %s", h, sum(data))
		}
	}
	if got := files(t, s.Dir(), "sha256"); len(got) != 1 {
		t.Errorf("stored files = %v, want exactly one", got)
	}
	if got := files(t, s.Dir(), "tmp"); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
	f, err := s.Open(t.Context(), sum(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, data) {
		t.Errorf("stored content differs")
	}
}

func TestPutCancelledBeforeStart(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, strings.NewReader("x"), content.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put error = %v, want context.Canceled", err)
	}
	assertEmpty(t, s)
}
