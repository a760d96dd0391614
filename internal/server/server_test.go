package server_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// testServer is a real server on 127.0.0.1 with a temp data directory.
type testServer struct {
	*server.Server
	dir    string
	admin  *http.Client
	api    *http.Client
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, dir string) *testServer {
	t.Helper()
	return startServerWith(t, dir, nil)
}

func startServerWith(t *testing.T, dir string, edit func(*server.Config)) *testServer {
	t.Helper()
	return startServerLog(t, dir, edit, nil)
}

// startServerLog is startServerWith with the server logging to log.
func startServerLog(t testing.TB, dir string, edit func(*server.Config), log *slog.Logger) *testServer {
	t.Helper()
	return startServerDeps(t, dir, edit, server.Deps{Log: log})
}

// startServerDeps is startServerWith on deps (nil adapters: the embedded ones).
func startServerDeps(t testing.TB, dir string, edit func(*server.Config), deps server.Deps) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.OpenWith(ctx, cfg, deps)
	if err != nil {
		cancel()
		t.Fatalf("open server: %v", err)
	}
	ts := &testServer{Server: s, dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx) }()
	ts.admin = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", s.Socket())
		},
	}}
	pem, err := os.ReadFile(server.CACertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ts.api = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	if err := <-ts.done; err != nil {
		panic(fmt.Sprintf("serve: %v", err))
	}
}

func (ts *testServer) apiURL(path string) string {
	_, port, _ := net.SplitHostPort(ts.APIAddr().String())
	return "https://localhost:" + port + path
}

// do sends an admin request and decodes a JSON answer into out (if non-nil).
func (ts *testServer) do(t *testing.T, method, path string, body io.Reader, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://imprint"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.admin.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// wantError checks status and that the JSON error message contains substr.
func wantError(t *testing.T, resp *http.Response, status int, code, substr string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", b, err)
	}
	if resp.StatusCode != status || e.Error.Code != code || !strings.Contains(e.Error.Message, substr) {
		t.Fatalf("got %d %s %q, want %d %s containing %q", resp.StatusCode, e.Error.Code, e.Error.Message, status, code, substr)
	}
}

func TestHealthzOverTLSWithGeneratedCA(t *testing.T) {
	ts := startServer(t, t.TempDir())
	resp, err := ts.api.Get(ts.apiURL("/healthz"))
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("healthz = %d %s", resp.StatusCode, b)
	}
	fi, err := os.Stat(ts.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}
	key, _ := os.Stat(filepath.Join(ts.dir, "tls", "ca.key"))
	if key == nil || key.Mode().Perm() != 0o600 {
		t.Errorf("ca.key missing or not 0600: %v", key)
	}
}

func TestRestartKeepsCAAndRefusesSecondServer(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	fp := ts.CAFingerprint()

	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	if _, err := server.Open(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "another imprint server") {
		t.Fatalf("second server on the same data dir: err = %v", err)
	}
	ts.stop()
	ts2 := startServer(t, dir)
	if ts2.CAFingerprint() != fp {
		t.Errorf("CA changed across restart")
	}
}

func createItem(t *testing.T, ts *testServer, typ deploy.ContentType, purpose deploy.Purpose) *deploy.ContentItem {
	t.Helper()
	var c deploy.ContentItem
	body := fmt.Sprintf(`{"name":"item","contentItemType":%q,"contentItemPurpose":%q}`, typ, purpose)
	resp := ts.do(t, "POST", "/admin/v1/content", strings.NewReader(body), &c)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create item: %d %s", resp.StatusCode, b)
	}
	return &c
}

func upload(t *testing.T, ts *testServer, id string, body io.Reader, meta string) (*deploy.ContentVersion, *http.Response) {
	t.Helper()
	var v deploy.ContentVersion
	path := "/admin/v1/content/" + id + "/versions"
	if meta != "" {
		path += "?meta=" + url.QueryEscape(meta)
	}
	resp := ts.do(t, "POST", path, body, &v)
	return &v, resp
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func blobPath(dir, hash string) string {
	return filepath.Join(dir, "content", "sha256", hash[:2], hash)
}

func TestFileVersionsDedupRangeAndDelete(t *testing.T) {
	forBackends(t, func(t *testing.T, ts *testServer, bl blobs) {
		item := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
		data := bytes.Repeat([]byte("imprint-"), 40000)

		v1, resp := upload(t, ts, item.ID, bytes.NewReader(data), "")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		if v1.VersionNo != 1 || v1.SHA256 != sha(data) || v1.ContentSize != int64(len(data)) {
			t.Fatalf("version = %+v", v1)
		}
		v2, _ := upload(t, ts, item.ID, bytes.NewReader(data), `{"status":"In_Development","description":"same bytes"}`)
		if v2.VersionNo != 2 || v2.Status != deploy.StatusInDevelopment {
			t.Fatalf("second version = %+v", v2)
		}

		// Range request on the admin download: exact bytes, strong ETag.
		req, _ := http.NewRequest("GET", "http://imprint/admin/v1/content/"+item.ID+"/versions/1/data", nil)
		req.Header.Set("Range", "bytes=100-199")
		r, err := ts.admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[100:200]) || r.Header.Get("ETag") != `"`+sha(data)+`"` {
			t.Fatalf("range: %d etag %s, %d bytes", r.StatusCode, r.Header.Get("ETag"), len(got))
		}

		// Deleting one version keeps the blob the other still uses.
		if resp := ts.do(t, "DELETE", "/admin/v1/content/"+item.ID+"/versions/1", nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete v1: %d", resp.StatusCode)
		}
		if !bl.exists(t, sha(data)) {
			t.Fatalf("blob removed while version 2 uses it")
		}
		if resp := ts.do(t, "DELETE", "/admin/v1/content/"+item.ID+"/versions/2", nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete v2: %d", resp.StatusCode)
		}
		if bl.exists(t, sha(data)) != bl.shared {
			t.Fatalf("after its last version went the blob exists = %v, want %v (spared when young only in a shared store)", !bl.shared, bl.shared)
		}
		wantError(t, ts.do(t, "GET", "/admin/v1/content/"+item.ID+"/versions/2", nil, nil), 404, "not_found", "no version 2")
	})
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func TestFolderVersionsAndTraversalRejected(t *testing.T) {
	ts := startServer(t, t.TempDir())
	item := createItem(t, ts, deploy.ContentFolder, deploy.PurposeApplication)

	_, resp := upload(t, ts, item.ID, bytes.NewReader(tarOf(t, map[string]string{"../../etc/passwd": "x"})), "")
	wantError(t, resp, 400, "invalid", "../../etc/passwd")

	v, resp := upload(t, ts, item.ID, bytes.NewReader(tarOf(t, map[string]string{"setup.sh": "echo hi\n", "bin/a.txt": "same", "bin/b.txt": "same"})),
		`{"installationCommandLine":"sh setup.sh","installationSuccessCodes":"0,3010"}`)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("folder upload: %d %s", resp.StatusCode, b)
	}
	if v.VersionNo != 1 || v.Manifest == nil || len(v.Manifest.Files) != 3 {
		t.Fatalf("folder version = %+v", v)
	}
	// The rejected upload created no version.
	var got deploy.ContentItem
	ts.do(t, "GET", "/admin/v1/content/"+item.ID, nil, &got)
	if len(got.Versions) != 1 {
		t.Fatalf("versions = %d, want 1", len(got.Versions))
	}

	_, resp = upload(t, ts, item.ID, strings.NewReader(""), `{"installationSuccessCodes":"zero"}`)
	wantError(t, resp, 400, "invalid", "installationSuccessCodes")
}

func TestBadRequestsRejectedClearly(t *testing.T) {
	ts := startServer(t, t.TempDir())
	cases := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"malformed json", "POST", "/admin/v1/content", `{"name":`, 400, "invalid", "not valid JSON"},
		{"wrong type", "POST", "/admin/v1/content", `{"name":"x","contentItemType":"Disk","contentItemPurpose":"Other"}`, 400, "invalid", "contentItemType"},
		{"wrong json type", "POST", "/admin/v1/content", `{"name":7}`, 400, "invalid", "not valid JSON"},
		{"empty name", "POST", "/admin/v1/content", `{"name":" ","contentItemType":"File","contentItemPurpose":"Other"}`, 400, "invalid", "name"},
		{"trailing data", "POST", "/admin/v1/content", `{"name":"x","contentItemType":"File","contentItemPurpose":"Other"} {}`, 400, "invalid", "after the JSON"},
		{"unknown item", "GET", "/admin/v1/content/0b0b0b0b-0000-0000-0000-000000000000", "", 404, "not_found", "not found"},
		{"bad version number", "GET", "/admin/v1/content/x/versions/zero", "", 400, "invalid", "not a positive number"},
		{"malformed ts", "POST", "/admin/v1/tasksequences/import", `[1,2`, 400, "invalid", ""},
		{"unknown template", "POST", "/admin/v1/tasksequences/new", `{"template":"nope"}`, 400, "invalid", "linux-bare-metal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			wantError(t, ts.do(t, c.method, c.path, body, nil), c.status, c.code, c.msg)
		})
	}
	t.Run("huge body", func(t *testing.T) {
		huge := io.MultiReader(strings.NewReader(`{"name":"`), io.LimitReader(zeros{}, 17<<20), strings.NewReader(`"}`))
		wantError(t, ts.do(t, "POST", "/admin/v1/content", huge, nil), 413, "too_large", "larger than")
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func compatDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join("..", "..", "..", "shared", "compat", "deployr")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("compat corpus: %v", err)
	}
	return d
}

func TestImportExportCompatCorpus(t *testing.T) {
	ts := startServer(t, t.TempDir())
	dir := compatDir(t)
	defs, _ := filepath.Glob(filepath.Join(dir, "stepdefinitions", "*.json"))
	for _, f := range defs {
		b, _ := os.ReadFile(f)
		if resp := ts.do(t, "POST", "/admin/v1/stepdefs/import", bytes.NewReader(b), nil); resp.StatusCode != http.StatusCreated {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("import %s: %d %s", filepath.Base(f), resp.StatusCode, body)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "tasksequences", "*.json"))
	if len(files) == 0 {
		t.Fatal("no task sequences in the corpus")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, _ := os.ReadFile(f)
			var res struct {
				TaskSequence deploy.TaskSequence `json:"taskSequence"`
			}
			if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", bytes.NewReader(in), &res); resp.StatusCode != http.StatusCreated {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("import: %d %s", resp.StatusCode, body)
			}
			resp := ts.do(t, "GET", "/admin/v1/tasksequences/"+res.TaskSequence.ID+"/export", nil, nil)
			out, _ := io.ReadAll(resp.Body)
			var want, got any
			json.Unmarshal(in, &want)
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("export is not JSON: %v", err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("export differs from the imported file (-file +export):\n%s", d)
			}
		})
	}
}

// Blobs a rejected folder upload stored before it failed are removed at
// the next start; blobs a version uses stay.
func TestStartSweepsUnreferencedBlobs(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	item := createItem(t, ts, deploy.ContentFolder, deploy.PurposeOther)
	v, resp := upload(t, ts, item.ID, bytes.NewReader(tarOf(t, map[string]string{"keep.txt": "kept bytes"})), "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	// A tar whose second entry is refused, after the first was stored.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a.txt", Mode: 0o644, Size: 12, Typeflag: tar.TypeReg})
	tw.Write([]byte("orphan bytes"))
	tw.WriteHeader(&tar.Header{Name: "link", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink})
	tw.Close()
	_, resp = upload(t, ts, item.ID, &buf, "")
	wantError(t, resp, 400, "invalid", "link")
	orphan := sha([]byte("orphan bytes"))
	if _, err := os.Stat(blobPath(dir, orphan)); err != nil {
		t.Fatalf("expected the rejected upload to leave its first blob: %v", err)
	}
	ts.stop()
	// A crash between a blob's rename and its row's commit leaves one too.
	crashed := sha([]byte("crashed upload"))
	os.MkdirAll(filepath.Dir(blobPath(dir, crashed)), 0o755)
	if err := os.WriteFile(blobPath(dir, crashed), []byte("crashed upload"), 0o444); err != nil {
		t.Fatal(err)
	}
	startServer(t, dir)
	for _, h := range []string{orphan, crashed} {
		if _, err := os.Stat(blobPath(dir, h)); !os.IsNotExist(err) {
			t.Errorf("unreferenced blob %s still there after restart: %v", h[:12], err)
		}
	}
	if _, err := os.Stat(blobPath(dir, v.Manifest.Files[0].SHA256)); err != nil {
		t.Errorf("a used blob was swept: %v", err)
	}
}
