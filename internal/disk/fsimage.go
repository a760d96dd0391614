//go:build linux

package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/hosttool"
)

// findTool finds a host program (internal/hosttool: PATH, then the system
// directories, since the boot image's agent has no PATH).
func findTool(name string) (string, error) { return hosttool.Find(name) }

// run runs a tool and returns an error that includes the end of its output.
func run(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	bin, err := findTool(name)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = "…" + msg[len(msg)-2000:]
		}
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return nil
}

// onPartition runs fn with a path that a filesystem tool can write to as the
// whole partition p. For a block device that is p.Device. For an image file it
// is a sparse temporary file of p.Size bytes whose data extents are copied into
// the image at p.Start afterwards (the partition's range is punched out first,
// so it reads as zeros where the temporary file has holes).
func onPartition(ctx context.Context, p Partition, fn func(target string) error) error {
	if p.Device != "" {
		return fn(p.Device)
	}
	if p.DiskPath == "" || p.Size <= 0 {
		return fmt.Errorf("partition %d has no device and no disk image range", p.Number)
	}
	tmp, err := os.CreateTemp("", "imprint-part-*.img")
	if err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Truncate(p.Size); err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	if err := fn(tmp.Name()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return spliceSparse(tmp, p.DiskPath, p.Start, p.Size)
}

// spliceSparse copies the data extents of src (SEEK_DATA/SEEK_HOLE) into dst
// at offset, after making dst's range [offset, offset+size) read as zeros.
func spliceSparse(src *os.File, dstPath string, offset, size int64) error {
	dst, err := os.OpenFile(dstPath, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("splice: %w", err)
	}
	defer dst.Close()
	if err := unix.Fallocate(int(dst.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, offset, size); err != nil {
		// Filesystems without hole punching: write zeros instead.
		if err := writeZeros(dst, offset, size); err != nil {
			return fmt.Errorf("splice: clear range: %w", err)
		}
	}
	buf := make([]byte, chunkSize)
	var pos int64
	for pos < size {
		data, err := src.Seek(pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data after pos
		}
		if err != nil {
			return fmt.Errorf("splice: seek data: %w", err)
		}
		hole, err := src.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("splice: seek hole: %w", err)
		}
		hole = min(hole, size)
		for off := data; off < hole; {
			n := min(int64(len(buf)), hole-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil {
				return fmt.Errorf("splice: read: %w", err)
			}
			if _, err := dst.WriteAt(buf[:n], offset+off); err != nil {
				return fmt.Errorf("splice: write: %w", err)
			}
			off += n
		}
		pos = hole
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("splice: sync: %w", err)
	}
	return nil
}

func writeZeros(f *os.File, offset, size int64) error {
	zero := make([]byte, min(size, chunkSize))
	for size > 0 {
		n := min(size, int64(len(zero)))
		if _, err := f.WriteAt(zero[:n], offset); err != nil {
			return err
		}
		offset += n
		size -= n
	}
	return nil
}

// MakeNTFS quick-formats p as NTFS with mkntfs, recording the partition's
// start sector and the usual 255/63 geometry so Windows can boot from it.
func MakeNTFS(ctx context.Context, p Partition, label string) error {
	args := []string{"-Q", "-F", "-p", strconv.FormatInt(p.Start/512, 10), "-H", "255", "-S", "63"}
	if label != "" {
		args = append(args, "-L", label)
	}
	err := onPartition(ctx, p, func(target string) error {
		return run(ctx, nil, "mkntfs", append(args, target)...)
	})
	if err != nil {
		return fmt.Errorf("ntfs on partition %d: %w", p.Number, err)
	}
	return nil
}
