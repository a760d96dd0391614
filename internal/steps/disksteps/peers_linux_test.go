package disksteps_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/peer"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/testenv"
)

const (
	peerPasscode = "Peer-Share-Orbit-4417"
	peerTSID     = "b0000000-0000-4000-8000-00000000be15"
)

// peerLab is a real imprint server holding one File image (an Active
// version, in an Active sequence's Apply operating system step) and a
// machine logged in with a run of that sequence.
type peerLab struct {
	srv   *server.Server
	ca    []byte
	data  []byte
	ref   deploy.Ref
	image string // the machine's target partition (IMAGE#1)
}

func newPeerLab(t *testing.T, size int) *peerLab {
	t.Helper()
	testenv.LookPath(t, "sgdisk")
	ctx := context.Background()
	s := servertest.Start(t, nil)
	admin := client.NewAdmin(s.Socket())
	if _, err := admin.SetPasscode(ctx, peerPasscode); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	item, err := admin.CreateContentItem(ctx, deploy.ContentItem{Name: "Peer image", Type: deploy.ContentFile, Purpose: deploy.PurposeOperatingSystem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddContentVersion(ctx, item.ID, deploy.ContentVersion{Status: deploy.StatusActive}, bytes.NewReader(data), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	step := map[string]any{"id": "a1", "name": "Apply operating system", "isGroup": false, "typeId": "00000001-0000-0000-0000-000000000103",
		"settings": map[string]string{"ImageFormat": "Raw"}, "contentItems": map[string]string{"Image": item.ID + ":1"},
		"enabled": true, "continueOnError": false, "condition": nil}
	doc, _ := json.Marshal(map[string]any{"id": peerTSID, "name": "Peers", "architecture": "Any", "versions": []any{map[string]any{
		"id": "b0000000-v1", "taskSequenceId": peerTSID, "versionNo": 1, "status": "Active", "steps": []any{step}}}})
	if _, _, err := admin.ImportTaskSequence(ctx, bytes.NewReader(doc), client.ImportNew); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(server.CACertPath(s.DataDir()))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(size) + 4<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("sgdisk", "-n", fmt.Sprintf("1:2048:%d", 2048+(size+511)/512-1), img).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	return &peerLab{srv: s, ca: ca, data: data, ref: deploy.Ref{ID: item.ID, VersionNo: 1}, image: img + "#1"}
}

// machine logs a machine in and starts its run, so its session may fetch
// the image.
func (l *peerLab) machine(t *testing.T, uuid string) *client.Machine {
	t.Helper()
	ctx := context.Background()
	m, err := client.NewMachine("https://"+l.srv.APIAddr().String(), l.ca)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: peerPasscode, Device: client.DeviceInfo{UUID: uuid}}); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: peerTSID, VersionNo: 1}); err != nil {
		t.Fatalf("create run: %v", err)
	}
	return m
}

// seeder is another machine that holds the whole image already: a real
// chunk server (peer.Handler) registered in the server's peer list. With
// corrupt, every chunk it holds has one byte changed.
func (l *peerLab) seeder(t *testing.T, corrupt bool) *peer.Cache {
	t.Helper()
	ctx := context.Background()
	m := l.machine(t, "6a0c1d2e-0000-4000-8000-0000000be002")
	man, err := m.ChunkManifest(ctx, l.ref.ID, l.ref.VersionNo)
	if err != nil {
		t.Fatal(err)
	}
	c := peer.NewCache()
	for i := range man.Chunks {
		b := bytes.Clone(l.data[int64(i)*man.ChunkSize : int64(i)*man.ChunkSize+man.Len(i)])
		if corrupt {
			b[len(b)/2] ^= 0x5a
		}
		c.Put(i, b)
	}
	tok := strings.Repeat("s", 48)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: peer.Handler(c, man.SHA256, tok)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	if _, err := m.JoinPeers(ctx, l.ref.ID, l.ref.VersionNo, peer.Join{Port: ln.Addr().(*net.TCPAddr).Port, Token: tok}); err != nil {
		t.Fatal(err)
	}
	return c
}

// apply runs Apply operating system for a second machine, with vars set.
func (l *peerLab) apply(t *testing.T, vars map[string]string) (sequence.Result, string) {
	t.Helper()
	m := l.machine(t, "6a0c1d2e-0000-4000-8000-0000000be001")
	d := &disksteps.Deps{Content: m, Peers: m, PeerListen: "127.0.0.1:0", TempDir: t.TempDir()}
	v := sequence.NewVars()
	for k, val := range vars {
		v.Set(k, val)
	}
	var log strings.Builder
	env := &sequence.Env{Vars: v, Settings: map[string]string{"ImageFormat": "Raw", "TargetPartition": l.image},
		Content: map[string]string{}, Refs: map[string]deploy.Ref{"Image": l.ref}, Log: &log}
	res, err := (disksteps.ApplyOS{D: d}).Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Apply operating system: %v\n%s", err, log.String())
	}
	img, _, _ := strings.Cut(l.image, "#")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(io.NewSectionReader(f, 1<<20, int64(len(l.data))))
	if err != nil || !bytes.Equal(got, l.data) {
		t.Fatalf("the partition does not hold the image (%v)\n%s", err, log.String())
	}
	return res, log.String()
}

func oneDownload(t *testing.T, res sequence.Result, log string) deploy.Download {
	t.Helper()
	if len(res.Downloads) != 1 {
		t.Fatalf("step result has %d downloads, want 1\n%s", len(res.Downloads), log)
	}
	t.Logf("download: %+v", res.Downloads[0])
	return res.Downloads[0]
}

const peerImageSize = 3*peer.ChunkSize + 12345

// A machine whose subnet has a peer holding the image takes every chunk
// from it, and the run record's download says so.
func TestApplyOSFromPeers(t *testing.T) {
	l := newPeerLab(t, peerImageSize)
	seed := l.seeder(t, false)
	res, log := l.apply(t, nil)
	d := oneDownload(t, res, log)
	want := deploy.Download{Content: l.ref.ID + ":1", Name: "Peer image", Bytes: peerImageSize, Peers: peerImageSize}
	if d != want {
		t.Errorf("download = %+v, want %+v\n%s", d, want, log)
	}
	if seed.Served() != peerImageSize {
		t.Errorf("the peer served %d bytes, want %d", seed.Served(), peerImageSize)
	}
}

// Peering=false (DeployR's task-sequence variable) turns peer sharing off:
// the peer holding the image is not asked and all bytes come from the
// server.
func TestApplyOSPeeringOff(t *testing.T) {
	l := newPeerLab(t, peerImageSize)
	seed := l.seeder(t, false)
	res, log := l.apply(t, map[string]string{"Peering": "false"})
	d := oneDownload(t, res, log)
	want := deploy.Download{Content: l.ref.ID + ":1", Name: "Peer image", Bytes: peerImageSize, Server: peerImageSize}
	if d != want {
		t.Errorf("download = %+v, want %+v\n%s", d, want, log)
	}
	if seed.Served() != 0 {
		t.Errorf("the peer served %d bytes with Peering=false", seed.Served())
	}
	if !strings.Contains(log, "Peering=false") {
		t.Errorf("the step's log does not say peer sharing is off:\n%s", log)
	}
}

// A peer serving corrupted chunks is refused at its first chunk, never
// asked again, and every chunk is fetched from the server instead.
func TestApplyOSRefusesCorruptPeer(t *testing.T) {
	l := newPeerLab(t, peerImageSize)
	seed := l.seeder(t, true)
	res, log := l.apply(t, nil)
	d := oneDownload(t, res, log)
	want := deploy.Download{Content: l.ref.ID + ":1", Name: "Peer image", Bytes: peerImageSize, Server: peerImageSize, Refused: 1}
	if d != want {
		t.Errorf("download = %+v, want %+v\n%s", d, want, log)
	}
	if seed.Served() != peer.ChunkSize {
		t.Errorf("the corrupt peer served %d bytes, want one chunk", seed.Served())
	}
	if !strings.Contains(log, "Refused chunk 0 from peer") {
		t.Errorf("the step's log does not name the refused chunk:\n%s", log)
	}
}
