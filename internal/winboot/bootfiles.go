package winboot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/hive"
)

// ESP is where the boot files go: the EFI system partition's FAT
// filesystem. Paths are absolute with forward slashes ("/EFI/Boot").
type ESP interface {
	MkdirAll(path string) error
	WriteFile(path string, data []byte) error
}

// DirESP is an ESP mounted (or staged) at a directory.
type DirESP string

// MkdirAll makes a directory under the ESP.
func (d DirESP) MkdirAll(p string) error {
	return os.MkdirAll(filepath.Join(string(d), filepath.FromSlash(p)), 0o755)
}

// WriteFile writes a file under the ESP.
func (d DirESP) WriteFile(p string, b []byte) error {
	full := filepath.Join(string(d), filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, b, 0o644)
}

// BootFile is one file to copy from the Windows volume to the ESP.
type BootFile struct {
	Src string // absolute path on the mounted Windows volume
	Dst string // path on the ESP
}

// FindCI follows rel (slash-separated) below root matching each name
// case-insensitively, as Windows would on NTFS mounted case-sensitively.
func FindCI(root, rel string) (string, error) {
	cur := root
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		if part == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(cur, part)); err == nil {
			cur = filepath.Join(cur, part)
			continue
		}
		ents, err := os.ReadDir(cur)
		if err != nil {
			return "", err
		}
		found := ""
		for _, e := range ents {
			if strings.EqualFold(e.Name(), part) {
				found = e.Name()
				break
			}
		}
		if found == "" {
			return "", fmt.Errorf("%s: %w", path.Join(rel), fs.ErrNotExist)
		}
		cur = filepath.Join(cur, found)
	}
	return cur, nil
}

// PlanBootFiles lists what bcdboot /f UEFI copies (§3.2): the contents of
// Windows\Boot\EFI (boot manager, memtest, the locale directories) to
// \EFI\Microsoft\Boot, Windows\Boot\Fonts and Windows\Boot\Resources below
// it, and bootmgfw.efi again as the firmware's fallback loader
// \EFI\Boot\bootx64.efi.
func PlanBootFiles(winRoot string) ([]BootFile, error) {
	efi, err := FindCI(winRoot, "Windows/Boot/EFI")
	if err != nil {
		return nil, deploy.Errorf(deploy.KindInvalid, "the applied image has no Windows\\Boot\\EFI directory: it is not a Windows image with UEFI boot files")
	}
	mgr, err := FindCI(efi, "bootmgfw.efi")
	if err != nil {
		return nil, deploy.Errorf(deploy.KindInvalid, "the applied image has no Windows\\Boot\\EFI\\bootmgfw.efi (the Windows Boot Manager): it cannot be made bootable for UEFI")
	}
	var files []BootFile
	add := func(srcDir, dstDir string) error {
		return filepath.WalkDir(srcDir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(srcDir, p)
			files = append(files, BootFile{Src: p, Dst: path.Join(dstDir, filepath.ToSlash(rel))})
			return nil
		})
	}
	if err := add(efi, "/EFI/Microsoft/Boot"); err != nil {
		return nil, fmt.Errorf("list Windows\\Boot\\EFI: %w", err)
	}
	for _, d := range []string{"Fonts", "Resources"} {
		if src, err := FindCI(winRoot, "Windows/Boot/"+d); err == nil {
			if err := add(src, "/EFI/Microsoft/Boot/"+d); err != nil {
				return nil, fmt.Errorf("list Windows\\Boot\\%s: %w", d, err)
			}
		}
	}
	files = append(files, BootFile{Src: mgr, Dst: "/EFI/Boot/bootx64.efi"})
	return files, nil
}

// InstallOptions say where Windows and the ESP are.
type InstallOptions struct {
	WinRoot string // the mounted Windows volume
	GPT     *GPT   // the disk's partition table
	Windows int    // partition numbers
	ESP     int
	Locale  string
	StoreOptions
}

// Installed reports what Install did.
type Installed struct {
	Files       []string // ESP paths written, the BCD store last
	Loader      GUID
	Description string
}

// BCDPath is the boot manager's store on the ESP.
const BCDPath = "/EFI/Microsoft/Boot/BCD"

// Install does what `bcdboot W:\Windows /s S: /f UEFI` does: copies the boot
// files to the ESP and writes a new BCD store whose Windows entry names the
// Windows partition by the disk's and partition's GPT GUIDs.
func Install(ctx context.Context, esp ESP, o InstallOptions) (*Installed, error) {
	if o.GPT == nil {
		return nil, errors.New("install boot files: no partition table")
	}
	win, err := o.GPT.Partition(o.Windows)
	if err != nil {
		return nil, fmt.Errorf("install boot files: Windows partition: %w", err)
	}
	sys, err := o.GPT.Partition(o.ESP)
	if err != nil {
		return nil, fmt.Errorf("install boot files: ESP: %w", err)
	}
	files, err := PlanBootFiles(o.WinRoot)
	if err != nil {
		return nil, err
	}
	out := &Installed{}
	for _, d := range []string{"/EFI/Microsoft/Boot", "/EFI/Microsoft/Recovery", "/EFI/Boot"} {
		if err := esp.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("ESP mkdir %s: %w", d, err)
		}
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, fmt.Errorf("read boot file: %w", err)
		}
		if err := esp.MkdirAll(path.Dir(f.Dst)); err != nil {
			return nil, fmt.Errorf("ESP mkdir %s: %w", path.Dir(f.Dst), err)
		}
		if err := esp.WriteFile(f.Dst, b); err != nil {
			return nil, fmt.Errorf("ESP write %s: %w", f.Dst, err)
		}
		out.Files = append(out.Files, f.Dst)
	}
	so := o.StoreOptions
	so.Disk, so.Windows, so.ESP = o.GPT.DiskID, win.ID, sys.ID
	if so.Locale == "" {
		so.Locale = o.Locale
	}
	if so.Description == "" {
		so.Description = ProductName(o.WinRoot)
	}
	objs, loader, err := Store(so)
	if err != nil {
		return nil, err
	}
	h, err := StoreHive(objs, so.Modified)
	if err != nil {
		return nil, err
	}
	raw, err := h.Marshal()
	if err != nil {
		return nil, fmt.Errorf("write BCD: %w", err)
	}
	if err := esp.WriteFile(BCDPath, raw); err != nil {
		return nil, fmt.Errorf("ESP write %s: %w", BCDPath, err)
	}
	out.Files = append(out.Files, BCDPath)
	out.Loader, out.Description = loader, so.Description
	return out, nil
}

// ProductName reads the edition's name (e.g. "Windows 11 Enterprise") from
// the image's SOFTWARE hive, as BCD-SYS does for the loader's
// description; "Windows" when it cannot.
func ProductName(winRoot string) string {
	p, err := FindCI(winRoot, "Windows/System32/config/SOFTWARE")
	if err != nil {
		return "Windows"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "Windows"
	}
	v, err := hive.ReadValue(b, `Microsoft\Windows NT\CurrentVersion`, "ProductName")
	if err != nil || v.String() == "" {
		return "Windows"
	}
	return v.String()
}
