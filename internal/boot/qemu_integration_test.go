//go:build integration

package boot_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestQEMUiPXEChain boots QEMU's own iPXE ROM (Debian's ipxe-qemu, the
// 2019 build) against the handler and checks that the real iPXE parses
// both stages: stage one reports the machine with the settings it uses
// (netX/mac:hexhyp, uuid, cpuid-derived arch, platform, serial:uristring)
// and the stage-two menu times out into the deploy entry, which fetches
// the kernel. The kernel is junk, so iPXE stops there.
//
// Needs qemu-system-x86, ipxe-qemu and ovmf (apt-get install -y
// --no-install-recommends qemu-system-x86 ipxe-qemu ovmf).
func TestQEMUiPXEChain(t *testing.T) {
	qemu := testenv.LookPath(t, "qemu-system-x86_64")
	for _, platform := range []string{"pcbios", "efi"} {
		t.Run(platform, func(t *testing.T) {
			t.Parallel()
			runChain(t, qemu, platform)
		})
	}
}

type recorder struct {
	mu   sync.Mutex
	reqs []string
	seen chan struct{}
}

func runChain(t *testing.T, qemu, platform string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "x86_64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "x86_64", "vmlinuz"), []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.BootURL = fmt.Sprintf("http://10.0.2.2:%d", port)
	cfg.MenuTimeout = 2 * time.Second
	h := newHandler(t, cfg, boot.DirFileSource(root), nil)

	rec := &recorder{seen: make(chan struct{})}
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.URL.RequestURI())
		rec.mu.Unlock()
		if r.URL.Path == "/images/x86_64/vmlinuz" {
			once.Do(func() { close(rec.seen) })
		}
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	const uuid = "6A1F0C4E-2B3D-4E5F-8A9B-0C1D2E3F4A5B"
	const serial = "SN 42/x&y"
	args := []string{
		"-nographic", "-monitor", "none", "-m", "256", "-cpu", "max",
		"-uuid", uuid, "-smbios", "type=1,serial=" + serial,
		"-netdev", "user,id=n0,bootfile=" + cfg.BootURL + "/boot.ipxe",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
	}
	if platform == "efi" {
		vars := filepath.Join(t.TempDir(), "vars.fd")
		b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
		if err != nil {
			testenv.Missing(t, "OVMF firmware is not there: apt-get install ovmf: %v", err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-machine", "q35",
			"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
			"-drive", "if=pflash,format=raw,file="+vars)
	} else {
		args = append(args, "-boot", "n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-rec.seen:
		cmd.Process.Kill()
		<-done
	case err := <-done:
		t.Fatalf("qemu exited early: %v\n%s", err, out.String())
	case <-ctx.Done():
		<-done
		t.Fatalf("no kernel request within the deadline; requests %q\nconsole:\n%s", rec.reqs, out.String())
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) < 3 || rec.reqs[0] != "/boot.ipxe" || !strings.HasPrefix(rec.reqs[1], "/ipxe?") {
		t.Fatalf("requests %q, want /boot.ipxe, /ipxe?..., /images/x86_64/vmlinuz", rec.reqs)
	}
	u, err := url.Parse(rec.reqs[1])
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"mac": {"52-54-00-12-34-56"}, "uuid": {strings.ToLower(uuid)}, "arch": {"x86_64"},
		"platform": {platform}, "serial": {hexSetting(serial)},
	}
	if diff := cmp.Diff(want, u.Query()); diff != "" {
		t.Errorf("stage-two query %q (-want +got):\n%s", rec.reqs[1], diff)
	}
}

// hexSetting is iPXE's ":hex" rendering of s.
func hexSetting(s string) string {
	var parts []string
	for _, b := range []byte(s) {
		parts = append(parts, fmt.Sprintf("%02x", b))
	}
	return strings.Join(parts, ":")
}
