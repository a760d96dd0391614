package content_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// blobServer serves every blob of s at /blobs/<hash>?name=<download name>.
func blobServer(t *testing.T, s *content.Store) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /blobs/{hash}", func(w http.ResponseWriter, r *http.Request) {
		h := r.PathValue("hash")
		f, err := s.Open(r.Context(), h)
		if err != nil {
			status := http.StatusInternalServerError
			switch deploy.ErrorKind(err) {
			case deploy.KindNotFound:
				status = http.StatusNotFound
			case deploy.KindInvalid:
				status = http.StatusBadRequest
			}
			http.Error(w, deploy.ErrorMessage(err), status)
			return
		}
		defer f.Close()
		content.ServeBlob(w, r, f, h, r.URL.Query().Get("name"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestServeBlob(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 1000)
	b, err := s.Put(t.Context(), bytes.NewReader(data), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := blobServer(t, s)
	etag := `"` + b.SHA256 + `"`
	otherTag := `"` + sum([]byte("other")) + `"`

	type resp struct {
		Status       int
		Body         []byte
		ContentRange string
	}
	tests := map[string]struct {
		header http.Header
		want   resp
	}{
		"full GET": {
			want: resp{Status: 200, Body: data},
		},
		"range": {
			header: http.Header{"Range": {"bytes=10-19"}},
			want:   resp{Status: 206, Body: data[10:20], ContentRange: "bytes 10-19/1000"},
		},
		"suffix range": {
			header: http.Header{"Range": {"bytes=-5"}},
			want:   resp{Status: 206, Body: data[995:], ContentRange: "bytes 995-999/1000"},
		},
		"if-none-match": {
			header: http.Header{"If-None-Match": {etag}},
			want:   resp{Status: 304, Body: []byte{}},
		},
		"if-none-match other": {
			header: http.Header{"If-None-Match": {otherTag}},
			want:   resp{Status: 200, Body: data},
		},
		"if-range matching": {
			header: http.Header{"Range": {"bytes=10-19"}, "If-Range": {etag}},
			want:   resp{Status: 206, Body: data[10:20], ContentRange: "bytes 10-19/1000"},
		},
		"if-range wrong etag": {
			header: http.Header{"Range": {"bytes=10-19"}, "If-Range": {otherTag}},
			want:   resp{Status: 200, Body: data},
		},
		"unsatisfiable range": {
			header: http.Header{"Range": {"bytes=5000-"}},
			want:   resp{Status: 416, ContentRange: "bytes */1000"},
		},
		"if-match wrong": {
			header: http.Header{"If-Match": {otherTag}},
			want:   resp{Status: 412, Body: []byte{}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/blobs/"+b.SHA256+"?name=image.wim", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := resp{Status: res.StatusCode, Body: body, ContentRange: res.Header.Get("Content-Range")}
			if tt.want.Status == 416 {
				got.Body = nil // ServeContent's error text
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tt.want.Status == 200 || tt.want.Status == 206 {
				wantHeaders := map[string]string{
					"ETag":                etag,
					"Content-Type":        "application/octet-stream",
					"Accept-Ranges":       "bytes",
					"Content-Disposition": `attachment; filename=image.wim`,
					"Last-Modified":       "",
				}
				gotHeaders := map[string]string{}
				for k := range wantHeaders {
					gotHeaders[k] = res.Header.Get(k)
				}
				if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestServeBlobBadHash(t *testing.T) {
	srv := blobServer(t, newStore(t))
	for _, h := range []string{"..%2f..%2fetc%2fpasswd", strings.Repeat("A", 64), sum([]byte("absent"))} {
		res, err := srv.Client().Get(srv.URL + "/blobs/" + h)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 && res.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 400 or 404", h, res.StatusCode)
		}
	}
}

func TestDisposition(t *testing.T) {
	const fallback = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := map[string]string{
		"setup.exe":                  `attachment; filename=setup.exe`,
		"my file.msi":                `attachment; filename="my file.msi"`,
		"../../etc/passwd":           `attachment; filename=passwd`,
		`..\..\windows\win.ini`:      `attachment; filename=win.ini`,
		"a\r\nSet-Cookie: x=1":       `attachment; filename="a__Set-Cookie_ x=1"`,
		`evil"; filename="other.exe`: `attachment; filename="evil__ filename=_other.exe"`,
		"":                           `attachment; filename=` + fallback,
		"..":                         `attachment; filename=` + fallback,
		"pilote-é.inf":               `attachment; filename*=utf-8''pilote-%C3%A9.inf`,
		"trailing. ":                 `attachment; filename=trailing`,
	}
	for name, want := range tests {
		if got := content.Disposition(name, fallback); got != want {
			t.Errorf("Disposition(%q) = %s, want %s", name, got, want)
		}
	}
}
