package server_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestMulticastRoutes: a machine is offered a session only for content its
// sequence uses and only while the session waits for receivers; the admin
// API starts, lists and stops sessions (a real udp-sender on lo, where it
// waits for receivers that never come).
func TestMulticastRoutes(t *testing.T) {
	testenv.LookPath(t, multicast.SenderProgram)
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	img := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	other := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	upload(t, ts, img.ID, strings.NewReader("image bytes"), "")
	upload(t, ts, other.ID, strings.NewReader("other image"), "")
	doc := fmt.Sprintf(`{"id":"31111111-2222-3333-4444-555555555555","name":"Lab","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"31111111-2222-3333-4444-555555555555","versionNo":1,"status":"Active","steps":[
	 {"id":"s1","name":"Apply","isGroup":false,"typeId":"00000001-0000-0000-0000-000000000103","settings":{"Multicast":"true"},"contentItems":{"Image":"%s:1"},"enabled":true,"continueOnError":false,"condition":null}]}]}`, img.ID)
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-mc")
	ts.machine(t, "GET", "/v1/tasksequences/31111111-2222-3333-4444-555555555555/versions/1", tok, nil, nil)
	path := "/v1/content/" + img.ID + "/1/multicast"

	wantError(t, ts.machine(t, "GET", path, tok, nil, nil), 404, "not_found", "no multicast session")
	wantError(t, ts.adminJSON(t, "POST", "/admin/v1/multicast", map[string]any{"contentId": img.ID, "versionNo": 1, "machines": 0, "interface": "lo"}, nil), 400, "invalid", "machines")

	var sess multicast.Session
	if resp := ts.adminJSON(t, "POST", "/admin/v1/multicast", map[string]any{"contentId": img.ID, "versionNo": 1, "machines": 4, "wait": "2m", "interface": "lo"}, &sess); resp.StatusCode != 201 {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	if sess.State != multicast.StateWaiting || sess.Size != int64(len("image bytes")) || time.Duration(sess.Wait) != 2*time.Minute {
		t.Fatalf("started session = %+v", sess)
	}
	var offered multicast.Session
	if resp := ts.machine(t, "GET", path, tok, nil, &offered); resp.StatusCode != 200 || offered.ID != sess.ID || offered.Portbase != sess.Portbase || offered.Interface != "" {
		t.Fatalf("offered %d %+v, want session %s without the server's interface", resp.StatusCode, offered, sess.ID)
	}
	// Content outside the machine's sequence is not offered, even with a
	// session running for it.
	ts.adminJSON(t, "POST", "/admin/v1/multicast", map[string]any{"contentId": other.ID, "versionNo": 1, "machines": 1, "interface": "lo"}, nil)
	wantError(t, ts.machine(t, "GET", "/v1/content/"+other.ID+"/1/multicast", tok, nil, nil), 404, "not_found", "")

	var list []multicast.Session
	ts.adminJSON(t, "GET", "/admin/v1/multicast", nil, &list)
	if len(list) != 2 {
		t.Fatalf("list = %+v", list)
	}
	for _, s := range list {
		if resp := ts.adminJSON(t, "DELETE", "/admin/v1/multicast/"+s.ID, nil, nil); resp.StatusCode != 204 {
			t.Fatalf("stop %s: %d", s.ID, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.adminJSON(t, "GET", "/admin/v1/multicast", nil, &list)
		if list[0].State == multicast.StateFailed && list[1].State == multicast.StateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped sessions = %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantError(t, ts.machine(t, "GET", path, tok, nil, nil), 404, "not_found", "")
	var audit []deploy.AuditEvent
	ts.adminJSON(t, "GET", "/admin/v1/audit", nil, &audit)
	starts := 0
	for _, e := range audit {
		if e.Action == "admin.multicast.start" {
			starts++
		}
	}
	if starts != 2 {
		t.Errorf("%d admin.multicast.start audit events, want 2", starts)
	}
}
