package server_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/wire"
)

// flipByte corrupts one byte of a stored blob in place, as bitrot would.
func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	os.Chmod(path, 0o600)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// get sends an admin GET and reads the whole body: err is the transfer's.
func (ts *testServer) get(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://imprint"+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.admin.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// corruptAudits returns the content.corrupt audit events.
func (ts *testServer) corruptAudits(t *testing.T) []deploy.AuditEvent {
	t.Helper()
	var events, out []deploy.AuditEvent
	ts.adminJSON(t, "GET", "/admin/v1/audit", nil, &events)
	for _, e := range events {
		if e.Action == "content.corrupt" {
			out = append(out, e)
		}
	}
	return out
}

// Issue 9 item 7: a flipped byte in a stored blob is never delivered as a
// complete download. The full GET is broken off before its end, the
// corruption is audited once, the blob set aside; the next GET says the
// version is damaged; uploading the right bytes again repairs it.
func TestCorruptBlobBreaksTheDownload(t *testing.T) {
	forBackends(t, func(t *testing.T, ts *testServer, bl blobs) {
		item := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
		data := bytes.Repeat([]byte("imprint-"), 64<<10) // 512 KiB: several chunks
		v, resp := upload(t, ts, item.ID, bytes.NewReader(data), "")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		path := "/admin/v1/content/" + item.ID + "/versions/1/data"
		if resp, got, err := ts.get(t, path, nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("intact download: %v %v", resp, err)
		}
		if a := ts.corruptAudits(t); len(a) != 0 {
			t.Fatalf("intact blob audited as corrupt: %+v", a)
		}

		bl.flip(t, v.SHA256, 1000)
		resp, got, err := ts.get(t, path, nil)
		if err == nil {
			t.Fatalf("download of a corrupt blob completed: %d, %d bytes", resp.StatusCode, len(got))
		}
		if len(got) >= len(data) {
			t.Errorf("client received %d bytes of %d before the break", len(got), len(data))
		}
		a := ts.corruptAudits(t)
		if len(a) != 1 || a[0].Details["sha256"] != v.SHA256 || !strings.Contains(a[0].Details["versions"], item.ID+":1") {
			t.Fatalf("content.corrupt audit = %+v, want one naming %s and %s:1", a, v.SHA256, item.ID)
		}
		if bl.exists(t, v.SHA256) {
			t.Errorf("corrupt blob still in the store")
		}
		resp = ts.do(t, "GET", path, nil, nil)
		wantError(t, resp, 500, "internal", "damaged")
		if a := ts.corruptAudits(t); len(a) != 1 {
			t.Errorf("%d content.corrupt events after a second GET, want still 1", len(a))
		}

		// The right bytes again: the old version is whole once more.
		if _, resp := upload(t, ts, item.ID, bytes.NewReader(data), ""); resp.StatusCode != http.StatusCreated {
			t.Fatalf("re-upload: %d", resp.StatusCode)
		}
		if resp, got, err := ts.get(t, path, nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("download after repair: %v %v", resp, err)
		}
	})
}

// A range cannot be checked by itself: serving one checks the whole blob
// in the background, which finds and reports the corruption.
func TestRangeOfCorruptBlobTriggersACheck(t *testing.T) {
	forBackends(t, func(t *testing.T, ts *testServer, bl blobs) {
		item := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
		data := bytes.Repeat([]byte("range-"), 50000)
		v, _ := upload(t, ts, item.ID, bytes.NewReader(data), "")
		bl.flip(t, v.SHA256, int64(len(data)-1))
		resp, got, err := ts.get(t, "/admin/v1/content/"+item.ID+"/versions/1/data", map[string]string{"Range": "bytes=0-99"})
		if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[:100]) {
			t.Fatalf("range of the intact part: %v %v", resp, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(ts.corruptAudits(t)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no content.corrupt audit event 10 s after a range of a corrupt blob was served")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if a := ts.corruptAudits(t); a[0].Details["via"] != "range check" || a[0].Details["sha256"] != v.SHA256 {
			t.Errorf("audit = %+v", a[0])
		}
	})
}

// A folder's tar stream is checked file by file and broken off at a
// corrupt one, never ended cleanly.
func TestCorruptFileBreaksTheFolderStream(t *testing.T) {
	forBackends(t, func(t *testing.T, ts *testServer, bl blobs) {
		item := createItem(t, ts, deploy.ContentFolder, deploy.PurposeApplication)
		big := strings.Repeat("z", 200<<10)
		v, resp := upload(t, ts, item.ID, bytes.NewReader(tarOf(t, map[string]string{"a.txt": "first", "b.bin": big})), "")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		for _, f := range v.Manifest.Files {
			if f.Path == "b.bin" {
				bl.flip(t, f.SHA256, 5)
			}
		}
		if resp, got, err := ts.get(t, "/admin/v1/content/"+item.ID+"/versions/1/data", nil); err == nil {
			t.Fatalf("folder stream with a corrupt file completed: %d, %d bytes", resp.StatusCode, len(got))
		}
		if a := ts.corruptAudits(t); len(a) != 1 || !strings.Contains(a[0].Details["versions"], ":b.bin") {
			t.Errorf("content.corrupt audit = %+v", a)
		}
	})
}

// `content verify` on the server: every blob read and checked; a corrupt
// one and a missing one reported with the versions that use them.
func TestVerifyContentReportsCorruptAndMissing(t *testing.T) {
	forBackends(t, func(t *testing.T, ts *testServer, bl blobs) {
		item := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
		good, _ := upload(t, ts, item.ID, strings.NewReader("good bytes"), "")
		bad, _ := upload(t, ts, item.ID, strings.NewReader("bad bytes"), "")
		gone, _ := upload(t, ts, item.ID, strings.NewReader("gone bytes"), "")
		var rep wire.ScrubReport
		if resp := ts.adminJSON(t, "POST", "/admin/v1/content/verify", nil, &rep); resp.StatusCode != 200 || rep.Blobs != 3 || len(rep.Problems) != 0 {
			t.Fatalf("verify of an intact store: %d %+v", resp.StatusCode, rep)
		}
		bl.flip(t, bad.SHA256, 0)
		bl.remove(t, gone.SHA256)
		rep = wire.ScrubReport{}
		ts.adminJSON(t, "POST", "/admin/v1/content/verify", nil, &rep)
		got := map[string]string{}
		for _, p := range rep.Problems {
			if len(p.UsedBy) != 1 || p.UsedBy[0].ItemID != item.ID {
				t.Errorf("problem %s used by %+v", p.SHA256, p.UsedBy)
			}
			got[p.SHA256] = p.Problem + " " + strconv.Itoa(p.UsedBy[0].VersionNo)
		}
		want := map[string]string{bad.SHA256: "corrupt " + strconv.Itoa(bad.VersionNo), gone.SHA256: "missing " + strconv.Itoa(gone.VersionNo)}
		if len(got) != 2 || got[bad.SHA256] != want[bad.SHA256] || got[gone.SHA256] != want[gone.SHA256] {
			t.Errorf("problems = %v, want %v", got, want)
		}
		if rep.Blobs != 2 || got[good.SHA256] != "" {
			t.Errorf("checked %d blobs (%v), want 2 and %s fine", rep.Blobs, got, good.SHA256)
		}
		if a := ts.corruptAudits(t); len(a) != 1 || a[0].Details["via"] != "verify" {
			t.Errorf("content.corrupt audit = %+v", a)
		}
		// Once set aside, the corrupt blob is still reported, as such.
		rep = wire.ScrubReport{}
		ts.adminJSON(t, "POST", "/admin/v1/content/verify", nil, &rep)
		if len(rep.Problems) != 2 {
			t.Errorf("second verify: %+v", rep.Problems)
		}
		for _, p := range rep.Problems {
			if p.SHA256 == bad.SHA256 && (p.Problem != "corrupt" || !strings.Contains(p.Detail, "set aside")) {
				t.Errorf("second verify of the set-aside blob: %+v", p)
			}
		}
	})
}

// The same over the machine API (HTTPS, HTTP/2 when the client offers
// it): an agent's full download of a corrupt blob fails in transit.
func TestCorruptBlobBreaksTheMachineDownload(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, dir, func(c *server.Config) { c.PasscodeArgon2 = testArgon2 })
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	app := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	data := bytes.Repeat([]byte("agent-"), 100000)
	v, _ := upload(t, ts, app.ID, bytes.NewReader(data), `{"installationCommandLine":"true"}`)
	const tsID = "11111111-2222-3333-4444-5555555555aa"
	doc := `{"id":"` + tsID + `","name":"Apps","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"` + tsID + `","versionNo":1,"status":"Active","steps":[
	 {"id":"s1","name":"Install app","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000b","settings":{},"contentItems":{"Application":"` + app.ID + `:1"},"enabled":true,"continueOnError":false,"condition":null}]}]}`
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "agent")
	ts.machine(t, "GET", "/v1/tasksequences/"+tsID+"/versions/1", tok, nil, nil)
	flipByte(t, blobPath(dir, v.SHA256), 7)

	// The API speaks HTTP/1.1 only (server.go), as the agent does.
	req, _ := http.NewRequest("GET", ts.apiURL("/v1/content/"+app.ID+"/1/data"), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The download found the damage and broke off.
	if rerr == nil {
		t.Fatalf("agent download of a corrupt blob completed: %d, %d bytes", resp.StatusCode, len(got))
	}
	if a := ts.corruptAudits(t); len(a) != 1 || a[0].Details["sha256"] != v.SHA256 {
		t.Errorf("content.corrupt audit = %+v", a)
	}
}
