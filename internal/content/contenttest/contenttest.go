// Package contenttest is the conformance suite of content.Blobs: every
// blob store (the local directory, S3) runs it, so the server can rely on
// the same behaviour from each.
package contenttest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// Harness gives the suite a store and a look behind it.
type Harness struct {
	// New returns a fresh, empty store, closed when t ends.
	New func(t *testing.T) content.Blobs
	// Corrupt replaces the stored bytes of blob h with data, as bitrot
	// or an edit behind the store's back would.
	Corrupt func(t *testing.T, b content.Blobs, h string, data []byte)
	// Leftovers lists whatever the backing storage holds besides blobs
	// (temp files, objects, incomplete uploads), for "a failed upload
	// leaves nothing".
	Leftovers func(t *testing.T, b content.Blobs) []string
	// Big is a size that takes the store's longest upload path (several
	// multipart parts on S3).
	Big int
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, h) })
	t.Run("Rejects", func(t *testing.T) { rejects(t, h) })
	t.Run("KilledUpload", func(t *testing.T) { killedUpload(t, h) })
	t.Run("Lookups", func(t *testing.T) { lookups(t, h) })
	t.Run("Corruption", func(t *testing.T) { corruption(t, h) })
	t.Run("Serve", func(t *testing.T) { serve(t, h) })
	t.Run("Tar", func(t *testing.T) { tarRoundTrip(t, h) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, h) })
}

// Bytes returns n random bytes.
func Bytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Sum is the hex SHA-256 of b.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func put(t *testing.T, s content.Blobs, data []byte, opts content.PutOptions) content.Blob {
	t.Helper()
	b, err := s.Put(t.Context(), bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Put %d bytes: %v", len(data), err)
	}
	return b
}

func readAll(t *testing.T, s content.Blobs, h string) []byte {
	t.Helper()
	o, err := s.Open(t.Context(), h)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if o.Size() != int64(len(got)) {
		t.Errorf("Object.Size = %d, read %d bytes", o.Size(), len(got))
	}
	if o.ModTime().IsZero() {
		t.Error("Object.ModTime is zero")
	}
	return got
}

func noLeftovers(t *testing.T, h Harness, s content.Blobs) {
	t.Helper()
	if l := h.Leftovers(t, s); len(l) > 0 {
		t.Errorf("storage holds %q besides blobs, want nothing", l)
	}
}

func blobs(t *testing.T, s content.Blobs) []content.BlobInfo {
	t.Helper()
	var out []content.BlobInfo
	if err := s.Walk(t.Context(), func(b content.BlobInfo) error { out = append(out, b); return nil }); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

func roundTrip(t *testing.T, h Harness) {
	for _, n := range []int{0, 1, 100 << 10, h.Big} {
		for _, expect := range []bool{false, true} {
			s := h.New(t)
			data := Bytes(n)
			var opts content.PutOptions
			if expect {
				opts.ExpectSHA256 = Sum(data)
			}
			b := put(t, s, data, opts)
			if want := (content.Blob{SHA256: Sum(data), Size: int64(n)}); b != want {
				t.Fatalf("size %d: Put = %+v, want %+v", n, b, want)
			}
			if st, err := s.Stat(t.Context(), b.SHA256); err != nil || st != b {
				t.Errorf("size %d: Stat = %+v, %v; want %+v", n, st, err, b)
			}
			if got := readAll(t, s, b.SHA256); !bytes.Equal(got, data) {
				t.Errorf("size %d: bytes read back differ from those put", n)
			}
			if err := s.Verify(t.Context(), b.SHA256); err != nil {
				t.Errorf("size %d: Verify: %v", n, err)
			}
			if w := blobs(t, s); len(w) != 1 || w[0].Blob != b || w[0].ModTime.IsZero() {
				t.Errorf("size %d: Walk = %+v, want just %+v with a time", n, w, b)
			}
			// The same bytes again: one blob.
			put(t, s, data, opts)
			if w := blobs(t, s); len(w) != 1 {
				t.Errorf("size %d: %d blobs after a second Put of the same bytes, want 1", n, len(w))
			}
			noLeftovers(t, h, s)
		}
	}
}

func rejects(t *testing.T, h Harness) {
	s := h.New(t)
	for _, n := range []int{10, h.Big} {
		data := Bytes(n)
		wrong := Sum([]byte("something else"))
		_, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{ExpectSHA256: wrong})
		if deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("size %d: Put with the wrong expected hash: %v, want KindInvalid", n, err)
		}
		_, err = s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{MaxSize: int64(n - 1)})
		if deploy.ErrorKind(err) != deploy.KindTooLarge {
			t.Errorf("size %d: Put over MaxSize: %v, want KindTooLarge", n, err)
		}
		for _, hh := range []string{wrong, Sum(data)} {
			if _, err := s.Stat(t.Context(), hh); !deploy.IsNotFound(err) {
				t.Errorf("size %d: Stat after rejected Puts = %v, want not found", n, err)
			}
		}
	}
	_, err := s.Put(t.Context(), bytes.NewReader(nil), content.PutOptions{ExpectSHA256: "ABC"})
	if deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("Put with a malformed expected hash: %v, want KindInvalid", err)
	}
	if w := blobs(t, s); len(w) != 0 {
		t.Errorf("blobs after rejected Puts: %+v, want none", w)
	}
	noLeftovers(t, h, s)
}

// stallReader gives n bytes, then blocks until its context ends (a client
// that stops sending), or fails (a cut connection) if ctx is nil.
type stallReader struct {
	ctx  context.Context
	r    io.Reader
	sent chan struct{}
	once sync.Once
}

var errCut = errors.New("connection reset by peer")

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.once.Do(func() { close(s.sent) })
		if s.ctx == nil {
			return n, errCut
		}
		<-s.ctx.Done()
		return n, s.ctx.Err()
	}
	return n, err
}

func killedUpload(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"cancelled", true}, {"connection cut", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := h.New(t)
			data := Bytes(h.Big)
			for _, expect := range []string{"", Sum(data)} {
				ctx, cancel := context.WithCancel(t.Context())
				sr := &stallReader{r: bytes.NewReader(data[:len(data)*3/4]), sent: make(chan struct{})}
				if tc.cancel {
					sr.ctx = ctx
				}
				done := make(chan error, 1)
				go func() {
					_, err := s.Put(ctx, sr, content.PutOptions{ExpectSHA256: expect})
					done <- err
				}()
				if tc.cancel {
					<-sr.sent
					cancel()
				}
				err := <-done
				cancel()
				if tc.cancel && !errors.Is(err, context.Canceled) {
					t.Errorf("Put cancelled mid-way: %v, want context.Canceled", err)
				}
				if !tc.cancel && !errors.Is(err, errCut) {
					t.Errorf("Put with the connection cut: %v, want the read error", err)
				}
				if w := blobs(t, s); len(w) != 0 {
					t.Errorf("blobs after a killed upload: %+v, want none", w)
				}
				noLeftovers(t, h, s)
			}
		})
	}
}

func lookups(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := t.Context()
	missing := Sum([]byte("missing"))
	if _, err := s.Stat(ctx, missing); !deploy.IsNotFound(err) {
		t.Errorf("Stat missing: %v, want not found", err)
	}
	if _, err := s.Open(ctx, missing); !deploy.IsNotFound(err) {
		t.Errorf("Open missing: %v, want not found", err)
	}
	if err := s.Verify(ctx, missing); !deploy.IsNotFound(err) {
		t.Errorf("Verify missing: %v, want not found", err)
	}
	if err := s.Remove(ctx, missing); err != nil {
		t.Errorf("Remove missing: %v, want nil", err)
	}
	for _, bad := range []string{"", "abc", "../../etc/passwd", Sum(nil)[:63] + "G", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"} {
		if _, err := s.Stat(ctx, bad); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Stat(%q): %v, want KindInvalid", bad, err)
		}
		if _, err := s.Open(ctx, bad); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Open(%q): %v, want KindInvalid", bad, err)
		}
		if err := s.Remove(ctx, bad); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Remove(%q): %v, want KindInvalid", bad, err)
		}
	}
	a, b := put(t, s, []byte("a"), content.PutOptions{}), put(t, s, []byte("b"), content.PutOptions{})
	if err := s.Remove(ctx, a.SHA256); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := s.Stat(ctx, a.SHA256); !deploy.IsNotFound(err) {
		t.Errorf("Stat after Remove: %v, want not found", err)
	}
	if w := blobs(t, s); len(w) != 1 || w[0].Blob != b {
		t.Errorf("Walk after Remove = %+v, want just %+v", w, b)
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, func(content.BlobInfo) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Walk returned %v, want fn's error", err)
	}

	// Seek and read from the middle, as a Range does.
	data := Bytes(h.Big)
	c := put(t, s, data, content.PutOptions{})
	o, err := s.Open(ctx, c.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	buf := make([]byte, 100)
	for _, off := range []int64{int64(len(data)) - 100, 7, 0} {
		if _, err := o.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(o, buf); err != nil || !bytes.Equal(buf, data[off:off+100]) {
			t.Errorf("read 100 bytes at %d: %v or wrong bytes", off, err)
		}
	}
	if n, err := o.Seek(0, io.SeekEnd); n != int64(len(data)) || err != nil {
		t.Errorf("Seek to end = %d, %v; want %d", n, err, len(data))
	}
}

func corruption(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := t.Context()
	data := Bytes(200 << 10)
	b := put(t, s, data, content.PutOptions{})
	bad := slices.Clone(data)
	bad[1000] ^= 1
	h.Corrupt(t, s, b.SHA256, bad)
	err := s.Verify(ctx, b.SHA256)
	if ce, ok := content.AsCorrupt(err); !ok || ce.SHA256 != b.SHA256 || ce.Got != Sum(bad) {
		t.Fatalf("Verify of a corrupt blob = %v, want a CorruptError naming what it hashes to", err)
	}
	if s.SetAsideBlob(ctx, b.SHA256) {
		t.Error("SetAsideBlob true before SetAside")
	}
	if err := s.SetAside(ctx, b.SHA256); err != nil {
		t.Fatalf("SetAside: %v", err)
	}
	if !s.SetAsideBlob(ctx, b.SHA256) {
		t.Error("SetAsideBlob false after SetAside")
	}
	if _, err := s.Open(ctx, b.SHA256); !deploy.IsNotFound(err) {
		t.Errorf("Open after SetAside: %v, want not found", err)
	}
	if err := s.SetAside(ctx, b.SHA256); err != nil {
		t.Errorf("SetAside of a blob no longer there: %v, want nil", err)
	}
	if w := blobs(t, s); len(w) != 0 {
		t.Errorf("Walk lists %+v after SetAside, want nothing", w)
	}
	put(t, s, data, content.PutOptions{ExpectSHA256: b.SHA256}) // the repair
	if err := s.Verify(ctx, b.SHA256); err != nil {
		t.Errorf("Verify after the repairing Put: %v", err)
	}
}

func serve(t *testing.T, h Harness) {
	s := h.New(t)
	data := Bytes(h.Big)
	b := put(t, s, data, content.PutOptions{})
	get := func(rng string) (*httptest.ResponseRecorder, bool, error) {
		o, err := s.Open(t.Context(), b.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		full, err := content.ServeBlob(w, r, o, b.SHA256, "x.bin")
		return w, full, err
	}
	w, full, err := get("")
	if err != nil || !full || w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Errorf("full GET: code %d, %d bytes, full %v, err %v; want 200, all %d bytes, checked", w.Code, w.Body.Len(), full, err, len(data))
	}
	if et := w.Header().Get("ETag"); et != `"`+b.SHA256+`"` {
		t.Errorf("ETag = %s, want the hash", et)
	}
	off := len(data) / 2
	w, full, err = get("bytes=" + itoa(off) + "-")
	if err != nil || full || w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), data[off:]) {
		t.Errorf("resumed GET: code %d, %d bytes, err %v; want 206 and the rest", w.Code, w.Body.Len(), err)
	}

	bad := slices.Clone(data)
	bad[len(bad)-1] ^= 1
	h.Corrupt(t, s, b.SHA256, bad)
	w, full, err = get("")
	if _, ok := content.AsCorrupt(err); !ok || full || w.Body.Len() >= len(data) {
		t.Errorf("GET of a corrupt blob: err %v, full %v, %d bytes sent; want a CorruptError before the last chunk", err, full, w.Body.Len())
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func tarRoundTrip(t *testing.T, h Harness) {
	s := h.New(t)
	files := map[string][]byte{"a/one.bin": Bytes(1000), "b.txt": []byte("hello"), "empty": nil, "big.bin": Bytes(h.Big)}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, name := range []string{"a/one.bin", "b.txt", "empty", "big.bin"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(files[name])), Mode: 0o644})
		tw.Write(files[name])
	}
	tw.Close()
	m, total, err := content.PutTar(t.Context(), s, bytes.NewReader(in.Bytes()), content.PutOptions{})
	if err != nil {
		t.Fatalf("PutTar: %v", err)
	}
	if len(m.Files) != 4 || total != int64(1000+5+h.Big) {
		t.Fatalf("PutTar: %d files, %d bytes; want 4, %d", len(m.Files), total, 1000+5+h.Big)
	}
	var out bytes.Buffer
	if err := content.WriteTar(t.Context(), s, &out, m); err != nil {
		t.Fatalf("WriteTar: %v", err)
	}
	tr := tar.NewReader(&out)
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tr)
		if !bytes.Equal(got, files[hdr.Name]) {
			t.Errorf("%s: bytes differ after PutTar and WriteTar", hdr.Name)
		}
		n++
	}
	if n != 4 {
		t.Errorf("WriteTar wrote %d files, want 4", n)
	}
}

func concurrent(t *testing.T, h Harness) {
	s := h.New(t)
	data := Bytes(h.Big)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Put of the same bytes: %v", err)
		}
	}
	if got := readAll(t, s, Sum(data)); !bytes.Equal(got, data) {
		t.Error("blob differs after concurrent Puts of the same bytes")
	}
	noLeftovers(t, h, s)
}
