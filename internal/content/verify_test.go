package content_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// corrupt flips the last byte of blob h.
func corrupt(t *testing.T, s *content.Store, h string) {
	t.Helper()
	p := s.Path(h)
	os.Chmod(p, 0o600)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(p, b, 0o400); err != nil {
		t.Fatal(err)
	}
}

func TestServeBlobVerifiesWhatItSends(t *testing.T) {
	data := randomBytes(t, 300<<10)
	tests := []struct {
		name     string
		method   string
		rng      string
		corrupt  bool
		full     bool
		wantErr  bool
		wantBody int // bytes the client receives at most
	}{
		{name: "full GET", method: "GET", full: true, wantBody: len(data)},
		{name: "HEAD", method: "HEAD"},
		{name: "range", method: "GET", rng: "bytes=10-99", wantBody: 90},
		{name: "open range to the end", method: "GET", rng: "bytes=0-", full: true, wantBody: len(data)},
		{name: "corrupt full GET", method: "GET", corrupt: true, wantErr: true, wantBody: len(data) - 1},
		{name: "corrupt, range before the damage", method: "GET", rng: "bytes=0-99", corrupt: true, wantBody: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			b, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.corrupt {
				corrupt(t, s, b.SHA256)
			}
			f, err := s.Open(t.Context(), b.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := httptest.NewRequest(tc.method, "/x", nil)
			if tc.rng != "" {
				r.Header.Set("Range", tc.rng)
			}
			w := httptest.NewRecorder()
			full, err := content.ServeBlob(w, r, f, b.SHA256, "x.bin")
			if _, ok := content.AsCorrupt(err); ok != tc.wantErr || (err != nil && !tc.wantErr) {
				t.Fatalf("ServeBlob error = %v, want corrupt %v", err, tc.wantErr)
			}
			if full != tc.full {
				t.Errorf("full = %v, want %v", full, tc.full)
			}
			if w.Body.Len() > tc.wantBody || (!tc.wantErr && w.Body.Len() != tc.wantBody) {
				t.Errorf("sent %d bytes, want %d", w.Body.Len(), tc.wantBody)
			}
		})
	}
}

func TestServeBlobTruncatedToNothing(t *testing.T) {
	s := newStore(t)
	b, _ := s.Put(t.Context(), bytes.NewReader([]byte("not empty")), content.PutOptions{})
	os.Chmod(s.Path(b.SHA256), 0o600)
	os.Truncate(s.Path(b.SHA256), 0)
	f, _ := s.Open(t.Context(), b.SHA256)
	defer f.Close()
	w := httptest.NewRecorder()
	if _, err := content.ServeBlob(w, httptest.NewRequest("GET", "/x", nil), f, b.SHA256, "x"); err == nil {
		t.Fatalf("an emptied blob was served: %d", w.Code)
	}
	if w.Body.Len() != 0 || w.Header().Get("ETag") != "" {
		t.Errorf("headers or body went out before the refusal")
	}
}

// Verify finds the damage, SetAside takes the blob out of service and an
// upload of the right bytes puts it back.
func TestVerifySetAsideAndRepair(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	data := randomBytes(t, 5000)
	b, _ := s.Put(ctx, bytes.NewReader(data), content.PutOptions{})
	if err := s.Verify(ctx, b.SHA256); err != nil {
		t.Fatalf("Verify intact: %v", err)
	}
	corrupt(t, s, b.SHA256)
	err := s.Verify(ctx, b.SHA256)
	ce, ok := content.AsCorrupt(err)
	if !ok || ce.SHA256 != b.SHA256 || ce.Got == b.SHA256 {
		t.Fatalf("Verify corrupt = %v", err)
	}
	if err := s.SetAside(ctx, b.SHA256); err != nil {
		t.Fatal(err)
	}
	if !s.SetAsideBlob(ctx, b.SHA256) {
		t.Error("SetAsideBlob = false after SetAside")
	}
	if _, err := s.Open(ctx, b.SHA256); !deploy.IsNotFound(err) {
		t.Errorf("Open after SetAside = %v, want not found", err)
	}
	if _, err := s.Put(ctx, bytes.NewReader(data), content.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(ctx, b.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) || s.Verify(ctx, b.SHA256) != nil {
		t.Error("the blob is not whole after the right bytes were uploaded again")
	}
	if err := s.SetAside(ctx, sum(nil)); err != nil {
		t.Errorf("SetAside of an absent blob: %v", err)
	}
}

// BenchmarkServe compares a full download checked against its hash
// (ServeBlob) with the same file sent by http.ServeContent unchecked
// (which may use sendfile), over loopback TCP into io.Discard.
func BenchmarkServe(b *testing.B) {
	s := newStore(b)
	data := randomBytes(b, 64<<20)
	blob, err := s.Put(b.Context(), bytes.NewReader(data), content.PutOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"unchecked", "checked"} {
		b.Run(mode, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f, err := s.Open(r.Context(), blob.SHA256)
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				defer f.Close()
				if mode == "checked" {
					content.ServeBlob(w, r, f, blob.SHA256, "x")
					return
				}
				http.ServeContent(w, r, "", time.Time{}, f)
			}))
			defer srv.Close()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				res, err := srv.Client().Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, res.Body); err != nil || n != int64(len(data)) {
					b.Fatalf("read %d: %v", n, err)
				}
				res.Body.Close()
			}
		})
	}
}
