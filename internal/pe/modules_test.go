package pe

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestParseModuleList(t *testing.T) {
	tests := map[string]struct {
		list    string
		want    []string
		wantErr []string
	}{
		"empty": {list: ""},
		"order, comments, blanks": {
			list: "# network first\nkernel/drivers/virtio/virtio.ko\n\n  kernel/drivers/virtio/virtio_ring.ko.xz  # ring\nkernel/net/core/failover.ko.zst\r\n./kernel/x/y.ko.gz\n",
			want: []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko.xz", "kernel/net/core/failover.ko.zst", "kernel/x/y.ko.gz"},
		},
		"bad lines named": {
			list:    "ok.ko\n/abs/a.ko\n../up.ko\nnot-a-module.txt\ntwo.ko three.ko\na/../../b.ko\n",
			wantErr: []string{`line 2: "/abs/a.ko" must be relative`, `line 3: "../up.ko" leaves the module root`, `line 4: "not-a-module.txt" is not a .ko`, `line 5: "two.ko three.ko": one path per line`, `line 6: "a/../../b.ko" leaves`},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseModuleList(tt.list)
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if len(tt.wantErr) > 0 {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("modules (-want +got):\n%s", d)
			}
		})
	}
}

// fakeKernel records what reached each syscall and answers from errs,
// keyed by the module's contents.
type fakeKernel struct {
	calls []string
	errs  map[string]error
}

func (k *fakeKernel) finitModule(f *os.File) error {
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	k.calls = append(k.calls, "finit:"+string(b))
	return k.errs[string(b)]
}

func (k *fakeKernel) initModule(image []byte) error {
	k.calls = append(k.calls, "init:"+string(image))
	return k.errs[string(image)]
}

func writeModule(t *testing.T, root, rel, content string) {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser = nopCloser{&buf}
	var err error
	switch moduleKind(rel) {
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "zst":
		w, err = zstd.NewWriter(&buf)
	case "gz":
		w = gzip.NewWriter(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestLoadModules(t *testing.T) {
	root := t.TempDir()
	writeModule(t, root, "kernel/virtio.ko", "VIRTIO")
	writeModule(t, root, "kernel/ring.ko.xz", "RING")
	writeModule(t, root, "kernel/net.ko.zst", "NET")
	writeModule(t, root, "kernel/blk.ko.gz", "BLK")
	writeModule(t, root, "kernel/builtin.ko", "ALREADY")
	writeModule(t, root, "kernel/bad.ko", "BAD")
	writeModule(t, root, "kernel/badz.ko.zst", "BADZ")
	if err := os.WriteFile(filepath.Join(root, "kernel/corrupt.ko.xz"), []byte("not xz"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{errs: map[string]error{
		"ALREADY": syscall.EEXIST,
		"BAD":     fmt.Errorf("finit_module: %w", syscall.ENOEXEC),
		"BADZ":    syscall.EINVAL,
	}}
	list := strings.Join([]string{
		"kernel/virtio.ko", "kernel/ring.ko.xz", "kernel/missing.ko", "kernel/bad.ko",
		"kernel/corrupt.ko.xz", "kernel/net.ko.zst", "kernel/builtin.ko", "kernel/badz.ko.zst", "kernel/blk.ko.gz",
	}, "\n")
	loaded, err := loadModules(k, root, list)
	if d := cmp.Diff([]string{"kernel/virtio.ko", "kernel/ring.ko.xz", "kernel/net.ko.zst", "kernel/builtin.ko", "kernel/blk.ko.gz"}, loaded); d != "" {
		t.Errorf("loaded (-want +got):\n%s", d)
	}
	wantCalls := []string{"finit:VIRTIO", "init:RING", "finit:BAD", "init:NET", "finit:ALREADY", "init:BADZ", "init:BLK"}
	if d := cmp.Diff(wantCalls, k.calls); d != "" {
		t.Errorf("syscalls (-want +got):\n%s", d)
	}
	if err == nil {
		t.Fatal("no error for the failed modules")
	}
	if !errors.Is(err, syscall.ENOEXEC) || !errors.Is(err, syscall.EINVAL) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v does not wrap every failure", err)
	}
	for _, m := range []string{"kernel/missing.ko", "kernel/bad.ko", "kernel/corrupt.ko.xz", "kernel/badz.ko.zst"} {
		if !strings.Contains(err.Error(), "load module "+m+":") {
			t.Errorf("err does not name %s:\n%v", m, err)
		}
	}
	if strings.Contains(err.Error(), "builtin") {
		t.Errorf("an already loaded module is reported as failed:\n%v", err)
	}
}

// TestLoadModulesEFIVarFSWithoutUEFI: efivarfs refuses to load (ENODEV)
// when the machine did not boot through UEFI; that is not a failure, but
// ENODEV from any other module is.
func TestLoadModulesEFIVarFSWithoutUEFI(t *testing.T) {
	root := t.TempDir()
	writeModule(t, root, "kernel/fs/efivarfs/efivarfs.ko", "EFIVARFS")
	writeModule(t, root, "kernel/drivers/nodev.ko.xz", "NODEV")
	k := &fakeKernel{errs: map[string]error{"EFIVARFS": syscall.ENODEV, "NODEV": syscall.ENODEV}}
	loaded, err := loadModules(k, root, "kernel/fs/efivarfs/efivarfs.ko\nkernel/drivers/nodev.ko.xz\n")
	if len(loaded) != 0 {
		t.Errorf("loaded %v", loaded)
	}
	if err == nil || strings.Contains(err.Error(), "efivarfs") || !strings.Contains(err.Error(), "nodev.ko.xz") {
		t.Errorf("err = %v, want only nodev reported", err)
	}
}

func TestLoadModulesBadList(t *testing.T) {
	k := &fakeKernel{}
	_, err := loadModules(k, t.TempDir(), "/etc/passwd.ko\n")
	if err == nil || !strings.Contains(err.Error(), "must be relative") {
		t.Fatalf("err = %v", err)
	}
	if len(k.calls) != 0 {
		t.Errorf("loaded %v from a bad list", k.calls)
	}
}
