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
// applies edit and writes the whole hive back in place of the old file
// (atomically: a crash leaves the old hive). The hive's .LOG files are
// left alone; Parse has refused the hive if they could hold changes.
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
	return atomicfile.Write(p, out, 0o644)
}
