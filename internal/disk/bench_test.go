//go:build linux

package disk

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// BenchmarkApplyZstd writes a 256 MiB zstd image into an image file with
// ApplyRaw (including its read-back verification) and, as the baseline,
// with `zstd -dc IMAGE | dd of=DISK bs=4M conv=notrunc`. Both set the image
// size as bytes, so their MB/s compare directly. The disk file is written
// in full first, like a real disk. imprint-no-readback is the Apply
// operating system step's default; imprint adds the VerifyWrite read-back.
func BenchmarkApplyZstd(b *testing.B) {
	needTools(b, "zstd", "dd", "sh")
	const size = 256 << 20
	raw := testImage(b, size)
	zst := compress(b, raw, "zstd", "-q", "-T0")
	os.Remove(raw)
	disk := sparseImage(b, size+2<<20)
	// Write the whole disk file once, so that no variant pays for the
	// file system allocating its blocks (a real disk has them all).
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+disk, "bs=4M", "count=65", "conv=notrunc,fsync", "status=none").CombinedOutput(); err != nil {
		b.Fatalf("prefill: %v: %s", err, out)
	}

	b.Run("imprint", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(zst)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ApplyRaw(context.Background(), disk, 0, size+2<<20, f, Auto, "", nil); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("imprint-no-readback", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(zst)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ApplyRaw(context.Background(), disk, 0, size+2<<20, f, Auto, "", nil, WithoutReadBack()); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("zstd-dd", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			cmd := exec.Command("sh", "-c", `zstd -q -dc "$1" | dd of="$2" bs=4M conv=notrunc status=none && sync "$2"`, "sh", zst, disk)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}
	})
}
