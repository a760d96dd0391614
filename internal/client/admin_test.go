package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// serveSocket serves h on a Unix socket in a temporary directory and returns
// the socket's path. It stands in for answers the real server never gives
// (a proxy's HTML error page, say); the API itself is tested end to end in
// internal/cli against the real server.
func serveSocket(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   *deploy.Error
	}{
		{
			name:   "JSON error with fields",
			status: 400,
			body:   `{"error":{"code":"invalid","message":"step \"PE/Format\": DiskIndex: must be a number","fields":[{"step":"PE/Format","field":"DiskIndex","message":"must be a number"}]}}`,
			want: &deploy.Error{Kind: deploy.KindInvalid, Message: `step "PE/Format": DiskIndex: must be a number`,
				Fields: []deploy.FieldError{{Step: "PE/Format", Field: "DiskIndex", Message: "must be a number"}}},
		},
		{"not found", 404, `{"error":{"code":"not_found","message":"task sequence x not found"}}`, &deploy.Error{Kind: deploy.KindNotFound, Message: "task sequence x not found"}},
		{"conflict", 409, `{"error":{"code":"conflict","message":"built-in step definitions are read-only"}}`, &deploy.Error{Kind: deploy.KindConflict, Message: "built-in step definitions are read-only"}},
		{"unknown code falls back to status", 413, `{"error":{"code":"whatever","message":"too big"}}`, &deploy.Error{Kind: deploy.KindTooLarge, Message: "too big"}},
		{"plain text", 502, "upstream exploded\n", &deploy.Error{Kind: deploy.KindUnavailable, Message: "server answered 502 Bad Gateway: upstream exploded"}},
		{"empty body", 500, "", &deploy.Error{Kind: deploy.KindInternal, Message: "server answered 500 Internal Server Error"}},
		{"JSON without error object", 429, `{"oops":1}`, &deploy.Error{Kind: deploy.KindThrottled, Message: `server answered 429 Too Many Requests: {"oops":1}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			_, err := client.NewAdmin(sock).TaskSequence(context.Background(), "x")
			var got *deploy.Error
			if !errors.As(err, &got) {
				t.Fatalf("error %v (%T) is not a *deploy.Error", err, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDialFailureNamesSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "imprint.sock")
	_, err := client.NewAdmin(sock).ContentItems(context.Background())
	want := "cannot reach the imprint server at " + sock + ": is `imprint server` running with this --data directory?: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if deploy.ErrorKind(err) != deploy.KindUnavailable {
		t.Errorf("kind = %q, want unavailable", deploy.ErrorKind(err))
	}
}

// sizedReader reports its length like the CLI's progress reader.
type sizedReader struct {
	io.Reader
	n int64
}

func (s sizedReader) Size() int64 { return s.n }

func TestAddContentVersionStreams(t *testing.T) {
	type seen struct {
		Meta          map[string]any
		ContentType   string
		ContentLength int64
		Chunked       bool
		Body          string
	}
	got := make(chan seen, 1)
	sock := serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.EscapedPath() != "/admin/v1/content/item%2F1/versions" {
			http.Error(w, "wrong route "+r.Method+" "+r.URL.EscapedPath(), 500)
			return
		}
		var s seen
		if err := json.Unmarshal([]byte(r.URL.Query().Get("meta")), &s.Meta); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.Body, s.ContentType, s.ContentLength = string(b), r.Header.Get("Content-Type"), r.ContentLength
		s.Chunked = len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
		got <- s
		w.WriteHeader(201)
		io.WriteString(w, `{"versionNo":3,"contentSize":5,"sha256":"abc"}`)
	}))
	c := client.NewAdmin(sock)
	ctx := context.Background()
	meta := deploy.ContentVersion{Status: deploy.StatusActive, InstallationSuccessCodes: deploy.StrPtr("0,3010")}

	// A pipe: no length known, sent chunked as it is written.
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "hel")
		io.WriteString(pw, "lo")
		pw.Close()
	}()
	v, err := c.AddContentVersion(ctx, "item/1", meta, pr, "application/x-tar")
	if err != nil {
		t.Fatal(err)
	}
	if v.VersionNo != 3 || v.SHA256 != "abc" {
		t.Errorf("version = %+v", v)
	}
	s := <-got
	if s.Body != "hello" || s.ContentType != "application/x-tar" || !s.Chunked || s.ContentLength != -1 {
		t.Errorf("pipe upload seen as %+v", s)
	}
	if s.Meta["status"] != "Active" || s.Meta["installationSuccessCodes"] != "0,3010" {
		t.Errorf("meta = %v", s.Meta)
	}

	// A sized body: Content-Length, default content type.
	if _, err := c.AddContentVersion(ctx, "item/1", meta, sizedReader{strings.NewReader("hello"), 5}, ""); err != nil {
		t.Fatal(err)
	}
	s = <-got
	if s.Body != "hello" || s.ContentType != "application/octet-stream" || s.Chunked || s.ContentLength != 5 {
		t.Errorf("sized upload seen as %+v", s)
	}

	// No body (URL item).
	meta.ExternalURL = deploy.StrPtr("https://example.org/a.iso")
	if _, err := c.AddContentVersion(ctx, "item/1", meta, nil, ""); err != nil {
		t.Fatal(err)
	}
	s = <-got
	if s.Body != "" || s.ContentLength != 0 || s.Meta["externalURL"] != "https://example.org/a.iso" {
		t.Errorf("URL version seen as %+v", s)
	}
}
