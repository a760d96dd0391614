package client_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// fakeContent is a stand-in for the server's content routes (the server
// is across the boundary from this client).
type fakeContent struct {
	t       *testing.T
	typ     deploy.ContentType
	data    []byte // File bytes served
	sha     string // sha256 announced in the version
	tarball []byte
	man     *deploy.Manifest
	cutOnce int // cut the first data answer after this many bytes (0: never)

	mu     sync.Mutex
	ranges []string // Range header of each data request
	cut    bool
}

func (f *fakeContent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/content/abc/1":
		v := deploy.ContentVersion{VersionNo: 1, SHA256: f.sha, ContentSize: int64(len(f.data)), Manifest: f.man}
		if f.typ == deploy.ContentFolder {
			v.ContentSize = int64(len(f.tarball))
		}
		_ = json.NewEncoder(w).Encode(client.ContentInfo{Item: deploy.ContentItem{ID: "abc", Type: f.typ}, Version: v})
	case r.URL.Path == "/v1/content/abc/1/data":
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.ranges = append(f.ranges, r.Header.Get("Range")+"|"+r.Header.Get("If-Range"))
		cut := f.cutOnce > 0 && !f.cut
		f.cut = true
		f.mu.Unlock()
		body := f.data
		if f.typ == deploy.ContentFolder {
			body = f.tarball
		}
		if cut {
			w.Header().Set("ETag", `"`+f.sha+`"`)
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			_, _ = w.Write(body[:f.cutOnce])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("ETag", `"`+f.sha+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeContent) seenRanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ranges...)
}

func newMachine(t *testing.T, h http.Handler) (*client.Machine, *httptest.Server) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	m, err := client.NewMachine(srv.URL, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken("tok")
	m.SetRetryDelay(0)
	return m, srv
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestDownloadFileResumesAfterCut(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	fc := &fakeContent{t: t, typ: deploy.ContentFile, data: data, sha: sum(data), cutOnce: len(data) / 2}
	m, _ := newMachine(t, fc)
	dst := filepath.Join(t.TempDir(), "blob")
	var last int64
	if _, err := m.Download(context.Background(), "abc", 1, dst, func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, differing from the %d served", len(got), len(data))
	}
	want := []string{"|", fmt.Sprintf("bytes=%d-|\"%s\"", len(data)/2, fc.sha)}
	if diff := cmp.Diff(want, fc.seenRanges()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if last != int64(len(data)) {
		t.Errorf("progress ended at %d, want %d", last, len(data))
	}
	if _, err := os.Stat(dst + ".part"); !os.IsNotExist(err) {
		t.Errorf(".part left behind: %v", err)
	}
	// A second download finds the verified file and fetches nothing.
	if _, err := m.Download(context.Background(), "abc", 1, dst, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(fc.seenRanges()); n != 2 {
		t.Errorf("second download made data requests: %d in all", n)
	}
}

func TestDownloadFileContinuesEarlierPart(t *testing.T) {
	data := []byte(strings.Repeat("resumable content ", 1000))
	fc := &fakeContent{t: t, typ: deploy.ContentFile, data: data, sha: sum(data)}
	m, _ := newMachine(t, fc)
	dst := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(dst+".part", data[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Download(context.Background(), "abc", 1, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs from the served bytes")
	}
	if diff := cmp.Diff([]string{`bytes=1000-|"` + fc.sha + `"`}, fc.seenRanges()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestDownloadFileRejectsWrongHash(t *testing.T) {
	data := []byte("the real bytes")
	fc := &fakeContent{t: t, typ: deploy.ContentFile, data: data, sha: sum([]byte("other bytes"))}
	m, _ := newMachine(t, fc)
	dst := filepath.Join(t.TempDir(), "blob")
	_, err := m.Download(context.Background(), "abc", 1, dst, nil)
	if err == nil || !strings.Contains(err.Error(), "hash to") {
		t.Fatalf("err = %v, want a hash mismatch", err)
	}
	for _, p := range []string{dst, dst + ".part"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed verification", p)
		}
	}
}

type tarFile struct {
	name string
	body string
}

func makeTar(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.body)), Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func manifestOf(files []tarFile) *deploy.Manifest {
	m := &deploy.Manifest{}
	for _, f := range files {
		m.Files = append(m.Files, deploy.ManifestFile{Path: f.name, Size: int64(len(f.body)), Mode: 0o755, SHA256: sum([]byte(f.body))})
	}
	return m
}

func TestDownloadFolder(t *testing.T) {
	good := []tarFile{{"install.sh", "#!/bin/sh\necho hi\n"}, {"sub/data.txt", "data"}}
	tests := map[string]struct {
		served  []tarFile
		man     *deploy.Manifest
		cut     int
		wantErr string
	}{
		"ok":              {served: good, man: manifestOf(good)},
		"resumed":         {served: good, man: manifestOf(good), cut: 700},
		"tampered":        {served: []tarFile{good[0], {"sub/data.txt", "DATA"}}, man: manifestOf(good), wantErr: `"sub/data.txt" hashes to`},
		"not in manifest": {served: append(good, tarFile{"extra", "x"}), man: manifestOf(good), wantErr: `holds "extra"`},
		"traversal":       {served: []tarFile{{"../evil", "x"}}, man: manifestOf([]tarFile{{"evil", "x"}}), wantErr: `"../evil"`},
		"missing":         {served: good[:1], man: manifestOf(good), wantErr: `without "sub/data.txt"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fc := &fakeContent{t: t, typ: deploy.ContentFolder, tarball: makeTar(t, tc.served), man: tc.man, cutOnce: tc.cut}
			m, _ := newMachine(t, fc)
			dst := filepath.Join(t.TempDir(), "folder")
			_, err := m.Download(context.Background(), "abc", 1, dst, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %s", err, tc.wantErr)
				}
				if _, err := os.Stat(dst); !os.IsNotExist(err) {
					t.Errorf("dst exists after a failed download")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range good {
				b, err := os.ReadFile(filepath.Join(dst, f.name))
				if err != nil || string(b) != f.body {
					t.Errorf("%s = %q, %v; want %q", f.name, b, err, f.body)
				}
			}
		})
	}
}

func TestPinnedFingerprint(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"unix":1764250000}`))
	}))
	t.Cleanup(srv.Close)
	good := sum(srv.Certificate().Raw)
	m, err := client.NewMachinePinned(srv.URL, good)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := m.Time(context.Background())
	if err != nil {
		t.Fatalf("pinned to the right fingerprint: %v", err)
	}
	if tm.Unix() != 1764250000 {
		t.Errorf("time = %d", tm.Unix())
	}
	bad, err := client.NewMachinePinned(srv.URL, sum([]byte("another CA")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Time(context.Background()); err == nil || !strings.Contains(err.Error(), "pinned CA fingerprint") {
		t.Fatalf("wrong pin: err = %v", err)
	}
	if _, err := client.NewMachinePinned(srv.URL, "xyz"); err == nil {
		t.Error("a malformed fingerprint was accepted")
	}
}

func TestMachineErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"throttled","message":"too many attempts"}}`))
	}))
	t.Cleanup(srv.Close)
	m, err := client.NewMachine(srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Token(context.Background(), client.TokenRequest{Method: "passcode", Passcode: "x"})
	if deploy.ErrorKind(err) != deploy.KindThrottled || deploy.ErrorMessage(err) != "too many attempts" {
		t.Fatalf("err = %v (kind %s)", err, deploy.ErrorKind(err))
	}
	if d, ok := client.RetryAfter(err); !ok || d != 7*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, err := client.NewMachine(srv.URL, []byte("not pem")); err == nil {
		t.Error("a CA file without PEM was accepted")
	}
	// The passcode and token never travel over plain HTTP (PC-11).
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for _, u := range []string{"http://127.0.0.1:7281", "HTTP://imprint:7281", "imprint:7281"} {
		if _, err := client.NewMachine(u, caPEM); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("NewMachine(%q): err = %v, want invalid", u, err)
		}
		if _, err := client.NewMachinePinned(u, strings.Repeat("ab", 32)); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("NewMachinePinned(%q): err = %v, want invalid", u, err)
		}
	}
}
