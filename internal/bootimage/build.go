package bootimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/imprint-osd/imprint/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File names in a boot image directory. The server serves the first two
// under /images/x86_64/.
const (
	VmlinuzName  = "vmlinuz"
	InitrdName   = "initrd.img"
	ManifestName = "manifest.json"
)

// BuildOptions says what boot image Build makes.
type BuildOptions struct {
	// OutDir receives vmlinuz, initrd.img and manifest.json; it is created
	// if missing and existing files there are replaced.
	OutDir string
	// Kernel comes from FetchKernel or KernelFromDir.
	Kernel *Kernel
	// AgentPath is the static imprint-agent binary.
	AgentPath string
	// Modules to include (with dependencies); nil means DefaultModules.
	// Modules this kernel lacks are skipped with a warning, except those in
	// RequiredModules.
	Modules []string
	// RequiredModules must exist (as modules or built in); nil means
	// EssentialModules.
	RequiredModules []string
	// Tools and Files as in InitramfsOptions; nil means DefaultTools and
	// DefaultFiles.
	Tools []string
	Files []string
	// Signed, when set, puts the Secure Boot chain's shim and signed GRUB
	// into the image as ShimName and GrubName (FetchSignedChain).
	Signed *SignedChain
	// Boot, when set, is written into the initramfs as
	// /etc/imprint/boot.json.
	Boot *BootConfig
	// Log receives progress and warnings; nil discards them.
	Log io.Writer
}

// Manifest is manifest.json: what a boot image holds, enough to tell two
// images apart and to verify the files.
type Manifest struct {
	KernelVersion  string   `json:"kernelVersion"`
	KernelPackage  string   `json:"kernelPackage,omitempty"`
	PackageVersion string   `json:"kernelPackageVersion,omitempty"`
	Modules        []string `json:"modules"`
	Tools          []string `json:"tools"`
	Libs           []string `json:"libs"`
	AgentSHA256    string   `json:"agentSHA256"`
	// KernelSigned: the kernel carries an Authenticode signature, which
	// Secure Boot needs (Signed). SignedChain names the shim and GRUB
	// packages when the image has them.
	KernelSigned bool              `json:"kernelSigned"`
	SignedChain  *SignedChain      `json:"signedChain,omitempty"`
	SHA256       map[string]string `json:"sha256"` // file name -> hex digest
}

// Image is a built boot image on disk.
type Image struct {
	Dir      string
	Manifest Manifest
}

// Vmlinuz returns the kernel's path.
func (img *Image) Vmlinuz() string { return filepath.Join(img.Dir, VmlinuzName) }

// Initrd returns the initramfs's path.
func (img *Image) Initrd() string { return filepath.Join(img.Dir, InitrdName) }

// Build assembles a boot image in opts.OutDir.
func Build(ctx context.Context, opts BuildOptions) (*Image, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if opts.OutDir == "" {
		return nil, errors.New("build boot image: no output directory given")
	}
	if opts.Kernel == nil {
		return nil, errors.New("build boot image: no kernel given")
	}
	if opts.AgentPath == "" {
		return nil, errors.New("build boot image: no agent binary given")
	}
	modules, required, tools, files := opts.Modules, opts.RequiredModules, opts.Tools, opts.Files
	if modules == nil {
		modules = DefaultModules
	}
	if required == nil {
		required = EssentialModules
	}
	if tools == nil {
		tools = DefaultTools
	}
	if files == nil {
		files = DefaultFiles
	}

	idx, err := LoadModuleIndex(opts.Kernel.ModulesDir)
	if err != nil {
		return nil, fmt.Errorf("build boot image: %w", err)
	}
	var missing []string
	for _, m := range required {
		if !idx.Has(m) && !idx.Builtin(m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("build boot image: kernel %s lacks essential modules: %s", opts.Kernel.Version, strings.Join(missing, ", "))
	}
	var want []string
	for _, m := range modules {
		switch {
		case idx.Has(m):
			want = append(want, m)
		case idx.Builtin(m):
		default:
			fmt.Fprintf(log, "warning: kernel %s has no module %s; skipped\n", opts.Kernel.Version, m)
		}
	}
	order, err := idx.Closure(want)
	if err != nil {
		return nil, fmt.Errorf("build boot image: %w", err)
	}

	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("build boot image: %w", err)
	}
	img := &Image{Dir: opts.OutDir, Manifest: Manifest{
		KernelVersion:  opts.Kernel.Version,
		KernelPackage:  opts.Kernel.Package,
		PackageVersion: opts.Kernel.PackageVersion,
		SHA256:         map[string]string{},
	}}
	if img.Manifest.AgentSHA256, err = fileSHA256(opts.AgentPath); err != nil {
		return nil, fmt.Errorf("build boot image: agent: %w", err)
	}

	switch signed, err := Signed(opts.Kernel.Vmlinuz); {
	case err != nil:
		fmt.Fprintf(log, "warning: kernel %s is not an EFI image (%v): machines with Secure Boot on will refuse it\n", opts.Kernel.Vmlinuz, err)
	case !signed:
		fmt.Fprintf(log, "warning: kernel %s is not signed: machines with Secure Boot on will refuse it (Debian's linux-image-amd64 kernel is signed; turn Secure Boot off on those machines or use it)\n", opts.Kernel.Vmlinuz)
	default:
		img.Manifest.KernelSigned = true
	}

	fmt.Fprintf(log, "initramfs: %d modules, %d tools\n", len(order), len(tools))
	var contents *InitramfsContents
	err = atomicfile.WriteFunc(img.Initrd(), 0o644, func(w io.Writer) (err error) {
		contents, err = BuildInitramfs(ctx, w, InitramfsOptions{
			AgentPath:     opts.AgentPath,
			KernelVersion: opts.Kernel.Version,
			ModulesDir:    opts.Kernel.ModulesDir,
			Modules:       order,
			Tools:         tools,
			Files:         files,
			Boot:          opts.Boot,
			Log:           log,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("build boot image: %w", err)
	}
	img.Manifest.Modules, img.Manifest.Tools, img.Manifest.Libs = contents.Modules, contents.Tools, contents.Libs
	if err := atomicfile.WriteFunc(img.Vmlinuz(), 0o644, func(w io.Writer) error {
		f, err := os.Open(opts.Kernel.Vmlinuz)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}); err != nil {
		return nil, fmt.Errorf("build boot image: kernel: %w", err)
	}
	names := []string{VmlinuzName, InitrdName}
	if sc := opts.Signed; sc != nil {
		for _, f := range []struct{ src, name string }{{sc.Shim, ShimName}, {sc.Grub, GrubName}, {sc.GrubCD, GrubCDName}} {
			if err := copyInto(f.src, filepath.Join(img.Dir, f.name)); err != nil {
				return nil, fmt.Errorf("build boot image: signed chain: %w", err)
			}
			names = append(names, f.name)
		}
		img.Manifest.SignedChain = sc
	} else {
		// An older image's shim would pair with this image's kernel.
		for _, name := range []string{ShimName, GrubName, GrubCDName} {
			if err := os.Remove(filepath.Join(img.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("build boot image: %w", err)
			}
		}
	}
	for _, name := range names {
		if img.Manifest.SHA256[name], err = fileSHA256(filepath.Join(img.Dir, name)); err != nil {
			return nil, fmt.Errorf("build boot image: %w", err)
		}
	}
	b, _ := json.MarshalIndent(img.Manifest, "", "  ")
	if err := atomicfile.Write(filepath.Join(img.Dir, ManifestName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("build boot image: %w", err)
	}
	return img, nil
}

// copyInto replaces dst with a copy of src, atomically.
func copyInto(src, dst string) error {
	return atomicfile.WriteFunc(dst, 0o644, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}

// LoadImage reads a boot image directory written by Build and checks its
// files against the manifest.
func LoadImage(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("load boot image: %w", err)
	}
	img := &Image{Dir: dir}
	if err := json.Unmarshal(b, &img.Manifest); err != nil {
		return nil, fmt.Errorf("load boot image: %s: %w", ManifestName, err)
	}
	names := []string{VmlinuzName, InitrdName}
	if img.Manifest.SignedChain != nil {
		names = append(names, ShimName, GrubName, GrubCDName)
	}
	for _, name := range names {
		want := img.Manifest.SHA256[name]
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load boot image: %w", err)
		}
		if got != want {
			return nil, fmt.Errorf("load boot image: %s has SHA-256 %s, manifest says %q", name, got, want)
		}
	}
	return img, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
