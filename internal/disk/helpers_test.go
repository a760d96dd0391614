//go:build linux

package disk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// needTools skips the test when a checking tool is missing, or fails it
// under make test (testenv.Missing; make deps installs them: gdisk fdisk
// mtools dosfstools e2fsprogs zstd xz-utils ntfs-3g wimtools).
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := findTool(n); err != nil {
			testenv.Missing(t, "%s is not installed: apt-get install %s (make deps does)", n, testenv.Package(n))
		}
	}
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := toolCmd(t, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func toolCmd(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := findTool(name)
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command(bin, args...)
}

// sparseImage makes an image file of size bytes in a temp dir.
func sparseImage(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			Name     string `json:"name"`
			Bootable bool   `json:"bootable"`
			Attrs    string `json:"attrs"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdisk(t testing.TB, img string) sfdiskJSON {
	t.Helper()
	var v sfdiskJSON
	if err := json.Unmarshal([]byte(runTool(t, "sfdisk", "-J", img)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func sha256File(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Range(t testing.TB, p string, off, n int64) string {
	t.Helper()
	s, err := hashRange(t.Context(), p, off, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// extractPart copies a partition out of an image into its own sparse file
// (skipping all-zero MiBs) so tools without offset support can check it.
func extractPart(t testing.TB, img string, p Partition) string {
	t.Helper()
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(t.TempDir(), "part.img")
	dst, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Truncate(p.Size); err != nil {
		t.Fatal(err)
	}
	buf, zero := make([]byte, mib), make([]byte, mib)
	for off := int64(0); off < p.Size; off += mib {
		n, err := src.ReadAt(buf[:min(mib, p.Size-off)], p.Start+off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if bytes.Equal(buf[:n], zero[:n]) {
			continue
		}
		if _, err := dst.WriteAt(buf[:n], off); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
