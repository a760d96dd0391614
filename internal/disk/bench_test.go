//go:build linux

package disk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// BenchmarkApplyZstd writes a zstd image into an image file with ApplyRaw
// and, as the baseline, with `zstd -dc IMAGE | dd of=DISK bs=4M
// conv=notrunc && sync`, and reports the MB/s of each and their ratio.
// The disk file is written in full first, like a real disk. "imprint" is
// the Apply operating system step's default; "imprint-verify" adds the
// VerifyWrite read-back.
//
// Two images: half-entropy bytes (every byte one of 16 values: no matches,
// all Huffman-coded literals, the hardest case for a decoder) and an ext4
// file system holding the Go distribution (source text, binaries, metadata
// and free space: what an OS image looks like).
func BenchmarkApplyZstd(b *testing.B) {
	needTools(b, "zstd", "dd", "sh")
	b.Run("half-entropy", func(b *testing.B) {
		const size = 256 << 20
		raw := testImage(b, size)
		benchApply(b, raw, size)
	})
	b.Run("ext4-goroot", func(b *testing.B) {
		needTools(b, "mkfs.ext4")
		const size = 512 << 20
		raw := filepath.Join(b.TempDir(), "os.img")
		if out, err := exec.Command("mkfs.ext4", "-q", "-O", "^has_journal", "-E", "root_owner=0:0",
			"-d", runtime.GOROOT(), raw, "512M").CombinedOutput(); err != nil {
			b.Fatalf("mkfs.ext4 -d %s: %v: %s", runtime.GOROOT(), err, out)
		}
		benchApply(b, raw, size)
	})
}

// benchApply compresses raw (size bytes) with the zstd CLI and writes it
// to a prefilled disk file with each variant. The variants take turns
// within every iteration, so a noisy neighbour slows them alike instead of
// whichever happened to run at the time; each reports its MB/s, and the
// ratios to the baseline are reported as metrics.
func benchApply(b *testing.B, raw string, size int64) {
	zst := compress(b, raw, "zstd", "-q", "-T0")
	os.Remove(raw)
	disk := sparseImage(b, size+2<<20)
	// Write the whole disk file once, so that no variant pays for the
	// file system allocating its blocks (a real disk has them all).
	if out, err := exec.Command("sh", "-c", `head -c "$1" /dev/zero | dd of="$2" bs=4M conv=notrunc,fsync status=none iflag=fullblock`,
		"sh", itoa(size+2<<20), disk).CombinedOutput(); err != nil {
		b.Fatalf("prefill: %v: %s", err, out)
	}
	apply := func(opts ...ApplyOption) {
		f, err := os.Open(zst)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := ApplyRaw(context.Background(), disk, 0, size+2<<20, f, Auto, "", nil, opts...); err != nil {
			b.Fatal(err)
		}
	}
	variants := []struct {
		name string
		run  func()
	}{
		{"zstd-dd", func() {
			cmd := exec.Command("sh", "-c", `zstd -q -dc "$1" | dd of="$2" bs=4M conv=notrunc status=none && sync "$2"`, "sh", zst, disk)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}},
		{"imprint", func() { apply(WithoutReadBack()) }},
		{"imprint-verify", func() { apply() }},
	}
	spent := make([]time.Duration, len(variants))
	b.SetBytes(size * int64(len(variants)))
	for b.Loop() {
		for i, v := range variants {
			start := time.Now()
			v.run()
			spent[i] += time.Since(start)
		}
	}
	mbs := func(i int) float64 { return float64(size) * float64(b.N) / spent[i].Seconds() / 1e6 }
	for i, v := range variants {
		b.ReportMetric(mbs(i), v.name+"-MB/s")
	}
	b.ReportMetric(mbs(1)/mbs(0), "ratio")
	b.ReportMetric(mbs(2)/mbs(0), "verify-ratio")
}
