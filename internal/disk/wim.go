//go:build linux

package disk

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// WIMSource is where ApplyWIM reads the image: Path for a WIM file on disk,
// or Stream for a pipable WIM (captured with wimlib-imagex --pipable) read
// from a stream such as an HTTP body. Exactly one must be set.
type WIMSource struct {
	Path   string
	Stream io.Reader
}

// ApplyWIM quick-formats p as NTFS (mkntfs) and applies image index (from 1)
// of the WIM with wimlib-imagex, which writes the NTFS volume directly without
// mounting it. label is the NTFS volume label ("" for none).
func ApplyWIM(ctx context.Context, p Partition, src WIMSource, index int, label string) error {
	if (src.Path == "") == (src.Stream == nil) {
		return deploy.Errorf(deploy.KindInvalid, "apply wim: give either a WIM file path or a pipable WIM stream")
	}
	if index < 1 {
		return deploy.Errorf(deploy.KindInvalid, "apply wim: image index %d (WIM images are numbered from 1)", index)
	}
	if _, err := findTool("wimlib-imagex"); err != nil {
		return fmt.Errorf("apply wim: %w", err)
	}
	args := []string{"-Q", "-F", "-p", strconv.FormatInt(p.Start/512, 10), "-H", "255", "-S", "63"}
	if label != "" {
		args = append(args, "-L", label)
	}
	err := onPartition(ctx, p, func(target string) error {
		if err := run(ctx, nil, "mkntfs", append(args, target)...); err != nil {
			return err
		}
		if src.Stream != nil {
			return run(ctx, src.Stream, "wimlib-imagex", "apply", "-", strconv.Itoa(index), target)
		}
		return run(ctx, nil, "wimlib-imagex", "apply", src.Path, strconv.Itoa(index), target)
	})
	if err != nil {
		return fmt.Errorf("apply wim to partition %d: %w", p.Number, err)
	}
	return nil
}

// ExtractWIM extracts image index (from 1) of the WIM file at path into the
// directory dir (a driver pack stored as a WIM, as DeployR stores them).
func ExtractWIM(ctx context.Context, path string, index int, dir string) error {
	if _, err := findTool("wimlib-imagex"); err != nil {
		return fmt.Errorf("extract wim: %w", err)
	}
	if err := run(ctx, nil, "wimlib-imagex", "apply", path, strconv.Itoa(index), dir); err != nil {
		return fmt.Errorf("extract wim %s: %w", path, err)
	}
	return nil
}
