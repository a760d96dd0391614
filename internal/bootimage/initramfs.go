package bootimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/imprint-osd/imprint/internal/cpio"
)

// DefaultTools are the host programs the disk steps shell out to. Build
// copies those present on the host, with their libraries, into the
// initramfs and skips the rest with a warning.
var DefaultTools = []string{
	"mke2fs", "mkfs.ext4", "e2fsck", "mkfs.fat", "mkfs.vfat", "mkntfs",
	"wimlib-imagex", "sgdisk", "blkid", "partprobe", "ntfs-3g", "udp-receiver",
}

// DefaultFiles are host data files the tools read, copied when present.
var DefaultFiles = []string{"/etc/mke2fs.conf"}

// toolDirs are searched, in order, for a tool given by name.
var toolDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Paths inside the initramfs.
const (
	ModulesListPath = "/etc/imprint/modules"
	BootConfigPath  = "/etc/imprint/boot.json"
)

// BootConfig is /etc/imprint/boot.json: how an agent booted without a
// kernel command line from the server (the ISO) finds and trusts it.
type BootConfig struct {
	ServerURL string `json:"serverURL"`
	CASHA256  string `json:"caSHA256"`
}

// Validate checks the server URL is an absolute https URL and normalises
// the CA fingerprint to 64 lowercase hex digits (colons are removed).
func (c *BootConfig) Validate() error {
	u, err := url.Parse(c.ServerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || strings.ContainsAny(c.ServerURL, " \t\n\"'") {
		return fmt.Errorf("boot config: server URL: want an https URL such as https://imprint.example:7281, got %q", c.ServerURL)
	}
	fp := strings.ToLower(strings.ReplaceAll(c.CASHA256, ":", ""))
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return fmt.Errorf("boot config: CA fingerprint: want the hex SHA-256 of the CA certificate (64 hex digits), got %q", c.CASHA256)
	}
	c.CASHA256 = fp
	return nil
}

// InitramfsOptions says what goes into an initramfs.
type InitramfsOptions struct {
	// AgentPath is the static imprint-agent binary, installed as /init.
	AgentPath string
	// KernelVersion and ModulesDir (the host's /lib/modules/VERSION of the
	// kernel) locate the modules; both are required when Modules is set.
	KernelVersion string
	ModulesDir    string
	// Modules are module files relative to ModulesDir in load order, as
	// ModuleIndex.Closure returns them.
	Modules []string
	// Tools are host programs, by name (searched in /usr/sbin, /usr/bin,
	// /sbin, /bin) or absolute path. A missing one is skipped with a
	// warning to Log.
	Tools []string
	// Files are host data files copied to the same path; missing ones are
	// skipped with a warning.
	Files []string
	// LibDirs are searched for shared libraries; nil means DefaultLibDirs.
	LibDirs []string
	// Boot, when set, is written to /etc/imprint/boot.json.
	Boot *BootConfig
	// Log receives warnings; nil discards them.
	Log io.Writer
}

// InitramfsContents lists what BuildInitramfs put in, for the manifest.
type InitramfsContents struct {
	Modules []string `json:"modules"`
	Tools   []string `json:"tools"`   // paths inside the image
	Libs    []string `json:"libs"`    // paths inside the image
	Skipped []string `json:"skipped"` // tools and files not found on the host
}

// node is one initramfs entry before it is written.
type node struct {
	mode   fs.FileMode // perm bits, plus fs.ModeDir or fs.ModeSymlink
	src    string      // host file for regular files
	data   []byte      // inline content for regular files when src is ""
	target string      // symlink target
	dev    [2]uint32   // major, minor for device nodes
}

// tree collects entries keyed by path without the leading "/".
type tree map[string]node

func (t tree) add(p string, n node) error {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if old, ok := t[p]; ok {
		if old.mode == n.mode && old.src == n.src && bytes.Equal(old.data, n.data) && old.target == n.target {
			return nil
		}
		return fmt.Errorf("initramfs: two different entries for /%s", p)
	}
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if old, ok := t[d]; ok && old.mode&fs.ModeDir == 0 {
			return fmt.Errorf("initramfs: /%s needs /%s to be a directory", p, d)
		}
		t[d] = node{mode: fs.ModeDir | 0o755}
	}
	t[p] = n
	return nil
}

// imagePath maps a host path to its place in the merged-/usr image.
func imagePath(hostPath string) string {
	p := path.Clean(hostPath)
	for _, top := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if p == top || strings.HasPrefix(p, top+"/") {
			return "/usr" + p
		}
	}
	return p
}

// addHostFile adds hostPath under its image path. When hostPath is a
// symlink (mkfs.ext4 -> mke2fs), the real file goes under its own image
// path and hostPath becomes a symlink to it. It returns the image path.
func (t tree) addHostFile(hostPath string, perm fs.FileMode) (string, error) {
	real, err := filepath.EvalSymlinks(hostPath)
	if err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("initramfs: %s is not a regular file", hostPath)
	}
	if perm == 0 {
		perm = fi.Mode().Perm()
	}
	realImg, linkImg := imagePath(real), imagePath(hostPath)
	if err := t.add(realImg, node{mode: perm, src: real}); err != nil {
		return "", err
	}
	if linkImg != realImg {
		if err := t.add(linkImg, node{mode: fs.ModeSymlink | 0o777, target: realImg}); err != nil {
			return "", err
		}
	}
	return linkImg, nil
}

// findTool returns the host path of a tool given by name or path.
func findTool(tool string) (string, error) {
	if strings.Contains(tool, "/") {
		if _, err := os.Stat(tool); err != nil {
			return "", err
		}
		return tool, nil
	}
	for _, d := range toolDirs {
		p := filepath.Join(d, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", tool, strings.Join(toolDirs, ", "))
}

// BuildInitramfs writes a gzip-compressed newc initramfs described by opts
// to w. The same options and host files give the same bytes.
func BuildInitramfs(ctx context.Context, w io.Writer, opts InitramfsOptions) (*InitramfsContents, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if opts.AgentPath == "" {
		return nil, errors.New("build initramfs: no agent binary given")
	}
	if err := CheckStatic(opts.AgentPath); err != nil {
		return nil, fmt.Errorf("build initramfs: agent: %w", err)
	}
	t := tree{}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "etc/imprint", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "root"} {
		if err := t.add(d, node{mode: fs.ModeDir | 0o755}); err != nil {
			return nil, err
		}
	}
	t["tmp"] = node{mode: fs.ModeDir | fs.ModeSticky | 0o777}
	// The kernel opens /dev/console for /init's stdio before /init can
	// mount devtmpfs.
	if err := t.add("dev/console", node{mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, dev: [2]uint32{5, 1}}); err != nil {
		return nil, err
	}
	for _, top := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := t.add(top, node{mode: fs.ModeSymlink | 0o777, target: "usr/" + top}); err != nil {
			return nil, err
		}
	}
	if err := t.add("init", node{mode: 0o755, src: opts.AgentPath}); err != nil {
		return nil, err
	}
	contents := &InitramfsContents{Modules: []string{}, Tools: []string{}, Libs: []string{}, Skipped: []string{}}

	// Kernel modules and the list the agent loads them from.
	if len(opts.Modules) > 0 || opts.ModulesDir != "" {
		if opts.KernelVersion == "" || opts.ModulesDir == "" || strings.ContainsAny(opts.KernelVersion, "/ ") {
			return nil, fmt.Errorf("build initramfs: modules need a kernel version and modules directory (got %q, %q)", opts.KernelVersion, opts.ModulesDir)
		}
		base := "usr/lib/modules/" + opts.KernelVersion
		for _, m := range opts.Modules {
			if err := checkRelPath(m); err != nil || ModuleName(m) == "" {
				return nil, fmt.Errorf("build initramfs: %q is not a module path relative to %s", m, opts.ModulesDir)
			}
			if _, err := os.Stat(filepath.Join(opts.ModulesDir, m)); err != nil {
				return nil, fmt.Errorf("build initramfs: module: %w", err)
			}
			if err := t.add(base+"/"+m, node{mode: 0o644, src: filepath.Join(opts.ModulesDir, m)}); err != nil {
				return nil, err
			}
		}
		for _, f := range []string{"modules.dep", "modules.builtin"} {
			src := filepath.Join(opts.ModulesDir, f)
			if _, err := os.Stat(src); err != nil {
				if f == "modules.builtin" && os.IsNotExist(err) {
					continue
				}
				return nil, fmt.Errorf("build initramfs: %w", err)
			}
			if err := t.add(base+"/"+f, node{mode: 0o644, src: src}); err != nil {
				return nil, err
			}
		}
		contents.Modules = append(contents.Modules, opts.Modules...)
	}
	if err := t.add(ModulesListPath, node{mode: 0o644, data: ModulesList(opts.Modules)}); err != nil {
		return nil, err
	}

	if opts.Boot != nil {
		bc := *opts.Boot
		if err := bc.Validate(); err != nil {
			return nil, fmt.Errorf("build initramfs: %w", err)
		}
		b, _ := json.MarshalIndent(bc, "", "  ")
		if err := t.add(BootConfigPath, node{mode: 0o644, data: append(b, '\n')}); err != nil {
			return nil, err
		}
	}

	// Tools, their libraries and the dynamic loader.
	libs := map[string]bool{}
	for _, tool := range opts.Tools {
		hp, err := findTool(tool)
		if err != nil {
			fmt.Fprintf(log, "warning: tool %s skipped: %v\n", tool, err)
			contents.Skipped = append(contents.Skipped, tool)
			continue
		}
		deps, err := ResolveELFDeps(hp, opts.LibDirs)
		if err != nil {
			return nil, fmt.Errorf("build initramfs: tool %s: %w", tool, err)
		}
		img, err := t.addHostFile(hp, 0o755)
		if err != nil {
			return nil, err
		}
		contents.Tools = append(contents.Tools, img)
		if deps.Interp != "" {
			libs[deps.Interp] = true
		}
		for _, l := range deps.Libs {
			libs[l] = true
		}
	}
	for _, l := range sortedKeys(libs) {
		img, err := t.addHostFile(l, 0)
		if err != nil {
			return nil, err
		}
		contents.Libs = append(contents.Libs, img)
	}
	for _, f := range opts.Files {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(log, "warning: file %s skipped: %v\n", f, err)
			contents.Skipped = append(contents.Skipped, f)
			continue
		}
		if _, err := t.addHostFile(f, 0o644); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := t.write(ctx, w); err != nil {
		return nil, fmt.Errorf("build initramfs: %w", err)
	}
	return contents, nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// write emits the tree in sorted order (parents before children) as a
// gzip-compressed newc archive with a fixed gzip header.
func (t tree) write(ctx context.Context, w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	cw := cpio.NewWriter(zw)
	names := make([]string, 0, len(t))
	for p := range t {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := t[p]
		switch {
		case n.mode&fs.ModeDir != 0:
			err = cw.Mkdir(p, n.mode)
		case n.mode&fs.ModeSymlink != 0:
			err = cw.Symlink(p, n.target)
		case n.mode&fs.ModeCharDevice != 0:
			err = cw.CharDev(p, n.mode, n.dev[0], n.dev[1])
		case n.src == "":
			err = cw.WriteFile(p, n.mode, int64(len(n.data)), bytes.NewReader(n.data))
		default:
			err = writeHostFile(cw, p, n)
		}
		if err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeHostFile(cw *cpio.Writer, p string, n node) error {
	f, err := os.Open(n.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return cw.WriteFile(p, n.mode, fi.Size(), f)
}
