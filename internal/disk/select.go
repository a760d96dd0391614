//go:build linux

package disk

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Disk is one whole disk as the kernel lists it under /sys/block.
type Disk struct {
	Path      string // device node, e.g. /dev/nvme0n1
	Size      int64  // bytes
	Bus       string // nvme, sata, scsi, virtio, usb, mmc or unknown
	Model     string
	Serial    string
	Removable bool
	ReadOnly  bool
	IsBoot    bool // holds the filesystem the running system booted from
}

// String describes the disk for error messages: "/dev/vda (64 GiB virtio)".
func (d Disk) String() string {
	var extra []string
	extra = append(extra, FormatSize(d.Size), d.Bus)
	if d.Model != "" {
		extra = append(extra, strconv.Quote(d.Model))
	}
	if d.Removable {
		extra = append(extra, "removable")
	}
	if d.IsBoot {
		extra = append(extra, "boot")
	}
	return fmt.Sprintf("%s (%s)", d.Path, strings.Join(extra, " "))
}

// Lister reads the disks of a machine from a sysfs tree. The zero value reads
// the real /sys and /dev and finds the boot disk from /proc/self/mountinfo.
type Lister struct {
	SysRoot string // default "/sys"
	DevRoot string // default "/dev"
	// All also lists loop, ram, zram, sr, dm- and md devices.
	All bool
	// RootDev returns "MAJOR:MINOR" of the block device holding the root
	// filesystem, or "" when it is not on a disk (initramfs, NFS). Default:
	// the root mount in /proc/self/mountinfo.
	RootDev func() (string, error)
}

// List returns the disks under sysRoot/block (sysRoot "" means /sys), sorted
// by kernel name, without virtual devices.
func List(sysRoot string) ([]Disk, error) {
	return Lister{SysRoot: sysRoot}.List()
}

var skippedPrefixes = []string{"loop", "ram", "zram", "sr", "dm-", "md", "fd", "nbd"}

// List returns the disks, sorted by kernel name.
func (l Lister) List() ([]Disk, error) {
	sysRoot, devRoot := l.SysRoot, l.DevRoot
	if sysRoot == "" {
		sysRoot = "/sys"
	}
	if devRoot == "" {
		devRoot = "/dev"
	}
	rootDevFn := l.RootDev
	if rootDevFn == nil {
		rootDevFn = rootDevFromMountinfo
	}
	rootDev, err := rootDevFn()
	if err != nil {
		return nil, fmt.Errorf("find boot device: %w", err)
	}
	blockDir := filepath.Join(sysRoot, "block")
	entries, err := os.ReadDir(blockDir)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var disks []Disk
	for _, e := range entries {
		name := e.Name()
		if !l.All && hasAnyPrefix(name, skippedPrefixes) {
			continue
		}
		dir := filepath.Join(blockDir, name)
		sectors, err := readInt(filepath.Join(dir, "size"))
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", name, err)
		}
		d := Disk{
			Path:      filepath.Join(devRoot, name),
			Size:      sectors * 512, // sysfs counts 512-byte units whatever the sector size
			Model:     readTrim(filepath.Join(dir, "device", "model")),
			Serial:    firstNonEmpty(readTrim(filepath.Join(dir, "device", "serial")), readTrim(filepath.Join(dir, "serial"))),
			Removable: readTrim(filepath.Join(dir, "removable")) == "1",
			ReadOnly:  readTrim(filepath.Join(dir, "ro")) == "1",
		}
		target, _ := os.Readlink(dir)
		d.Bus = busOf(name, target)
		if rootDev != "" {
			d.IsBoot = holdsDev(dir, name, rootDev)
		}
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Path < disks[j].Path })
	return disks, nil
}

// busOf derives the bus from the kernel name and the /sys/block symlink
// target (e.g. ../devices/pci0000:00/0000:00:04.0/virtio1/block/vda).
func busOf(name, target string) string {
	switch {
	case strings.HasPrefix(name, "nvme"):
		return "nvme"
	case strings.HasPrefix(name, "mmcblk"):
		return "mmc"
	case strings.Contains(target, "/usb"):
		return "usb"
	case strings.Contains(target, "/ata"):
		return "sata"
	case strings.Contains(target, "/host"):
		return "scsi" // SCSI, SAS and virtio-scsi
	case strings.HasPrefix(name, "vd"), strings.Contains(target, "/virtio"):
		return "virtio"
	}
	return "unknown"
}

// holdsDev reports whether the disk at dir or one of its partitions has the
// device number dev.
func holdsDev(dir, name, dev string) bool {
	if readTrim(filepath.Join(dir, "dev")) == dev {
		return true
	}
	parts, _ := filepath.Glob(filepath.Join(dir, name+"*", "dev"))
	for _, p := range parts {
		if readTrim(p) == dev {
			return true
		}
	}
	return false
}

func rootDevFromMountinfo() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == "/" {
			if strings.HasPrefix(fields[2], "0:") {
				return "", nil // tmpfs, overlay, rootfs: not on a disk
			}
			return fields[2], nil
		}
	}
	return "", sc.Err()
}

// Rule chooses one disk. Empty fields do not constrain.
type Rule struct {
	Index          *int   // position in List's order (sorted by kernel name)
	MinSize        int64  // bytes, inclusive
	MaxSize        int64  // bytes, inclusive; 0 means no maximum
	Bus            string // case-insensitive substring, or glob if it has * ? [
	Model          string // case-insensitive substring, or glob if it has * ? [
	AllowRemovable bool
	AllowBoot      bool
}

// String renders the rule in ParseRule's syntax.
func (r Rule) String() string {
	var s []string
	if r.Index != nil {
		s = append(s, "index="+strconv.Itoa(*r.Index))
	}
	if r.MinSize > 0 {
		s = append(s, "size>="+exactSize(r.MinSize))
	}
	if r.MaxSize > 0 {
		s = append(s, "size<="+exactSize(r.MaxSize))
	}
	if r.Bus != "" {
		s = append(s, "bus="+r.Bus)
	}
	if r.Model != "" {
		s = append(s, "model="+r.Model)
	}
	if r.AllowRemovable {
		s = append(s, "removable=true")
	}
	if r.AllowBoot {
		s = append(s, "boot=true")
	}
	if len(s) == 0 {
		return "any disk"
	}
	return strings.Join(s, ",")
}

// exactSize renders n with the largest binary suffix that divides it.
func exactSize(n int64) string {
	for i := 5; i >= 1; i-- {
		u := int64(1) << (10 * i)
		if n%u == 0 {
			return strconv.FormatInt(n/u, 10) + string("KMGTP"[i-1])
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseRule parses the rule syntax documented in the package comment.
func ParseRule(s string) (Rule, error) {
	var r Rule
	s = strings.TrimSpace(s)
	if s == "" {
		return r, nil
	}
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(term, "size"); ok {
			if err := parseSizeTerm(&r, rest); err != nil {
				return Rule{}, deploy.Errorf(deploy.KindInvalid, "disk rule %q: %v", term, err)
			}
			continue
		}
		key, val, ok := strings.Cut(term, "=")
		if !ok {
			return Rule{}, deploy.Errorf(deploy.KindInvalid, "disk rule %q: want key=value (index, size, bus, model, removable, boot)", term)
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		var err error
		switch key {
		case "index":
			var n int
			n, err = strconv.Atoi(val)
			if err == nil && n < 0 {
				err = fmt.Errorf("negative")
			}
			r.Index = &n
		case "bus", "model":
			if val == "" {
				err = fmt.Errorf("empty value")
			} else if _, perr := path.Match(val, ""); perr != nil {
				err = fmt.Errorf("bad glob: %v", perr)
			}
			if key == "bus" {
				r.Bus = val
			} else {
				r.Model = val
			}
		case "removable":
			r.AllowRemovable, err = strconv.ParseBool(val)
		case "boot":
			r.AllowBoot, err = strconv.ParseBool(val)
		case "minsize":
			r.MinSize, err = ParseSize(val)
		case "maxsize":
			r.MaxSize, err = ParseSize(val)
		default:
			err = fmt.Errorf("unknown key %q (want index, size, bus, model, removable, boot)", key)
		}
		if err != nil {
			return Rule{}, deploy.Errorf(deploy.KindInvalid, "disk rule %q: %v", term, err)
		}
	}
	if r.MaxSize > 0 && r.MinSize > r.MaxSize {
		return Rule{}, deploy.Errorf(deploy.KindInvalid, "disk rule %q: minimum size %s is above maximum %s", s, FormatSize(r.MinSize), FormatSize(r.MaxSize))
	}
	return r, nil
}

func parseSizeTerm(r *Rule, rest string) error {
	for _, op := range []string{">=", "<=", ">", "<", "="} {
		v, ok := strings.CutPrefix(rest, op)
		if !ok {
			continue
		}
		n, err := ParseSize(strings.TrimSpace(v))
		if err != nil {
			return err
		}
		switch op {
		case ">=":
			r.MinSize = n
		case ">":
			r.MinSize = n + 1
		case "<=":
			r.MaxSize = n
		case "<":
			if n <= 1 {
				return fmt.Errorf("size below %d bytes matches no disk", n)
			}
			r.MaxSize = n - 1
		case "=":
			r.MinSize, r.MaxSize = n, n
		}
		return nil
	}
	return fmt.Errorf("want size>=N, size<=N, size>N, size<N or size=N")
}

// Select returns the single disk that the rule matches. It refuses to guess:
// more than one candidate is an error listing them, and no candidate is an
// error saying why each disk was excluded. Removable and boot disks are
// excluded unless the rule allows them.
func Select(disks []Disk, rule Rule) (Disk, error) {
	var (
		matches []Disk
		reasons []string
	)
	for i, d := range disks {
		why := exclusion(i, d, rule)
		if why != "" {
			reasons = append(reasons, d.String()+": "+why)
			continue
		}
		matches = append(matches, d)
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		if len(disks) == 0 {
			return Disk{}, deploy.Errorf(deploy.KindNotFound, "no disk matches %s: the machine has no disks", rule)
		}
		return Disk{}, deploy.Errorf(deploy.KindNotFound, "no disk matches %s: %s", rule, strings.Join(reasons, "; "))
	}
	names := make([]string, len(matches))
	for i, d := range matches {
		names[i] = d.String()
	}
	return Disk{}, deploy.Errorf(deploy.KindConflict, "%d disks match %s: %s; add a rule", len(matches), rule, strings.Join(names, ", "))
}

func exclusion(i int, d Disk, r Rule) string {
	switch {
	case r.Index != nil && *r.Index != i:
		return fmt.Sprintf("index %d is not %d", i, *r.Index)
	case d.ReadOnly:
		return "read-only"
	case d.Removable && !r.AllowRemovable:
		return "removable (add removable=true to allow)"
	case d.IsBoot && !r.AllowBoot:
		return "holds the running system (add boot=true to allow)"
	case d.Size < r.MinSize:
		return fmt.Sprintf("smaller than %s", FormatSize(r.MinSize))
	case r.MaxSize > 0 && d.Size > r.MaxSize:
		return fmt.Sprintf("larger than %s", FormatSize(r.MaxSize))
	case r.Bus != "" && !matchText(r.Bus, d.Bus):
		return fmt.Sprintf("bus %s does not match %q", d.Bus, r.Bus)
	case r.Model != "" && !matchText(r.Model, d.Model):
		return fmt.Sprintf("model %q does not match %q", d.Model, r.Model)
	}
	return ""
}

func matchText(pattern, s string) bool {
	p, v := strings.ToLower(pattern), strings.ToLower(strings.TrimSpace(s))
	if strings.ContainsAny(p, "*?[") {
		ok, _ := path.Match(p, v)
		return ok
	}
	return strings.Contains(v, p)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readInt(p string) (int64, error) {
	s := readTrim(p)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %q is not a number", p, s)
	}
	return n, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
