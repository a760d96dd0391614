package winboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/hive"
)

// MkdirCI makes the directory rel (backslash-separated) below root,
// reusing existing components whatever their case, and returns its path.
func MkdirCI(root, rel string) (string, error) {
	cur := root
	for _, part := range strings.Split(strings.Trim(rel, `\`), `\`) {
		p, err := FindCI(cur, part)
		switch {
		case err == nil:
			cur = p
		case errors.Is(err, fs.ErrNotExist):
			cur = filepath.Join(cur, part)
			if err := os.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
		default:
			return "", err
		}
	}
	return cur, nil
}

// EditHive reads Windows\System32\config\NAME of the volume at root,
// applies edit and writes the whole hive back into the same file (see
// WriteFile). The hive's .LOG files are left alone; Parse has refused the
// hive if they could hold changes.
func EditHive(root, name string, filetime uint64, edit func(*hive.Hive) error) error {
	p, err := FindCI(root, "Windows/System32/config/"+name)
	if err != nil {
		return fmt.Errorf("the image has no %s hive: %w", name, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	h, err := hive.Parse(b)
	if err != nil {
		return fmt.Errorf("%s hive: %w", name, err)
	}
	if err := edit(h); err != nil {
		return fmt.Errorf("%s hive: %w", name, err)
	}
	h.Modified = filetime
	out, err := h.Marshal()
	if err != nil {
		return fmt.Errorf("%s hive: %w", name, err)
	}
	return WriteFile(p, out)
}

// WriteFile writes data to path on the Windows volume. An existing file is
// overwritten in place, so it keeps its NTFS security descriptor,
// attributes and streams: a replacement created by the Linux NTFS driver
// would get that driver's default security instead, and a hive such as
// SYSTEM must stay writable by SYSTEM and Administrators only. The new
// content is first kept beside it (NAME.imprint-new) until the overwrite
// is synced, so a crash part way leaves a complete copy to recover from.
// A new file is written atomically.
func WriteFile(path string, data []byte) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return atomicfile.Write(path, data, 0o644)
	}
	keep := path + ".imprint-new"
	if err := atomicfile.Write(keep, data, 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s (the new content is in %s): %w", filepath.Base(path), filepath.Base(keep), err)
	}
	return os.Remove(keep)
}
