package disksteps_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/testenv"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testenv.LookPath(t, tool)
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// contentServer serves one File content item the way the server does
// (ETag = SHA-256, Range), cutting the first data answer half way, and
// takes captures.
type contentServer struct {
	name     string
	data     []byte
	mu       sync.Mutex
	cut      bool
	ranges   []string
	captured []byte
	// winAgent is served as the Windows agent (GET /v1/agent/windows-amd64).
	winAgent []byte
}

func (c *contentServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/content/img/1":
		_ = json.NewEncoder(w).Encode(client.ContentInfo{
			Item:    deploy.ContentItem{ID: "img", Name: c.name, Type: deploy.ContentFile, Purpose: deploy.PurposeOperatingSystem},
			Version: deploy.ContentVersion{VersionNo: 1, SHA256: sha(c.data), ContentSize: int64(len(c.data)), RelativePath: &c.name},
		})
	case r.URL.Path == "/v1/content/img/1/data":
		c.mu.Lock()
		c.ranges = append(c.ranges, r.Header.Get("Range"))
		cut := !c.cut
		c.cut = true
		c.mu.Unlock()
		w.Header().Set("ETag", `"`+sha(c.data)+`"`)
		if cut {
			w.Header().Set("Content-Length", fmt.Sprint(len(c.data)))
			_, _ = w.Write(c.data[:len(c.data)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(c.data))
	case r.URL.Path == "/v1/agent/windows-amd64" && c.winAgent != nil:
		w.Header().Set("X-Imprint-SHA256", sha(c.winAgent))
		_, _ = w.Write(c.winAgent)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/content/cap/versions":
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.captured = b
		c.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(deploy.ContentVersion{VersionNo: 7, SHA256: sha(b), ContentSize: int64(len(b))})
	default:
		http.NotFound(w, r)
	}
}

func newClient(t *testing.T, h http.Handler) *client.Machine {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	m, err := client.NewMachine(srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken("tok")
	m.SetRetryDelay(0)
	return m
}

// rootImage makes an ext4 filesystem image holding files and returns it
// zstd-compressed.
func rootImage(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for name, body := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	img := filepath.Join(dir, "root.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return buf.Bytes()
}

func newEnv(vars *sequence.Vars, settings map[string]string) (*sequence.Env, *strings.Builder) {
	var log strings.Builder
	return &sequence.Env{Vars: vars, Settings: settings, Content: map[string]string{}, Refs: map[string]deploy.Ref{}, Log: &log}, &log
}

func TestLinuxUEFIOnImageFile(t *testing.T) {
	need(t, "mkfs.ext4", "debugfs", "mdir")
	dir := t.TempDir()
	diskImg := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(diskImg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(diskImg, 800<<20); err != nil {
		t.Fatal(err)
	}
	efi := "fake UKI " + strings.Repeat("x", 100_000)
	cs := &contentServer{name: "debian.img.zst", data: rootImage(t, map[string]string{
		"boot/efi/EFI/BOOT/BOOTX64.EFI": efi,
		"boot/efi/EFI/debian/grub.cfg":  "set root=x\n",
	})}
	m := newClient(t, cs)
	var progressed int64
	d := &disksteps.Deps{
		Content: m, Uploader: m, TempDir: dir,
		Disks: func() ([]disksteps.DiskInfo, error) {
			return []disksteps.DiskInfo{
				{Path: "/dev/usbstick", Size: 8 << 30, Bus: "usb", Removable: true},
				{Path: diskImg, Size: 800 << 20, Bus: "virtio"},
			}, nil
		},
		Progress: func(_ string, done, _ int64) { progressed = done },
	}
	vars := sequence.NewVars()
	vars.SetInternal("IsUEFI", "True")
	ctx := context.Background()

	env, log := newEnv(vars, map[string]string{"DiskIndex": "1", "Layout": "Linux", "PartitionStyle": "Auto"})
	if _, err := (disksteps.Format{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Format disk: %v\n%s", err, log)
	}
	want := map[string]string{
		"OSDisk": diskImg, "OSDiskLayout": "linux-uefi", "OSPartition": diskImg + "#2",
		"ESPPartition": diskImg + "#1", "BootPartition": diskImg + "#1", "DiskIndex": "1",
	}
	got := map[string]string{}
	for k := range want {
		got[k] = vars.Value(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables after Format disk (-want +got):\n%s", diff)
	}
	if !strings.Contains(log.String(), "GPT table, layout linux-uefi") {
		t.Errorf("log has no table:\n%s", log)
	}

	env, log = newEnv(vars, map[string]string{"ImageFormat": "Auto"})
	env.Refs["Image"] = deploy.Ref{ID: "img", VersionNo: 1}
	if _, err := (disksteps.ApplyOS{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Apply operating system: %v\n%s", err, log)
	}
	if diff := cmp.Diff([]string{"", fmt.Sprintf("bytes=%d-", len(cs.data)/2)}, cs.ranges); diff != "" {
		t.Errorf("data requests (-want +got):\n%s", diff)
	}
	if progressed != int64(len(cs.data)) {
		t.Errorf("progress ended at %d of %d", progressed, len(cs.data))
	}
	if vars.Value("OSIMAGENAME") != "debian.img.zst" || vars.Value("OSIMAGEVERSION") != "1" {
		t.Errorf("OSIMAGENAME %q OSIMAGEVERSION %q", vars.Value("OSIMAGENAME"), vars.Value("OSIMAGEVERSION"))
	}

	env, log = newEnv(vars, map[string]string{})
	if _, err := (disksteps.PrepareOS{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Prepare operating system: %v\n%s", err, log)
	}
	esp, err := disksteps.ResolvePartition(vars.Value("ESPPartition"))
	if err != nil {
		t.Fatal(err)
	}
	img := fmt.Sprintf("%s@@%d", diskImg, esp.Start)
	out, err := exec.Command("mtype", "-i", img, "::/EFI/BOOT/BOOTX64.EFI").Output()
	if err != nil || string(out) != efi {
		t.Errorf("BOOTX64.EFI on the ESP: %v (%d bytes, want %d)", err, len(out), len(efi))
	}
	out, err = exec.Command("mtype", "-i", img, "::/EFI/debian/grub.cfg").Output()
	if err != nil || string(out) != "set root=x\n" {
		t.Errorf("grub.cfg on the ESP: %v %q", err, out)
	}

	// Capture the root partition back; the upload is the zstd of it.
	env, log = newEnv(vars, map[string]string{"TargetContentItem": "cap", "Compression": "Zstd"})
	if _, err := (disksteps.Capture{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Capture image: %v\n%s", err, log)
	}
	root, _ := disksteps.ResolvePartition(vars.Value("OSPartition"))
	zr, err := zstd.NewReader(bytes.NewReader(cs.captured))
	if err != nil {
		t.Fatal(err)
	}
	gotRoot, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(diskImg)
	defer f.Close()
	wantRoot := make([]byte, root.Size)
	if _, err := f.ReadAt(wantRoot, root.Start); err != nil {
		t.Fatal(err)
	}
	if sha(gotRoot) != sha(wantRoot) {
		t.Errorf("captured %d bytes differing from the %d of the partition", len(gotRoot), len(wantRoot))
	}
	if vars.Value("CAPTUREDVERSION") != "cap:7" {
		t.Errorf("CAPTUREDVERSION = %q", vars.Value("CAPTUREDVERSION"))
	}
}

func TestFailuresAreClear(t *testing.T) {
	need(t, "mkfs.ext4", "debugfs")
	dir := t.TempDir()
	diskImg := filepath.Join(dir, "disk.img")
	_ = os.WriteFile(diskImg, nil, 0o644)
	_ = os.Truncate(diskImg, 1<<30)
	cs := &contentServer{name: "noefi.img.zst", data: rootImage(t, map[string]string{"etc/hostname": "x\n"})}
	m := newClient(t, cs)
	two := func() ([]disksteps.DiskInfo, error) {
		return []disksteps.DiskInfo{{Path: diskImg, Size: 1 << 30, Bus: "virtio"}, {Path: diskImg + "2", Size: 1 << 30, Bus: "virtio"}}, nil
	}
	d := &disksteps.Deps{Content: m, TempDir: dir, Disks: two}
	ctx := context.Background()
	vars := sequence.NewVars()

	env, _ := newEnv(vars, map[string]string{"DiskRule": "bus=virtio", "Layout": "Linux", "PartitionStyle": "GPT"})
	_, err := (disksteps.Format{D: d}).Run(ctx, env)
	if err == nil || !strings.Contains(err.Error(), "2 disks match") {
		t.Errorf("two candidate disks: err = %v", err)
	}

	env, _ = newEnv(vars, map[string]string{"DiskRule": "bus=virtio,size<2G,size>512M", "DiskIndex": "0", "Layout": "Linux", "PartitionStyle": "GPT"})
	d.Disks = func() ([]disksteps.DiskInfo, error) {
		return []disksteps.DiskInfo{{Path: diskImg, Size: 1 << 30, Bus: "virtio"}, {Path: "/dev/big", Size: 4 << 40, Bus: "virtio"}}, nil
	}
	if _, err := (disksteps.Format{D: d}).Run(ctx, env); err != nil {
		t.Fatal(err)
	}
	env, _ = newEnv(vars, nil)
	env.Refs["image"] = deploy.Ref{ID: "img", VersionNo: 1}
	if _, err := (disksteps.ApplyOS{D: d}).Run(ctx, env); err != nil {
		t.Fatal(err)
	}
	env, _ = newEnv(vars, nil)
	_, err = (disksteps.PrepareOS{D: d}).Run(ctx, env)
	if err == nil || !strings.Contains(err.Error(), "no /boot/efi tree") || !strings.Contains(err.Error(), "BOOTX64.EFI") {
		t.Errorf("image without /boot/efi: err = %v", err)
	}

	vars.SetInternal("OSDiskLayout", "windows-bios")
	_, err = (disksteps.PrepareOS{D: d}).Run(ctx, env)
	if err == nil || !strings.Contains(err.Error(), "BIOS (MBR) disk") {
		t.Errorf("Windows BIOS target: err = %v", err)
	}

	// A corrupted image is refused by its SHA-256.
	vars.SetInternal("OSDiskLayout", "linux-uefi")
	bad := &contentServer{name: "x.img", data: []byte("raw bytes")}
	bad.cut = true
	mb := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/content/img/1" {
			_ = json.NewEncoder(w).Encode(client.ContentInfo{Item: deploy.ContentItem{Name: "x.img", Type: deploy.ContentFile},
				Version: deploy.ContentVersion{VersionNo: 1, SHA256: sha([]byte("other")), ContentSize: 9}})
			return
		}
		bad.ServeHTTP(w, r)
	}))
	d.Content = mb
	env, _ = newEnv(vars, map[string]string{"ImageFormat": "Raw"})
	env.Refs["Image"] = deploy.Ref{ID: "img", VersionNo: 1}
	_, err = (disksteps.ApplyOS{D: d}).Run(ctx, env)
	if err == nil || !strings.Contains(err.Error(), "must not be trusted") {
		t.Errorf("wrong hash: err = %v", err)
	}
}
