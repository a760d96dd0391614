package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/peer"
)

// TestPeerRoutes: the chunk manifest and the peer list are given only to
// sessions whose sequence uses the content; a machine's peer address is
// the one its request came from, whatever it claims; the list leaves the
// machine itself out, and a machine that left is gone from it.
func TestPeerRoutes(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	img := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	other := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	data := strings.Repeat("0123456789abcdef", peer.ChunkSize/16) + "tail"
	upload(t, ts, img.ID, strings.NewReader(data), "")
	upload(t, ts, other.ID, strings.NewReader("other image"), "")
	doc := fmt.Sprintf(`{"id":"41111111-2222-3333-4444-555555555555","name":"Lab","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"41111111-2222-3333-4444-555555555555","versionNo":1,"status":"Active","steps":[
	 {"id":"s1","name":"Apply","isGroup":false,"typeId":"00000001-0000-0000-0000-000000000103","settings":{},"contentItems":{"Image":"%s:1"},"enabled":true,"continueOnError":false,"condition":null}]}]}`, img.ID)
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	toks := make([]string, 2)
	for i := range toks {
		_, toks[i] = login(t, ts, "Correct-Horse-Battery-42", fmt.Sprintf("dev-peer-%d", i))
		ts.machine(t, "GET", "/v1/tasksequences/41111111-2222-3333-4444-555555555555/versions/1", toks[i], nil, nil)
	}
	base := "/v1/content/" + img.ID + "/1/"

	var m peer.Manifest
	if resp := ts.machine(t, "GET", base+"chunks", toks[0], nil, &m); resp.StatusCode != 200 {
		t.Fatalf("chunks: %d", resp.StatusCode)
	}
	sum := sha256.Sum256([]byte(data))
	first := sha256.Sum256([]byte(data[:peer.ChunkSize]))
	last := sha256.Sum256([]byte("tail"))
	if err := m.Check(int64(len(data)), hex.EncodeToString(sum[:])); err != nil || m.Chunks[0] != hex.EncodeToString(first[:]) || m.Chunks[1] != hex.EncodeToString(last[:]) {
		t.Fatalf("manifest %+v: %v", m, err)
	}
	wantError(t, ts.machine(t, "GET", "/v1/content/"+other.ID+"/1/chunks", toks[0], nil, nil), 404, "not_found", "")
	wantError(t, ts.machine(t, "GET", base+"chunks", "", nil, nil), 401, "unauthorized", "")

	tok := strings.Repeat("a", 40)
	var l0, l1 peer.List
	wantError(t, ts.machine(t, "POST", base+"peers", "", peer.Join{Port: 7000, Token: tok}, nil), 401, "unauthorized", "")
	wantError(t, ts.machine(t, "POST", base+"peers", toks[0], peer.Join{Port: 7000, Token: "short"}, nil), 400, "invalid", "token")
	wantError(t, ts.machine(t, "POST", "/v1/content/"+other.ID+"/1/peers", toks[0], peer.Join{Port: 7000, Token: tok}, nil), 404, "not_found", "")
	// The body has no host: one claimed is ignored, and the address is the
	// request's.
	if resp := ts.machine(t, "POST", base+"peers", toks[0], map[string]any{"port": 7000, "token": tok, "host": "10.9.9.9", "addr": "10.9.9.9:7000"}, &l0); resp.StatusCode != 200 {
		t.Fatalf("join: %d", resp.StatusCode)
	}
	if l0.Self.Addr != "127.0.0.1:7000" || len(l0.Peers) != 0 {
		t.Fatalf("first machine's list = %+v, want itself at 127.0.0.1:7000 and no peers", l0)
	}
	ts.machine(t, "POST", base+"peers", toks[1], peer.Join{Port: 7001, Token: strings.Repeat("b", 40)}, &l1)
	if len(l1.Peers) != 1 || l1.Peers[0] != (peer.Peer{Addr: "127.0.0.1:7000", Token: tok}) {
		t.Fatalf("second machine's peers = %+v, want the first", l1.Peers)
	}
	if resp := ts.machine(t, "DELETE", base+"peers", toks[0], nil, nil); resp.StatusCode != 204 {
		t.Fatalf("leave: %d", resp.StatusCode)
	}
	ts.machine(t, "POST", base+"peers", toks[1], peer.Join{Port: 7001, Token: strings.Repeat("b", 40)}, &l1)
	if len(l1.Peers) != 0 {
		t.Fatalf("after the first machine left, the second sees %+v", l1.Peers)
	}
}
