package bootimage

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultModules are the modules a boot image carries by default: NICs and
// storage controllers common on servers, desktops and VMs, and the
// filesystems the agent mounts. crc32c_generic precedes ext4 because ext4's
// metadata checksums need it and nothing in the initramfs answers the
// kernel's request_module.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi",
	"e1000", "e1000e", "igb", "ixgbe", "r8169",
	"nvme", "ahci", "sd_mod", "usb_storage", "xhci_pci", "ehci_pci", "uas",
	"crc32c_generic", "ext4", "vfat", "nls_cp437", "nls_iso8859_1",
	// NTFS for the Windows steps: the kernel's ntfs3, else fuse for ntfs-3g.
	"ntfs3", "fuse",
	// The firmware's variables, for the boot entry Prepare operating system
	// adds (a module in Debian's kernel; the agent mounts it once loaded).
	"efivarfs",
}

// EssentialModules must be present (as a module or built in) in every
// kernel a boot image is built from: without them the image cannot reach
// the server or see a disk in the VMs the project is tested on.
var EssentialModules = []string{"virtio_pci", "virtio_net", "virtio_blk"}

// ModuleIndex is a kernel's module tree as modules.dep and modules.builtin
// describe it. Names compare with '-' and '_' as the same character, as the
// kernel does.
type ModuleIndex struct {
	dir     string
	paths   map[string]string   // name -> path relative to dir
	deps    map[string][]string // path -> dependency paths
	builtin map[string]bool     // names
}

// LoadModuleIndex reads modulesDir/modules.dep and, when present,
// modulesDir/modules.builtin. modulesDir is /lib/modules/VERSION of some
// tree; run depmod first if modules.dep is missing.
func LoadModuleIndex(modulesDir string) (*ModuleIndex, error) {
	idx := &ModuleIndex{dir: modulesDir, paths: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	depFile := filepath.Join(modulesDir, "modules.dep")
	f, err := os.Open(depFile)
	if err != nil {
		return nil, fmt.Errorf("load modules: %w (run depmod for this kernel)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" || ModuleName(mod) == "" {
			return nil, fmt.Errorf("load modules: %s line %d: want \"path.ko: deps…\", got %q", depFile, n, line)
		}
		if err := checkRelPath(mod); err != nil {
			return nil, fmt.Errorf("load modules: %s line %d: %w", depFile, n, err)
		}
		deps := strings.Fields(rest)
		for _, d := range deps {
			if err := checkRelPath(d); err != nil {
				return nil, fmt.Errorf("load modules: %s line %d: %w", depFile, n, err)
			}
		}
		idx.paths[ModuleName(mod)] = mod
		idx.deps[mod] = deps
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load modules: read %s: %w", depFile, err)
	}
	b, err := os.ReadFile(filepath.Join(modulesDir, "modules.builtin"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("load modules: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name := ModuleName(strings.TrimSpace(line)); name != "" {
			idx.builtin[name] = true
		}
	}
	return idx, nil
}

func checkRelPath(p string) error {
	if path.IsAbs(p) || p != path.Clean(p) || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("module path %q is not a clean relative path", p)
	}
	return nil
}

// ModuleName returns the canonical module name of a name or path such as
// "kernel/fs/ext4/ext4.ko.zst" or "virtio-net": the base name without the
// .ko[.xz|.zst|.gz] suffix, with '-' replaced by '_'. It returns "" for a
// path that is not a module file.
func ModuleName(s string) string {
	base := path.Base(s)
	if strings.Contains(s, "/") || strings.Contains(s, ".ko") {
		i := strings.LastIndex(base, ".ko")
		if i <= 0 {
			return ""
		}
		switch base[i:] {
		case ".ko", ".ko.xz", ".ko.zst", ".ko.gz":
		default:
			return ""
		}
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// Has reports whether name is a loadable module of this kernel.
func (idx *ModuleIndex) Has(name string) bool { _, ok := idx.paths[ModuleName(name)]; return ok }

// Builtin reports whether name is built into this kernel.
func (idx *ModuleIndex) Builtin(name string) bool { return idx.builtin[ModuleName(name)] }

// Closure returns the module files (relative to the modules directory) that
// loading want needs, dependencies first, each once. Built-in modules are
// skipped; a name that is neither a module nor built in is an error naming
// it.
func (idx *ModuleIndex) Closure(want []string) ([]string, error) {
	var (
		order []string
		state = map[string]int{} // 1 visiting, 2 done
		visit func(p string, chain []string) error
	)
	visit = func(p string, chain []string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("resolve modules: dependency cycle: %s", strings.Join(append(chain, p), " -> "))
		case 2:
			return nil
		}
		state[p] = 1
		deps, ok := idx.deps[p]
		if !ok {
			return fmt.Errorf("resolve modules: %s needs %s, which modules.dep does not list", chain[len(chain)-1], p)
		}
		// modules.dep lists dependencies so that modprobe loads them from
		// the last to the first; visit them in that order.
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], append(chain, p)); err != nil {
				return err
			}
		}
		state[p] = 2
		order = append(order, p)
		return nil
	}
	var missing []string
	for _, w := range want {
		name := ModuleName(w)
		if name == "" {
			return nil, fmt.Errorf("resolve modules: %q is not a module name", w)
		}
		p, ok := idx.paths[name]
		if !ok {
			if !idx.builtin[name] {
				missing = append(missing, w)
			}
			continue
		}
		if err := visit(p, nil); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("resolve modules: not in %s (neither a module nor built in): %s", idx.dir, strings.Join(missing, ", "))
	}
	return order, nil
}

// ResolveModules returns the module files, relative to modulesDir, needed to
// load want, in load order (dependencies first). Modules built into the
// kernel are skipped; a module this kernel lacks is an error.
func ResolveModules(modulesDir string, want []string) ([]string, error) {
	idx, err := LoadModuleIndex(modulesDir)
	if err != nil {
		return nil, err
	}
	return idx.Closure(want)
}

// ModulesList renders the /etc/imprint/modules file for paths (see the
// package documentation for the format).
func ModulesList(paths []string) []byte {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
