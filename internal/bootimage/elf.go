package bootimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultLibDirs are the directories searched for shared libraries, in
// order, after a binary's own DT_RUNPATH/DT_RPATH.
var DefaultLibDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// CheckStatic returns nil when path is a statically linked ELF executable
// (no PT_INTERP program header), as /init must be: nothing in the
// initramfs would load its libraries.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("check static: %s is not an ELF binary: %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("check static: %s is an ELF %s, not an executable", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := readInterp(p)
			return fmt.Errorf("check static: %s is dynamically linked (interpreter %s); build it with CGO_ENABLED=0", path, interp)
		}
	}
	return nil
}

func readInterp(p *elf.Prog) (string, error) {
	b := make([]byte, p.Filesz)
	if _, err := p.ReadAt(b, 0); err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\x00"), nil
}

// ELFDeps is what a dynamically linked binary needs at run time.
type ELFDeps struct {
	// Interp is the dynamic loader named by PT_INTERP ("" for a static binary).
	Interp string
	// Libs are the host paths of every shared library in the DT_NEEDED
	// closure, sorted. They may be symlinks; copy what they point to.
	Libs []string
}

// ResolveELFDeps finds the dynamic loader and, following DT_NEEDED entries
// transitively, the shared libraries binary needs, searching each object's
// DT_RUNPATH/DT_RPATH ($ORIGIN expanded) and then libDirs
// (DefaultLibDirs when nil). A library found nowhere is an error naming it
// and the object that needs it. It reads ELF headers only; nothing is run.
func ResolveELFDeps(binary string, libDirs []string) (*ELFDeps, error) {
	if libDirs == nil {
		libDirs = DefaultLibDirs
	}
	f, err := elf.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("resolve libraries: %s: %w", binary, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("resolve libraries: %s is for %s, want x86-64", binary, f.Machine)
	}
	deps := &ELFDeps{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			if deps.Interp, err = readInterp(p); err != nil {
				return nil, fmt.Errorf("resolve libraries: %s: read PT_INTERP: %w", binary, err)
			}
		}
	}
	if deps.Interp == "" {
		return deps, nil
	}
	found := map[string]string{} // soname -> host path
	var walk func(obj string, ef *elf.File) error
	walk = func(obj string, ef *elf.File) error {
		needed, err := ef.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("resolve libraries: %s: %w", obj, err)
		}
		search := append(runPaths(obj, ef), libDirs...)
		for _, name := range needed {
			if _, ok := found[name]; ok {
				continue
			}
			if strings.Contains(name, "/") {
				return fmt.Errorf("resolve libraries: %s needs %q by path; not supported", obj, name)
			}
			lib, lf, err := findLib(name, search)
			if err != nil {
				return fmt.Errorf("resolve libraries: %s needs %s: %w", obj, name, err)
			}
			found[name] = lib
			err = walk(lib, lf)
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(binary, f); err != nil {
		return nil, err
	}
	for _, p := range found {
		deps.Libs = append(deps.Libs, p)
	}
	sort.Strings(deps.Libs)
	return deps, nil
}

// runPaths returns an object's DT_RUNPATH or DT_RPATH directories.
func runPaths(obj string, ef *elf.File) []string {
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := ef.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				d = strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(obj))
				d = strings.ReplaceAll(d, "${ORIGIN}", filepath.Dir(obj))
				if d != "" {
					dirs = append(dirs, d)
				}
			}
		}
		if len(dirs) > 0 {
			break // DT_RUNPATH wins over DT_RPATH
		}
	}
	return dirs
}

// findLib returns the first x86-64 ELF shared object called name in dirs.
func findLib(name string, dirs []string) (string, *elf.File, error) {
	for _, d := range dirs {
		p := path.Join(d, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		lf, err := elf.Open(p)
		if err != nil {
			continue
		}
		if lf.Machine != elf.EM_X86_64 || lf.Class != elf.ELFCLASS64 {
			lf.Close()
			continue
		}
		return p, lf, nil
	}
	return "", nil, errors.New("not found in " + strings.Join(dirs, ", "))
}
