package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

func TestBuildPlanDefaults(t *testing.T) {
	exe := func() (string, error) { return "/opt/imprint/bin/imprint", nil }
	noExe := func() (string, error) { return "", errors.New("no /proc") }
	tests := []struct {
		name    string
		flags   buildFlags
		exe     func() (string, error)
		want    buildPlan
		wantErr string
	}{
		{name: "defaults", exe: exe, want: buildPlan{
			Agent: "/opt/imprint/bin/imprint-agent", Cache: "/data/cache", Out: "/data/boot/images/x86_64"}},
		{name: "all given", exe: noExe,
			flags: buildFlags{agent: "/a", kernel: "/k/vmlinuz", modules: "/k/6.1.0", cache: "/c", out: "/o"},
			want:  buildPlan{Agent: "/a", Kernel: "/k/vmlinuz", ModulesDir: "/k/6.1.0", Cache: "/c", Out: "/o"}},
		{name: "kernel without modules", exe: exe, flags: buildFlags{kernel: "/k/vmlinuz"}, wantErr: "--kernel and --modules go together"},
		{name: "modules without kernel", exe: exe, flags: buildFlags{modules: "/k/6.1.0"}, wantErr: "--kernel and --modules go together"},
		{name: "no executable", exe: noExe, wantErr: "give --agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.flags.plan("/data", tt.exe)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBootimageUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bootimage", "build", "--kernel", "/k"}, exitUsage, "--kernel and --modules go together"},
		{[]string{"bootimage", "build", "--agent", filepath.Join(dir, "none")}, exitError, "agent " + filepath.Join(dir, "none") + " not found"},
		{[]string{"bootimage", "iso", "--server", "https://x:7281"}, exitUsage, "--out FILE is required"},
		{[]string{"bootimage", "iso", "--out", "x.iso"}, exitUsage, "--server URL is required"},
		{[]string{"bootimage", "iso", "--out", "x.iso", "--server", "https://x:7281"}, exitError, "start the server once"},
	}
	for _, tt := range tests {
		r := newTestApp(t, nil)
		if code := r.run(append(tt.args, "--data", dir)...); code != tt.code {
			t.Errorf("%v: exit %d, want %d; stderr: %s", tt.args, code, tt.code, r.stderr)
		}
		if !strings.Contains(r.stderr.String(), tt.want) {
			t.Errorf("%v: stderr = %q, want %q", tt.args, r.stderr, tt.want)
		}
	}
}

func TestCAFingerprint(t *testing.T) {
	der := []byte("not really DER, but hashed as given")
	path := filepath.Join(t.TempDir(), "ca.crt")
	pemBytes := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("skip me")}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	got, err := caFingerprint(path)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Errorf("fingerprint = %q, %v; want %x", got, err, sum)
	}
	os.WriteFile(path, []byte("garbage"), 0o644)
	if _, err := caFingerprint(path); err == nil || !strings.Contains(err.Error(), "no PEM CERTIFICATE") {
		t.Errorf("garbage: %v", err)
	}
}

// TestRegisterNeedsServer checks a build with no server says so (the
// files stay) rather than failing: registerBootImage reports Unavailable.
func TestRegisterNeedsServer(t *testing.T) {
	r := newTestApp(t, nil)
	a := &app{stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, getenv: func(string) string { return "" }}
	a.dataDir = optString{value: t.TempDir(), set: true}
	img := &bootimage.Image{Dir: t.TempDir(), Manifest: bootimage.Manifest{KernelVersion: "6.1.0-test"}}
	_, _, err := a.registerBootImage(context.Background(), img)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the imprint server") {
		t.Errorf("register without a server: %v", err)
	}
}

// TestRegisterBootImage registers a boot image directory (files made here;
// a real build needs a kernel) with the real server as a BootImage Folder
// version, twice: the second time as a new version of the same item, and
// only the image's three files.
func TestRegisterBootImage(t *testing.T) {
	dir := servertest.Start(t, nil).DataDir()
	ctx := context.Background()

	imgDir := t.TempDir()
	for name, body := range map[string]string{"vmlinuz": "kernel", "initrd.img": "initramfs", "manifest.json": "{}", "stray.tmp": "not uploaded"} {
		if err := os.WriteFile(filepath.Join(imgDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := &bootimage.Image{Dir: imgDir, Manifest: bootimage.Manifest{KernelVersion: "6.1.0-test"}}
	r := newTestApp(t, nil)
	a := &app{stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, getenv: func(string) string { return "" }}
	a.dataDir = optString{value: dir, set: true}
	var itemID string
	for want := 1; want <= 2; want++ {
		item, v, err := a.registerBootImage(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if item.Name != "Imprint boot image 6.1.0-test" || v.VersionNo != want || (itemID != "" && item.ID != itemID) {
			t.Errorf("registration %d: item %s %q version %d", want, item.ID, item.Name, v.VersionNo)
		}
		itemID = item.ID
	}
	var buf bytes.Buffer
	c, err := a.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DownloadContentVersion(ctx, itemID, 2, &buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for tr := tar.NewReader(&buf); ; {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"initrd.img", "manifest.json", "vmlinuz"}, names); diff != "" {
		t.Errorf("registered files (-want +got):\n%s", diff)
	}
}
