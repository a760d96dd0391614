package cli

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Folder uploads: the directory is sent as a tar stream written on the fly
// (walk → archive/tar → io.Pipe → HTTP body), so no tree of any size is ever
// held in memory or on disk. Only regular files and directories are sent; a
// symbolic link or any other special file is refused with its path, because
// a deployment would silently lose it otherwise.

// folderStats is what a dry walk of a folder finds.
type folderStats struct {
	Files   int
	Dirs    int
	Bytes   int64 // of the files
	TarSize int64 // estimated length of the tar stream (exact without long names)
}

// walkFolder calls fn for every entry below root (root itself excluded), in
// lexical order, with its slash-separated relative path. It refuses anything
// but regular files and directories.
func walkFolder(root string, fn func(rel, path string, d fs.DirEntry) error) error {
	info, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("folder: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("folder: %s is not a directory", root)
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("folder: %w", err)
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("folder: %w", err)
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("folder: %s is a symbolic link: only regular files and directories can be uploaded (copy the target in instead)", rel)
		case !t.IsDir() && !t.IsRegular():
			return fmt.Errorf("folder: %s is not a regular file or directory (%s): it cannot be uploaded", rel, t.Type())
		}
		return fn(rel, path, d)
	})
}

// scanFolder walks root once to check it and measure it.
func scanFolder(root string) (folderStats, error) {
	var st folderStats
	err := walkFolder(root, func(rel, path string, d fs.DirEntry) error {
		st.TarSize += 512 // header
		if d.IsDir() {
			st.Dirs++
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("folder: %w", err)
		}
		st.Files++
		st.Bytes += info.Size()
		st.TarSize += (info.Size() + 511) / 512 * 512
		return nil
	})
	st.TarSize += 1024 // two zero blocks end the archive
	return st, err
}

// writeTar writes the tar stream of root to w: directories with a trailing
// slash, then files, each with its permission bits and modification time.
func writeTar(ctx context.Context, w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := walkFolder(root, func(rel, path string, d fs.DirEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("folder: %w", err)
		}
		hdr := &tar.Header{
			Name:    rel,
			Mode:    int64(info.Mode().Perm()),
			ModTime: info.ModTime().UTC().Truncate(1e9),
		}
		if d.IsDir() {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("folder: %s: %w", rel, err)
			}
			return nil
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Size = info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("folder: %s: %w", rel, err)
		}
		return copyFile(tw, path, rel, hdr.Size)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("folder: finish tar: %w", err)
	}
	return nil
}

// copyFile writes exactly size bytes of the file at path to w.
func copyFile(w io.Writer, path, rel string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("folder: %w", err)
	}
	defer f.Close()
	n, err := io.CopyN(w, f, size)
	if err == io.EOF {
		return fmt.Errorf("folder: %s shrank while it was being read (%d of %d bytes)", rel, n, size)
	}
	if err != nil {
		return fmt.Errorf("folder: %s: %w", rel, err)
	}
	return nil
}

// tarPipe starts writing the tar stream of root in a goroutine and returns
// the reading end. Closing the reader (as the HTTP transport does when it is
// done with the body) stops the writer.
func tarPipe(ctx context.Context, root string) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(ctx, pw, root))
	}()
	return pr
}
