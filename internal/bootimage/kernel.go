package bootimage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// KernelMetaPackage is the Debian package whose dependency names the
// current generic amd64 kernel.
const KernelMetaPackage = "linux-image-amd64"

// ErrNoCandidate means apt knows no installable version of the kernel
// package, usually because `apt-get update` has not run.
var ErrNoCandidate = errors.New("apt knows no candidate version (run apt-get update)")

// ErrDownload means apt-get could not fetch the kernel package.
var ErrDownload = errors.New("apt-get download failed")

// Kernel is a Linux kernel image and its module tree on the host.
type Kernel struct {
	// Version is the kernel release (uname -r), e.g. "6.1.0-56-amd64".
	Version string `json:"version"`
	// Package and PackageVersion name the Debian package it came from
	// (empty for a kernel given by path).
	Package        string `json:"package,omitempty"`
	PackageVersion string `json:"packageVersion,omitempty"`
	// Vmlinuz is the path of the bzImage.
	Vmlinuz string `json:"-"`
	// ModulesDir is the kernel's /lib/modules/VERSION directory, with
	// modules.dep.
	ModulesDir string `json:"-"`
}

var kernelVersionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+[A-Za-z0-9._+~-]*$`)

// KernelFromDir describes a kernel an admin supplies: a bzImage and its
// /lib/modules/VERSION directory (depmod must have run there; the
// directory's name is the kernel version).
func KernelFromDir(vmlinuz, modulesDir string) (*Kernel, error) {
	if err := checkBzImage(vmlinuz); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	modulesDir = filepath.Clean(modulesDir)
	ver := filepath.Base(modulesDir)
	if !kernelVersionRE.MatchString(ver) {
		return nil, fmt.Errorf("kernel: modules directory %s: want a path ending in the kernel version, like /lib/modules/6.1.0-56-amd64", modulesDir)
	}
	if _, err := os.Stat(filepath.Join(modulesDir, "modules.dep")); err != nil {
		return nil, fmt.Errorf("kernel: %w (run depmod -b ROOT %s for that tree)", err, ver)
	}
	return &Kernel{Version: ver, Vmlinuz: vmlinuz, ModulesDir: modulesDir}, nil
}

// checkBzImage checks path is an x86 Linux boot image ("HdrS" at 0x202).
func checkBzImage(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := f.ReadAt(magic, 0x202); err != nil || string(magic) != "HdrS" {
		return fmt.Errorf("%s is not a Linux x86 kernel image (no bzImage header)", path)
	}
	return nil
}

// FetchKernel downloads (without installing) the Debian kernel package
// that linux-image-amd64 currently depends on, extracts it under cacheDir
// and runs depmod there. A tree already extracted for the same package
// version is reused. Progress goes to log (nil discards it). It needs
// apt-get, dpkg-deb and depmod (package kmod), and apt lists that
// `apt-get update` has fetched.
func FetchKernel(ctx context.Context, cacheDir string, log io.Writer) (*Kernel, error) {
	if log == nil {
		log = io.Discard
	}
	if cacheDir == "" {
		return nil, errors.New("fetch kernel: no cache directory given")
	}
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return nil, err
	}
	ver, err := candidateVersion(ctx, pkg)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Version: strings.TrimPrefix(pkg, "linux-image-"), Package: pkg, PackageVersion: ver}
	if !kernelVersionRE.MatchString(k.Version) {
		return nil, fmt.Errorf("fetch kernel: unexpected package name %q", pkg)
	}
	dir := filepath.Join(cacheDir, pkg+"_"+strings.ReplaceAll(ver, ":", "%3a"))
	root := filepath.Join(dir, "root")
	k.Vmlinuz = filepath.Join(root, "boot", "vmlinuz-"+k.Version)
	k.ModulesDir = filepath.Join(root, "lib", "modules", k.Version)
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		fmt.Fprintf(log, "kernel %s (%s %s) from cache %s\n", k.Version, pkg, ver, dir)
		return k, nil
	}

	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-*")
	if err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	defer os.RemoveAll(tmp)
	// apt-get download drops privileges to _apt when it can; a 0755
	// directory lets it write there instead of warning about a sandbox.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	fmt.Fprintf(log, "downloading %s %s\n", pkg, ver)
	if _, err := runIn(ctx, tmp, "apt-get", "download", pkg+"="+ver); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w: %w", ErrDownload, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("fetch kernel: apt-get download left %d .deb files for %s, want 1", len(debs), pkg)
	}
	troot := filepath.Join(tmp, "root")
	fmt.Fprintf(log, "extracting %s\n", filepath.Base(debs[0]))
	if _, err := runIn(ctx, tmp, "dpkg-deb", "-x", debs[0], troot); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	if err := os.Remove(debs[0]); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	fmt.Fprintf(log, "depmod %s\n", k.Version)
	if _, err := runIn(ctx, tmp, "depmod", "-b", troot, k.Version); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	if err := checkBzImage(filepath.Join(troot, "boot", "vmlinuz-"+k.Version)); err != nil {
		return nil, fmt.Errorf("fetch kernel: %s: %w", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), []byte(pkg+" "+ver+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	// A concurrent fetch of the same version may have won; its tree is
	// complete and equal, so keep it (it may be in use) and drop ours.
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return k, nil
	}
	if err := os.RemoveAll(dir); err != nil { // an interrupted earlier fetch
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	return k, nil
}

// kernelPackage returns the versioned package linux-image-amd64 depends on.
func kernelPackage(ctx context.Context) (string, error) {
	out, err := runIn(ctx, "", "apt-cache", "depends", KernelMetaPackage)
	if err != nil {
		return "", fmt.Errorf("fetch kernel: %w: %w", ErrNoCandidate, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("fetch kernel: %s depends on no linux-image package: %w", KernelMetaPackage, ErrNoCandidate)
}

// candidateVersion returns apt's candidate version of pkg.
func candidateVersion(ctx context.Context, pkg string) (string, error) {
	out, err := runIn(ctx, "", "apt-cache", "policy", pkg)
	if err != nil {
		return "", fmt.Errorf("fetch kernel: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("fetch kernel: %s: %w", pkg, ErrNoCandidate)
}

// runIn runs a command in dir and returns its standard output; on failure
// the error carries the end of its output.
func runIn(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "…" + msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}
