package pe

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ParseModuleList parses /etc/imprint/modules: one .ko path per line,
// relative to the module root, in load order (dependencies first). Blank
// lines and lines starting with '#' are skipped; a '#' after a path starts a
// comment too. A path that is absolute, leaves the root with "..", or does
// not end in .ko, .ko.xz, .ko.zst or .ko.gz is an error naming the line.
func ParseModuleList(list string) ([]string, error) {
	var out []string
	var errs []error
	for i, line := range strings.Split(list, "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		switch {
		case strings.ContainsAny(line, " \t"):
			errs = append(errs, fmt.Errorf("module list line %d: %q: one path per line", i+1, line))
		case path.IsAbs(line) || filepath.IsAbs(line):
			errs = append(errs, fmt.Errorf("module list line %d: %q must be relative to the module root", i+1, line))
		case path.Clean(line) == ".." || strings.HasPrefix(path.Clean(line), "../"):
			errs = append(errs, fmt.Errorf("module list line %d: %q leaves the module root", i+1, line))
		case moduleKind(line) == "":
			errs = append(errs, fmt.Errorf("module list line %d: %q is not a .ko, .ko.xz, .ko.zst or .ko.gz file", i+1, line))
		default:
			out = append(out, path.Clean(line))
		}
	}
	return out, errors.Join(errs...)
}

// moduleKind is the compression of a module file: "ko", "xz", "zst", "gz",
// or "" when the name is not a kernel module.
func moduleKind(name string) string {
	switch {
	case strings.HasSuffix(name, ".ko"):
		return "ko"
	case strings.HasSuffix(name, ".ko.xz"):
		return "xz"
	case strings.HasSuffix(name, ".ko.zst"):
		return "zst"
	case strings.HasSuffix(name, ".ko.gz"):
		return "gz"
	}
	return ""
}

// moduleKernel is the kernel side of module loading: finit_module on an
// open uncompressed .ko, or init_module on a decompressed image.
type moduleKernel interface {
	finitModule(f *os.File) error
	initModule(image []byte) error
}

// loadModules loads every module of list below root in order. A module the
// kernel already has (EEXIST) counts as loaded. A failure does not stop the
// others; the returned error joins one error per failed module.
func loadModules(k moduleKernel, root, list string) ([]string, error) {
	mods, err := ParseModuleList(list)
	if err != nil {
		return nil, err
	}
	var loaded []string
	var errs []error
	for _, rel := range mods {
		if err := loadModule(k, filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			if notApplicable(rel, err) {
				continue
			}
			errs = append(errs, fmt.Errorf("load module %s: %w", rel, err))
			continue
		}
		loaded = append(loaded, rel)
	}
	return loaded, errors.Join(errs...)
}

func loadModule(k moduleKernel, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	kind := moduleKind(file)
	if kind == "ko" {
		return ignoreExist(k.finitModule(f))
	}
	var r io.Reader
	switch kind {
	case "xz":
		if r, err = xz.NewReader(f); err != nil {
			return fmt.Errorf("xz: %w", err)
		}
	case "zst":
		d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer d.Close()
		r = d
	case "gz":
		z, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		r = z
	default:
		return fmt.Errorf("%s is not a kernel module file", file)
	}
	image, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	return ignoreExist(k.initModule(image))
}

func ignoreExist(err error) error {
	if errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return err
}

// notApplicable reports whether a module failed only because this machine
// lacks what it serves: efivarfs refuses to load (ENODEV) on a machine not
// booted through UEFI, and the boot image carries it for those that are.
func notApplicable(rel string, err error) bool {
	name, _, _ := strings.Cut(path.Base(rel), ".")
	return strings.EqualFold(name, "efivarfs") && errors.Is(err, syscall.ENODEV)
}
