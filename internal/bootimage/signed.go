package bootimage

import (
	"context"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The Secure Boot chain's Debian packages and the files taken from them.
const (
	ShimPackage = "shim-signed"           // shim signed by Microsoft's UEFI CA
	GrubPackage = "grub-efi-amd64-signed" // GRUB signed by Debian's key, which shim trusts
	shimPath    = "usr/lib/shim/shimx64.efi.signed"
	grubNetPath = "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
	grubCDPath  = "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"
)

// Names of the signed chain's files in a boot image directory: the server
// serves ShimName as bootx64.efi and GrubName under its own name, which
// shim loads from the directory it came from.
const (
	ShimName = "shimx64.efi"
	GrubName = "grubx64.efi"
	// GrubCDName is Debian's signed GRUB for CDs (prefix /boot/grub, found
	// by /.disk/info), which BuildISO puts on the ISO's EFI boot image
	// as grubx64.efi beside shim.
	GrubCDName = "grubcdx64.efi"
)

// SignedChain is the first two links of the Secure Boot chain on the
// host: shim, signed with Microsoft's UEFI CA 2011, and Debian's signed
// network GRUB, which reads its config over TFTP. The third link, the
// signed kernel, is Debian's kernel package itself.
type SignedChain struct {
	Shim   string `json:"-"`
	Grub   string `json:"-"`
	GrubCD string `json:"-"` // the CD variant, for BuildISO
	// Versions of the packages they came from.
	ShimVersion string `json:"shimVersion"`
	GrubVersion string `json:"grubVersion"`
}

// FetchSignedChain downloads (without installing) shim-signed and
// grub-efi-amd64-signed into cacheDir, like FetchKernel, and returns the
// two binaries. Trees already extracted for the same versions are reused.
func FetchSignedChain(ctx context.Context, cacheDir string, log io.Writer) (*SignedChain, error) {
	if log == nil {
		log = io.Discard
	}
	if cacheDir == "" {
		return nil, errors.New("fetch signed chain: no cache directory given")
	}
	sc := &SignedChain{}
	var err error
	if sc.Shim, sc.ShimVersion, err = fetchDebFile(ctx, cacheDir, ShimPackage, shimPath, log); err != nil {
		return nil, fmt.Errorf("fetch signed chain: %w", err)
	}
	if sc.Grub, sc.GrubVersion, err = fetchDebFile(ctx, cacheDir, GrubPackage, grubNetPath, log); err != nil {
		return nil, fmt.Errorf("fetch signed chain: %w", err)
	}
	sc.GrubCD = filepath.Join(filepath.Dir(sc.Grub), filepath.Base(grubCDPath))
	for _, p := range []string{sc.Shim, sc.Grub, sc.GrubCD} {
		signed, err := Signed(p)
		if err != nil {
			return nil, fmt.Errorf("fetch signed chain: %w", err)
		}
		if !signed {
			return nil, fmt.Errorf("fetch signed chain: %s carries no signature", p)
		}
	}
	return sc, nil
}

// fetchDebFile downloads apt's candidate of pkg, extracts it under
// cacheDir/pkg_version/root and returns the path of file in it.
func fetchDebFile(ctx context.Context, cacheDir, pkg, file string, log io.Writer) (string, string, error) {
	ver, err := candidateVersion(ctx, pkg)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(cacheDir, pkg+"_"+strings.ReplaceAll(ver, ":", "%3a"))
	path := filepath.Join(dir, "root", file)
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		fmt.Fprintf(log, "%s %s from cache %s\n", pkg, ver, dir)
		return path, ver, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-*")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // apt-get download runs as _apt where it can
		return "", "", err
	}
	fmt.Fprintf(log, "downloading %s %s\n", pkg, ver)
	if _, err := runIn(ctx, tmp, "apt-get", "download", pkg+"="+ver); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrDownload, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("apt-get download left %d .deb files for %s, want 1", len(debs), pkg)
	}
	if _, err := runIn(ctx, tmp, "dpkg-deb", "-x", debs[0], filepath.Join(tmp, "root")); err != nil {
		return "", "", err
	}
	if err := os.Remove(debs[0]); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(tmp, "root", file)); err != nil {
		return "", "", fmt.Errorf("%s %s has no %s: %w", pkg, ver, file, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), []byte(pkg+" "+ver+"\n"), 0o644); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil { // a concurrent fetch won
		return path, ver, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", err
	}
	return path, ver, nil
}

// Signed reports whether the PE image at path (an EFI binary, or a
// kernel's bzImage with its EFI stub) carries an Authenticode signature:
// a non-empty certificate table (data directory 4). Secure Boot firmware
// and shim refuse an image without one. It does not check the signature
// itself, only that there is one; a file that is not PE is an error.
func Signed(path string) (bool, error) {
	f, err := pe.Open(path)
	if err != nil {
		return false, fmt.Errorf("%s is not a PE image: %w", path, err)
	}
	defer f.Close()
	var dirs []pe.DataDirectory
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		dirs = oh.DataDirectory[:min(oh.NumberOfRvaAndSizes, 16)]
	case *pe.OptionalHeader32:
		dirs = oh.DataDirectory[:min(oh.NumberOfRvaAndSizes, 16)]
	default:
		return false, fmt.Errorf("%s has no PE optional header", path)
	}
	const certificateTable = 4 // IMAGE_DIRECTORY_ENTRY_SECURITY
	return len(dirs) > certificateTable && dirs[certificateTable].Size > 0, nil
}
