package bootimage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// buildTestInit builds testdata/testinit as a static binary and returns
// its path.
func buildTestInit(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "testinit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/testinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test init: %v\n%s", err, b)
	}
	return out
}

// member is one initramfs entry as read back by readInitramfs.
type member struct {
	Mode uint32
	Data string // file content or symlink target
	RDev [2]uint32
}

// readInitramfs gunzips and parses a newc archive, independent of the
// package's writer.
func readInitramfs(t *testing.T, gz []byte) (map[string]member, []string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	m := map[string]member{}
	var order []string
	off := 0
	hex := func(i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d: header field %d: %v", off, i, err)
		}
		return int(v)
	}
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad newc header at offset %d", off)
		}
		mode, size, rmaj, rmin, nsize := hex(1), hex(6), hex(9), hex(10), hex(11)
		name := strings.TrimSuffix(string(b[off+110:off+110+nsize]), "\x00")
		off = (off + 110 + nsize + 3) &^ 3
		data := string(b[off : off+size])
		off = (off + size + 3) &^ 3
		if name == "TRAILER!!!" {
			return m, order
		}
		if _, dup := m[name]; dup {
			t.Fatalf("duplicate entry %s", name)
		}
		m[name] = member{Mode: uint32(mode), Data: data, RDev: [2]uint32{uint32(rmaj), uint32(rmin)}}
		order = append(order, name)
	}
}

// testCacheDir is where downloaded kernels are kept between test runs.
func testCacheDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("IMPRINT_TEST_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "imprint-test")
}

// fetchKernel returns Debian's current kernel from the test cache,
// downloading it the first time. When apt cannot reach the mirror it
// skips the test, or fails it under make test (testenv.Missing).
func fetchKernel(t *testing.T) *bootimage.Kernel {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "depmod"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install kmod for depmod): %v", tool, err)
		}
	}
	var log bytes.Buffer
	ctx := context.Background()
	k, err := bootimage.FetchKernel(ctx, testCacheDir(t), &log)
	if errors.Is(err, bootimage.ErrNoCandidate) && os.Geteuid() == 0 {
		if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			testenv.Missing(t, "apt-get update cannot reach the Debian mirror: %v\n%s", uerr, out)
		}
		k, err = bootimage.FetchKernel(ctx, testCacheDir(t), &log)
	}
	if errors.Is(err, bootimage.ErrDownload) {
		testenv.Missing(t, "apt-get cannot download the kernel from the Debian mirror: %v", err)
	}
	if err != nil {
		t.Fatalf("FetchKernel: %v\n%s", err, log.String())
	}
	t.Logf("%s", log.String())
	return k
}
