// Package atomicfile replaces files so that a crash or a full disk leaves
// either the old content or the new, never a torn mix: the new content goes
// to a temporary file beside the target, is synced, renamed over it, and
// the directory is synced so the rename itself survives a power cut.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// Write replaces path with data, with permissions mode.
func Write(path string, data []byte, mode os.FileMode) error {
	return WriteFunc(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc replaces path with what fill writes, with permissions mode.
// If fill or any step fails, path is untouched and the temporary file is
// removed. The directory must exist.
func WriteFunc(path string, mode os.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	err = f.Chmod(mode)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for fsync; NTFS journals the rename
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
