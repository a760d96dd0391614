package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// patternReader produces n bytes that differ block to block (so no
// layer can shortcut them), hashing what it hands out.
type patternReader struct {
	left  int64
	block uint64
	buf   [64 << 10]byte
	off   int
	h     hash.Hash
}

func newPattern(n int64) *patternReader {
	p := &patternReader{left: n, h: sha256.New(), off: len(patternReader{}.buf)}
	return p
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if p.off == len(p.buf) {
		p.block++
		for i := 0; i < len(p.buf); i += 8 {
			binary.LittleEndian.PutUint64(p.buf[i:], p.block*0x9e3779b97f4a7c15^uint64(i))
		}
		p.off = 0
	}
	n := copy(b, p.buf[p.off:])
	if int64(n) > p.left {
		n = int(p.left)
	}
	p.off += n
	p.left -= int64(n)
	p.h.Write(b[:n])
	return n, nil
}

// createItem creates a content item through the console's form and
// returns its ID (from the redirect to its page).
func (b *browser) createItem(name, typ, purpose string) string {
	b.t.Helper()
	resp, body := b.do("POST", "/content/new", url.Values{"csrf": {b.csrf}, "name": {name}, "type": {typ}, "purpose": {purpose}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("create content item: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	id, ok := strings.CutPrefix(strings.SplitN(loc, "?", 2)[0], "/content/")
	if !ok || id == "" {
		b.t.Fatalf("create content item: redirected to %q, want /content/ID", loc)
	}
	return id
}

// upload posts body as a new version's bytes, the way upload.js does.
func (b *browser) upload(id string, q url.Values, body io.Reader, size int64, hdr map[string]string) (*http.Response, map[string]any) {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.e.base+"/content/"+id+"/versions/upload?"+q.Encode(), body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &ans); err != nil && resp.StatusCode != http.StatusForbidden {
		b.t.Fatalf("upload answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	return resp, ans
}

// TestUploadStreamsLargeFile: a 256 MiB version goes through the console
// into the blob store with the server's heap far below the file's size,
// and the stored hash is the one of the bytes sent.
func TestUploadStreamsLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	e := start(t)
	e.addUser(t, "ops", "operator")
	b := e.browser(t)
	b.mustLogin("ops")
	id := b.createItem("Windows 11 23H2", "File", "OperatingSystem")

	const size = 256 << 20
	src := newPattern(size)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	resp, ans := b.upload(id, url.Values{"status": {"Active"}, "description": {"RTM"}}, src, size, map[string]string{"X-CSRF-Token": b.csrf})
	close(stop)
	wg.Wait()
	if resp.StatusCode != http.StatusCreated || ans["ok"] != true {
		t.Fatalf("upload: %d %v", resp.StatusCode, ans)
	}
	want := hex.EncodeToString(src.h.Sum(nil))
	if ans["sha256"] != want || ans["size"] != float64(size) {
		t.Errorf("upload answer: sha256 %v size %v; want %s and %d", ans["sha256"], ans["size"], want, size)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("256 MiB upload: heap in use grew by %.1f MiB at most (from %.1f MiB)", float64(grew)/(1<<20), float64(base)/(1<<20))
	if grew > 48<<20 {
		t.Errorf("heap in use grew by %d MiB during a 256 MiB upload; the body is being held in memory", grew>>20)
	}
	item, err := e.srv.Store().ContentItem(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(item.Versions) != 1 || item.Versions[0].SHA256 != want || item.Versions[0].ContentSize != size ||
		deploy.Str(item.Versions[0].Description) != "RTM" {
		t.Fatalf("stored versions: %+v; want one of %d bytes with SHA-256 %s and description RTM", item.Versions, size, want)
	}
}

// TestUploadRefusals: an upload without the CSRF header, by a viewer, or
// larger than the limit is refused and stores nothing; application fields
// given with an upload are stored with the version.
func TestUploadRefusals(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	ops := e.browser(t)
	ops.mustLogin("ops")
	id := ops.createItem("7-Zip", "File", "Application")
	versions := func() int {
		item, err := e.srv.Store().ContentItem(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return len(item.Versions)
	}

	body := "MZ fake installer"
	if resp, _ := ops.upload(id, nil, strings.NewReader(body), int64(len(body)), nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("upload without X-CSRF-Token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := ops.upload(id, nil, strings.NewReader(body), int64(len(body)), map[string]string{"X-CSRF-Token": "forged"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("upload with a wrong X-CSRF-Token: %d, want 403", resp.StatusCode)
	}
	eve := e.browser(t)
	eve.mustLogin("eve")
	if resp, _ := eve.upload(id, nil, strings.NewReader(body), int64(len(body)), map[string]string{"X-CSRF-Token": eve.csrf}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer upload: %d, want 403", resp.StatusCode)
	}
	// Declared larger than the console takes: refused before a byte is read.
	huge := io.LimitReader(zeros{}, 65<<30)
	if resp, ans := ops.upload(id, nil, huge, 65<<30, map[string]string{"X-CSRF-Token": ops.csrf}); resp.StatusCode != http.StatusRequestEntityTooLarge ||
		!strings.Contains(ans["message"].(string), "at most 64.0 GiB") {
		t.Errorf("65 GiB upload: %d %v, want 413 naming the limit", resp.StatusCode, ans)
	}
	if resp, ans := ops.upload(id, url.Values{"installationSuccessCodes": {"zero"}}, strings.NewReader(body), int64(len(body)), map[string]string{"X-CSRF-Token": ops.csrf}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(ans["message"].(string), "installationSuccessCodes") {
		t.Errorf("upload with bad success codes: %d %v, want 400 naming the field", resp.StatusCode, ans)
	}
	if n := versions(); n != 0 {
		t.Fatalf("refused uploads stored %d versions", n)
	}

	q := url.Values{"installationCommandLine": {"7z.exe /S"}, "installationSuccessCodes": {"0,3010"}, "status": {"In_Development"}}
	if resp, ans := ops.upload(id, q, strings.NewReader(body), int64(len(body)), map[string]string{"X-CSRF-Token": ops.csrf}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %v", resp.StatusCode, ans)
	}
	item, _ := e.srv.Store().ContentItem(context.Background(), id)
	v := item.Versions[0]
	if deploy.Str(v.InstallationCommandLine) != "7z.exe /S" || deploy.Str(v.InstallationSuccessCodes) != "0,3010" || v.Status != deploy.StatusInDevelopment {
		t.Errorf("stored version: command %q codes %q status %s", deploy.Str(v.InstallationCommandLine), deploy.Str(v.InstallationSuccessCodes), v.Status)
	}
	sum := sha256.Sum256([]byte(body))
	if v.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("stored hash %s, want %x", v.SHA256, sum)
	}

	// The item page shows the version and, to the viewer, no upload form.
	if _, page := eve.do("GET", "/content/"+id, nil, nil); !strings.Contains(page, v.SHA256) || strings.Contains(page, `id="upload-form"`) {
		t.Errorf("viewer's item page: hash shown %v, upload form offered %v", strings.Contains(page, v.SHA256), strings.Contains(page, `id="upload-form"`))
	}
	if _, page := ops.do("GET", "/content/"+id, nil, nil); !strings.Contains(page, `id="upload-form"`) || !strings.Contains(page, `/static/upload.js`) {
		t.Error("operator's item page has no upload form")
	}
	// Audited under the account.
	events, _ := e.srv.Store().AuditEvents(context.Background(), 0, 0)
	found := false
	for _, ev := range events {
		if ev.Actor == "console:ops" && ev.Action == "admin.request" && ev.Details["path"] == "/admin/v1/content/"+id+"/versions" && ev.Outcome == "success" {
			found = true
		}
	}
	if !found {
		t.Error("no audit event console:ops admin.request for the upload")
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
