//go:build linux

package disk

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// testImage writes n bytes of compressible pseudo-random data.
func testImage(t testing.TB, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64<<10)
	for w := int64(0); w < n; {
		for i := range buf {
			buf[i] = byte(rng.IntN(16)) // half entropy: compresses, not trivially
		}
		k := min(int64(len(buf)), n-w)
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		w += k
	}
	return p
}

// compress runs the real CLI: tool -c [args] IMAGE > IMAGE.ext.
func compress(t testing.TB, img, tool string, args ...string) string {
	t.Helper()
	out := img + "." + tool
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := toolCmd(t, tool, append(append([]string{"-c"}, args...), img)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v %s", tool, err, stderr.String())
	}
	return out
}

func linuxDisk(t testing.TB) (string, Partition) {
	t.Helper()
	img := sparseImage(t, 1<<30)
	res, err := Format(context.Background(), img, LinuxUEFI)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := res.Part("root")
	return img, root
}

func TestApplyRawFormats(t *testing.T) {
	needTools(t, "zstd", "gzip", "xz")
	raw := testImage(t, 9<<20+123) // not a multiple of the chunk size
	want := sha256File(t, raw)
	files := map[Compression]string{
		Raw:  raw,
		Gzip: compress(t, raw, "gzip"),
		Xz:   compress(t, raw, "xz", "-T1"),
		Zstd: compress(t, raw, "zstd", "-q"),
	}
	for format, file := range files {
		for _, declared := range []Compression{Auto, format} {
			t.Run(fmt.Sprintf("%s-as-%s", format, declared), func(t *testing.T) {
				img, root := linuxDisk(t)
				in, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				var last int64
				w, err := ApplyRaw(t.Context(), img, root.Start, root.Size, in, declared, sha256File(t, file), func(n int64) { last = n })
				if err != nil {
					t.Fatal(err)
				}
				fi, _ := os.Stat(raw)
				if w.Format != format || w.Bytes != fi.Size() || w.SHA256 != want || last != fi.Size() {
					t.Errorf("Written = %+v, progress %d; want format %s, %d bytes, sha %s", w, last, format, fi.Size(), want)
				}
				if got := sha256Range(t, img, root.Start, fi.Size()); got != want {
					t.Errorf("partition sha256 = %s, want %s", got, want)
				}
				if esp, _ := os.ReadFile(img); len(esp) == 0 {
					t.Fatal("empty image")
				}
			})
		}
	}
}

func TestApplyRawTooLarge(t *testing.T) {
	img := sparseImage(t, 64<<20)
	data := bytes.Repeat([]byte{0xAB}, 9<<20)
	const off, limit = 1 << 20, 8 << 20
	_, err := ApplyRaw(t.Context(), img, off, limit, bytes.NewReader(data), Raw, "", nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "8388608 bytes (8 MiB) do not fit") {
		t.Fatalf("err = %v, want ErrTooLarge naming the limit", err)
	}
	// Nothing past the partition.
	b, _ := os.ReadFile(img)
	if i := bytes.IndexByte(b[off+limit:], 0xAB); i >= 0 {
		t.Errorf("byte written past the limit at %d", off+limit+i)
	}
	// Exactly the limit fits.
	if _, err := ApplyRaw(t.Context(), img, off, limit, bytes.NewReader(data[:limit]), Raw, "", nil); err != nil {
		t.Errorf("image of exactly the limit: %v", err)
	}
	// A range past the end of the target is refused up front.
	if _, err := ApplyRaw(t.Context(), img, 60<<20, 8<<20, bytes.NewReader(nil), Raw, "", nil); err == nil || !strings.Contains(err.Error(), "past the target's end") {
		t.Errorf("range past end: err = %v", err)
	}
}

func TestApplyRawBadInput(t *testing.T) {
	needTools(t, "zstd")
	raw := testImage(t, 6<<20)
	zst, err := os.ReadFile(compress(t, raw, "zstd", "-q"))
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(zst)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0x5A
	}
	img := sparseImage(t, 64<<20)
	tests := []struct {
		name   string
		in     []byte
		format Compression
		sha    string
		want   string
	}{
		{"corrupt zstd", corrupt, Auto, "", "zstd stream after"},
		{"truncated zstd", zst[:len(zst)/2], Zstd, "", "zstd stream after"},
		{"not gzip", []byte("plain text"), Gzip, "", "gzip header"},
		{"not xz", []byte("plain text"), Xz, "", "xz header"},
		{"wrong sha", zst, Auto, strings.Repeat("0", 64), "input SHA-256 is"},
		{"bad sha", zst, Auto, "xyz", "is not 64 hex digits"},
		{"bad format", zst, Compression("lz4"), "", `unknown compression "lz4"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ApplyRaw(t.Context(), img, 1<<20, 32<<20, bytes.NewReader(tt.in), tt.format, tt.sha, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestApplyRawDiskFull writes to /dev/full, whose every write fails with
// ENOSPC: the error must name the disk's failure and the offset, not blame
// the image stream, for every decoding path (the zstd and gzip decoders
// write their own blocks; xz goes through a copy buffer).
func TestApplyRawDiskFull(t *testing.T) {
	needTools(t, "zstd", "gzip", "xz")
	if _, err := os.Stat("/dev/full"); err != nil {
		testenv.Missing(t, "no /dev/full (a Linux device node; create it with mknod -m 666 /dev/full c 1 7): %v", err)
	}
	raw := testImage(t, 3<<20)
	for _, tool := range []string{"zstd", "gzip", "xz", ""} {
		file := raw
		if tool != "" {
			file = compress(t, raw, tool, "-q")
		}
		t.Run(cmp.Or(tool, "raw"), func(t *testing.T) {
			in, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			w, err := ApplyRaw(t.Context(), "/dev/full", 0, 1<<30, in, Auto, "", nil)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "write at 0") || strings.Contains(err.Error(), "stream after") {
				t.Errorf("err = %v, want ENOSPC at offset 0 reported as a write failure", err)
			}
			if w.Bytes != 0 {
				t.Errorf("Bytes = %d, want 0", w.Bytes)
			}
		})
	}
}

// endless yields data until its context is cancelled, like an HTTP body.
type endless struct {
	ctx    context.Context
	cancel func()
	n      int64
}

func (e *endless) Read(p []byte) (int, error) {
	if err := e.ctx.Err(); err != nil {
		return 0, err
	}
	e.n += int64(len(p))
	if e.n > 16<<20 {
		e.cancel()
	}
	return len(p), nil
}

func TestApplyRawCancel(t *testing.T) {
	img := sparseImage(t, 256<<20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := ApplyRaw(ctx, img, 0, 256<<20, &endless{ctx: ctx, cancel: cancel}, Raw, "", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCaptureApplyRoundTrip(t *testing.T) {
	img, root := linuxDisk(t)
	raw := testImage(t, 5<<20)
	f, _ := os.Open(raw)
	defer f.Close()
	if _, err := ApplyRaw(t.Context(), img, root.Start, root.Size, f, Raw, "", nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sha, n, err := CaptureRaw(t.Context(), img, root.Start, root.Size, &buf, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n >= root.Size/4 {
		t.Errorf("captured %d bytes (buffer %d) of a %d-byte partition", n, buf.Len(), root.Size)
	}
	img2, root2 := linuxDisk(t)
	w, err := ApplyRaw(t.Context(), img2, root2.Start, root2.Size, &buf, Auto, sha, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Format != Zstd || w.Bytes != root.Size || w.InputSHA256 != sha {
		t.Errorf("Written = %+v", w)
	}
	if a, b := sha256Range(t, img, root.Start, root.Size), sha256Range(t, img2, root2.Start, root2.Size); a != b {
		t.Errorf("partition hashes differ: %s vs %s", a, b)
	}
	if _, _, err := CaptureRaw(t.Context(), img, root.Start, 2<<30, io.Discard, 3); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("capture past end: err = %v", err)
	}
}

func TestApplyTar(t *testing.T) {
	needTools(t, "mkfs.ext4", "e2fsck", "debugfs")
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644}, "deployed\n")
	add(&tar.Header{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755}, "#!/bin/sh\n")
	add(&tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, "")
	add(&tar.Header{Name: "etc/hostname.bak", Typeflag: tar.TypeLink, Linkname: "etc/hostname"}, "")
	tw.Close()

	img, root := linuxDisk(t)
	if err := ApplyTar(t.Context(), root, bytes.NewReader(tb.Bytes()), TarOptions{}); err != nil {
		t.Fatal(err)
	}
	part := extractPart(t, img, root)
	runTool(t, "e2fsck", "-fn", part)
	if out := runTool(t, "debugfs", "-R", "cat /etc/hostname", part); !strings.Contains(out, "deployed") {
		t.Errorf("hostname: %q", out)
	}
	if out := runTool(t, "debugfs", "-R", "stat /usr/bin/tool", part); !strings.Contains(out, "Mode:  04755") {
		t.Errorf("setuid mode lost:\n%s", out)
	}
	if out := runTool(t, "debugfs", "-R", "stat /bin", part); !strings.Contains(out, `Fast link dest: "usr/bin"`) {
		t.Errorf("symlink:\n%s", out)
	}
	if out := runTool(t, "debugfs", "-R", "stat /etc/hostname", part); !strings.Contains(out, "Links: 2") {
		t.Errorf("hard link:\n%s", out)
	}

	// An escaping entry is refused.
	var bad bytes.Buffer
	tw = tar.NewWriter(&bad)
	tw.WriteHeader(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	if err := ApplyTar(t.Context(), root, &bad, TarOptions{}); err == nil || !strings.Contains(err.Error(), "outside the root") {
		t.Errorf("escaping entry: err = %v", err)
	}
}

func TestApplyWIM(t *testing.T) {
	needTools(t, "wimlib-imagex", "mkntfs", "ntfscat")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "Windows", "System32"), 0o755)
	os.WriteFile(filepath.Join(src, "Windows", "System32", "marker.txt"), []byte("wim-applied"), 0o644)
	wim := filepath.Join(t.TempDir(), "test.wim")
	runTool(t, "wimlib-imagex", "capture", src, wim, "Test", "--pipable")

	img := sparseImage(t, 3<<30)
	res, err := Format(t.Context(), img, WindowsUEFI)
	if err != nil {
		t.Fatal(err)
	}
	win, _ := res.Part("Windows")
	for _, mode := range []string{"stream", "path"} {
		t.Run(mode, func(t *testing.T) {
			source := WIMSource{Path: wim}
			if mode == "stream" {
				f, err := os.Open(wim)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				source = WIMSource{Stream: f}
			}
			if err := ApplyWIM(t.Context(), win, source, 1, "Windows"); err != nil {
				t.Fatal(err)
			}
			out := runTool(t, "ntfscat", extractPart(t, img, win), "Windows/System32/marker.txt")
			if out != "wim-applied" {
				t.Errorf("marker = %q", out)
			}
		})
	}
	if err := ApplyWIM(t.Context(), win, WIMSource{Path: wim}, 2, ""); err == nil || !strings.Contains(err.Error(), "wimlib-imagex") {
		t.Errorf("missing index: err = %v", err)
	}
	if err := ApplyWIM(t.Context(), win, WIMSource{}, 1, ""); err == nil {
		t.Error("no source: want an error")
	}
}
