package content

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CopyReport says what CopyBlobs did.
type CopyReport struct {
	Blobs       int   `json:"blobs"`       // blobs asked for
	Bytes       int64 `json:"bytes"`       // their total size
	Copied      int   `json:"copied"`      // streamed from the source in this call
	CopiedBytes int64 `json:"copiedBytes"` // their size
	Present     int   `json:"present"`     // already in the target (an earlier run)
	Verified    int   `json:"verified"`    // in the target with the right size afterwards
}

// CopyProblem is a blob CopyBlobs could not copy because of the source.
type CopyProblem struct {
	SHA256 string
	Detail string
}

// CopyError is CopyBlobs' error when blobs are missing or corrupt in the
// source: everything else was copied, the target holds no partial blob.
type CopyError struct {
	Report   CopyReport
	Problems []CopyProblem
}

func (e *CopyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d blobs cannot be copied from the source:", len(e.Problems), e.Report.Blobs)
	for i, p := range e.Problems {
		if i == 5 {
			fmt.Fprintf(&b, " … and %d more", len(e.Problems)-i)
			break
		}
		fmt.Fprintf(&b, " %s (%s);", p.SHA256, p.Detail)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// CopyBlobs copies the blobs want names (hash → size in bytes, or -1 when
// unknown) from src to dst, in hash order, and then checks that dst holds
// every one with its size.
//
// Each blob streams from src.Open into dst.Put with ExpectSHA256 set, so
// the target hashes the bytes as it stores them and keeps nothing whose
// hash differs; memory is the target's one buffer. A blob dst already
// holds at the right size is not read again: under the Blobs promises a
// blob is complete under its name or absent, so a run cut short (a
// connection lost, the process killed) leaves nothing partial and the next
// run resumes where it stopped. A blob of the wrong size in dst is checked
// (Verify) and, if corrupt, set aside and copied again.
//
// A blob missing or corrupt in the source does not stop the copy: the
// others are copied and the result is a *CopyError naming each. Any other
// failure (the target unreachable, the context cancelled) stops at once
// with an error that says how far the copy got. progress, if not nil, is
// called after each blob.
func CopyBlobs(ctx context.Context, dst, src Blobs, want map[string]int64, progress func(CopyReport)) (CopyReport, error) {
	var rep CopyReport
	hashes := make([]string, 0, len(want))
	for h, size := range want {
		if err := checkHash(h); err != nil {
			return rep, fmt.Errorf("copy blobs: %w", err)
		}
		hashes = append(hashes, h)
		rep.Blobs++
		rep.Bytes += max(size, 0)
	}
	slices.Sort(hashes)
	var problems []CopyProblem
	stopped := func(h string, err error) error {
		return fmt.Errorf("copy blob %s: %w (%d of %d blobs in the target, nothing partial: run the same command again to resume)",
			h, err, rep.Copied+rep.Present, rep.Blobs)
	}
	for _, h := range hashes {
		if err := ctx.Err(); err != nil {
			return rep, stopped(h, err)
		}
		size := want[h]
		have, err := present(ctx, dst, h, size)
		if err != nil {
			return rep, stopped(h, err)
		}
		if have {
			rep.Present++
		} else {
			n, detail, err := copyBlob(ctx, dst, src, h, size)
			switch {
			case err != nil:
				return rep, stopped(h, err)
			case detail != "":
				problems = append(problems, CopyProblem{SHA256: h, Detail: detail})
			default:
				rep.Copied++
				rep.CopiedBytes += n
			}
		}
		if progress != nil {
			progress(rep)
		}
	}
	// The check: every blob asked for is in the target at its size. (Its
	// bytes were hashed as the target stored them, by this run or an
	// earlier one.)
	bad := map[string]bool{}
	for _, p := range problems {
		bad[p.SHA256] = true
	}
	for _, h := range hashes {
		if bad[h] {
			continue
		}
		b, err := dst.Stat(ctx, h)
		if err != nil {
			return rep, fmt.Errorf("check blob %s in the target: %w", h, err)
		}
		if size := want[h]; size >= 0 && b.Size != size {
			return rep, fmt.Errorf("check blob %s in the target: %d bytes, want %d", h, b.Size, size)
		}
		rep.Verified++
	}
	if len(problems) > 0 {
		return rep, &CopyError{Report: rep, Problems: problems}
	}
	return rep, nil
}

// present reports whether dst holds blob h of the given size (-1: any). A
// blob of another size is verified and set aside if corrupt, so it is
// copied again.
func present(ctx context.Context, dst Blobs, h string, size int64) (bool, error) {
	b, err := dst.Stat(ctx, h)
	if deploy.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat in the target: %w", err)
	}
	if size < 0 || b.Size == size {
		return true, nil
	}
	err = dst.Verify(ctx, h)
	if _, ok := AsCorrupt(err); ok {
		if err := dst.SetAside(ctx, h); err != nil {
			return false, fmt.Errorf("set aside the corrupt copy in the target: %w", err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("verify in the target: %w", err)
	}
	// It matches its hash: the size the source's records give is wrong,
	// which the copy cannot mend.
	return false, fmt.Errorf("the target holds it intact at %d bytes, but the version records %d", b.Size, size)
}

// copyBlob streams blob h from src to dst. A source problem (missing,
// corrupt, of another size than recorded) is returned as detail, any
// other failure as err.
func copyBlob(ctx context.Context, dst, src Blobs, h string, size int64) (n int64, detail string, err error) {
	obj, err := src.Open(ctx, h)
	if deploy.IsNotFound(err) {
		return 0, "missing in the source", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("open in the source: %w", err)
	}
	defer obj.Close()
	if size >= 0 && obj.Size() != size {
		return 0, fmt.Sprintf("%d bytes in the source, the version records %d", obj.Size(), size), nil
	}
	b, err := dst.Put(ctx, obj, PutOptions{ExpectSHA256: h, MaxSize: obj.Size()})
	if err == nil {
		return b.Size, "", nil
	}
	if ctx.Err() == nil && deploy.ErrorKind(err) == deploy.KindInvalid {
		// The target refused bytes that do not hash to h: tell a corrupt
		// source from anything else by reading it again.
		if _, ok := AsCorrupt(src.Verify(ctx, h)); ok {
			return 0, "corrupt in the source: its bytes do not match its hash (imprint content verify on the old server finds it)", nil
		}
	}
	return 0, "", fmt.Errorf("store in the target: %w", err)
}
