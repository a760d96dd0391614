package boot_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// bootTree writes root/{arch}/{name} files with distinct contents and
// returns the contents by "arch/name".
func bootTree(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, arch := range []string{"x86_64", "arm64"} {
		for _, name := range []string{"vmlinuz", "initrd.img"} {
			data := strings.Repeat(fmt.Sprintf("%s/%s;", arch, name), 1000)
			p := filepath.Join(root, arch, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			files[arch+"/"+name] = data
		}
	}
	return files
}

func httpGet(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp.Body)
}

func TestServeImages(t *testing.T) {
	root := t.TempDir()
	files := bootTree(t, root)
	srv := httptest.NewServer(newHandler(t, testConfig(), boot.DirFileSource(root), nil))
	t.Cleanup(srv.Close)
	whole := files["x86_64/vmlinuz"]

	tests := []struct {
		name       string
		path       string
		rangeHdr   string
		wantStatus int
		wantBody   string
		wantRange  string // Content-Range
	}{
		{"whole kernel", "/images/x86_64/vmlinuz", "", 200, whole, ""},
		{"whole initrd arm64", "/images/arm64/initrd.img", "", 200, files["arm64/initrd.img"], ""},
		{"first bytes", "/images/x86_64/vmlinuz", "bytes=0-9", 206, whole[:10], fmt.Sprintf("bytes 0-9/%d", len(whole))},
		{"resume", "/images/x86_64/vmlinuz", "bytes=100-", 206, whole[100:], fmt.Sprintf("bytes 100-%d/%d", len(whole)-1, len(whole))},
		{"suffix", "/images/x86_64/vmlinuz", "bytes=-5", 206, whole[len(whole)-5:], fmt.Sprintf("bytes %d-%d/%d", len(whole)-5, len(whole)-1, len(whole))},
		{"unsatisfiable", "/images/x86_64/vmlinuz", fmt.Sprintf("bytes=%d-", len(whole)+10), 416, "", ""},
		{"no image for arch", "/images/i386/vmlinuz", "", 404, "imprint: no boot image for i386 on this server (build one with imprint bootimage build)\n", ""},
		{"unknown arch", "/images/mips/vmlinuz", "", 404, "imprint: unknown architecture \"mips\" (want x86_64, i386 or arm64)\n", ""},
		{"unknown name", "/images/x86_64/passwd", "", 404, "imprint: unknown boot file \"passwd\" (want vmlinuz, initrd.img, shimx64.efi or grubx64.efi)\n", ""},
		{"traversal", "/images/x86_64/..%2f..%2fetc%2fpasswd", "", 404, "imprint: unknown boot file \"../../etc/passwd\" (want vmlinuz, initrd.img, shimx64.efi or grubx64.efi)\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.rangeHdr != "" {
				h.Set("Range", tt.rangeHdr)
			}
			resp, body := httpGet(t, srv.URL+tt.path, h)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus == 416 {
				return
			}
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if got := resp.Header.Get("Content-Range"); got != tt.wantRange {
				t.Errorf("Content-Range %q, want %q", got, tt.wantRange)
			}
			if tt.wantStatus < 300 {
				if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("Content-Type %q", got)
				}
				if resp.Header.Get("Last-Modified") == "" {
					t.Error("no Last-Modified")
				}
			}
		})
	}
}

// brokenSource fails with an error other than not-exist.
type brokenSource struct{}

func (brokenSource) Open(string, string) (io.ReadSeekCloser, time.Time, int64, error) {
	return nil, time.Time{}, 0, errors.New("disk on fire")
}

func TestServeImageSourceError(t *testing.T) {
	w := get(t, newHandler(t, testConfig(), brokenSource{}, nil), "/images/x86_64/vmlinuz")
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "fire") {
		t.Errorf("status %d body %q, want 500 without the internal detail", w.Code, w.Body)
	}
}

func TestDirFileSource(t *testing.T) {
	root := t.TempDir()
	files := bootTree(t, root)
	if err := os.MkdirAll(filepath.Join(root, "i386", "vmlinuz"), 0o755); err != nil { // a directory, not a file
		t.Fatal(err)
	}
	src := boot.DirFileSource(root)

	f, mod, size, err := src.Open("x86_64", "initrd.img")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if got := readAll(t, f); got != files["x86_64/initrd.img"] || size != int64(len(got)) || mod.IsZero() {
		t.Errorf("read %d bytes, size %d, modTime %v", len(got), size, mod)
	}

	for _, tt := range []struct{ arch, name, want string }{
		{"x86_64", "../x86_64/vmlinuz", "unknown file name"},
		{"..", "vmlinuz", "unknown architecture"},
		{"i386", "vmlinuz", "not a regular file"},
		{"i386", "initrd.img", "no such file"},
	} {
		f, _, _, err := src.Open(tt.arch, tt.name)
		if err == nil || f != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q, %q) = %v, %v; want nil and an error containing %q", tt.arch, tt.name, f, err, tt.want)
		}
	}
	if _, _, _, err := src.Open("i386", "initrd.img"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestServeIPXEBinaries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "real-ipxe.efi"), []byte("MZ efi binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Debian's package links ipxe.efi to /boot/ipxe.efi.
	if err := os.Symlink(filepath.Join(dir, "real-ipxe.efi"), filepath.Join(dir, "ipxe.efi")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "undionly.kpxe"), []byte("kpxe"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.IPXEDir = dir
	srv := httptest.NewServer(newHandler(t, cfg, nil, nil))
	t.Cleanup(srv.Close)

	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/ipxe/ipxe.efi", 200, "MZ efi binary"},
		{"/ipxe/undionly.kpxe", 200, "kpxe"},
		{"/ipxe/snponly.efi", 404, "imprint: iPXE binary snponly.efi is not available on this server (install Debian's ipxe package or set the iPXE directory)\n"},
		{"/ipxe/real-ipxe.efi", 404, "imprint: unknown iPXE binary \"real-ipxe.efi\" (want ipxe.efi, snponly.efi, undionly.kpxe, undionly.kkpxe or ipxe.pxe)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := httpGet(t, srv.URL+tt.path, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDebianIPXEDir serves the real binaries of Debian's ipxe package
// (make deps installs it).
func TestDebianIPXEDir(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(boot.DefaultIPXEDir, "snponly.efi"))
	if err != nil {
		testenv.Missing(t, "Debian's ipxe binaries are not there: apt-get install ipxe: %v", err)
	}
	w := get(t, newHandler(t, testConfig(), nil, nil), "/ipxe/snponly.efi")
	if w.Code != 200 || w.Body.String() != string(want) {
		t.Errorf("status %d, %d bytes; want 200 and %d bytes", w.Code, w.Body.Len(), len(want))
	}
}

func TestUnknownRoutes(t *testing.T) {
	h := newHandler(t, testConfig(), nil, nil)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 404},
		{"GET", "/images/x86_64", 404},
		{"POST", "/boot.ipxe", 405},
		{"HEAD", "/boot.ipxe", 200},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.want {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, w.Code, tt.want)
		}
	}
}
