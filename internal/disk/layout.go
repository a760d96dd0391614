//go:build linux

package disk

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Layout names a partition layout that Format writes.
type Layout string

const (
	// LinuxUEFI is GPT: 1 ESP 260 MiB FAT32 (EF00, "ESP"), 2 Linux root
	// (8300, "root") to the end minus 1 MiB, left unformatted.
	LinuxUEFI Layout = "linux-uefi"
	// LinuxBIOS is MBR: 1 bootable Linux partition (0x83) to the end minus
	// 1 MiB, left unformatted.
	LinuxBIOS Layout = "linux-bios"
	// WindowsUEFI is DeployR's GPT layout: 1 ESP 500 MiB FAT32, 2 MSR
	// 128 MiB, 3 Windows basic data NTFS, 4 Recovery 1 GiB NTFS at the end
	// (minus 1 MiB).
	WindowsUEFI Layout = "windows-uefi"
	// WindowsBIOS is MBR: 1 System 500 MiB NTFS (active), 2 Windows NTFS to
	// the end minus 1 MiB.
	WindowsBIOS Layout = "windows-bios"
)

// Layouts lists the layouts Format knows.
func Layouts() []Layout { return []Layout{LinuxUEFI, LinuxBIOS, WindowsUEFI, WindowsBIOS} }

// ParseLayout checks a layout name.
func ParseLayout(s string) (Layout, error) {
	for _, l := range Layouts() {
		if strings.EqualFold(s, string(l)) {
			return l, nil
		}
	}
	names := make([]string, len(Layouts()))
	for i, l := range Layouts() {
		names[i] = string(l)
	}
	return "", deploy.Errorf(deploy.KindInvalid, "unknown disk layout %q (want one of %s)", s, strings.Join(names, ", "))
}

// Filesystem kinds Format leaves on partitions.
const (
	FSNone  = ""
	FSFAT32 = "fat32"
	FSNTFS  = "ntfs"
)

// Partition is one partition Format made. Start and Size are in bytes from
// the start of the disk. Device is the partition's node (/dev/sda1) when the
// disk is a block device, "" for an image file.
type Partition struct {
	DiskPath   string
	Number     int
	Start      int64
	Size       int64
	Type       string // GPT type GUID (upper case) or MBR type as "0x83"
	Name       string // GPT partition name or the role for MBR
	Filesystem string // FSFAT32, FSNTFS or FSNone
	Bootable   bool   // MBR active flag
	Device     string
}

// Result is what Format wrote.
type Result struct {
	Layout     Layout
	Table      string // "gpt" or "mbr"
	DiskSize   int64
	SectorSize int64
	Partitions []Partition
}

// Part returns the partition with the given role name ("ESP", "root",
// "Windows", "Recovery", "MSR", "System").
func (r *Result) Part(name string) (Partition, bool) {
	for _, p := range r.Partitions {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Partition{}, false
}

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
	// minESP keeps clear of go-diskfs's broken FAT32 at 32 and 64 MiB.
	minESP = 100 * mib
)

type plannedPart struct {
	name     string
	size     int64 // 0 = the rest
	gptType  gpt.Type
	mbrType  mbr.Type
	fs       string
	bootable bool
	attrs    uint64
	atEnd    bool // placed after the "rest" partition
}

func plan(l Layout) (table string, parts []plannedPart) {
	switch l {
	case LinuxUEFI:
		return "gpt", []plannedPart{
			{name: "ESP", size: 260 * mib, gptType: gpt.EFISystemPartition, fs: FSFAT32},
			{name: "root", gptType: gpt.LinuxFilesystem},
		}
	case LinuxBIOS:
		return "mbr", []plannedPart{{name: "root", mbrType: mbr.Linux, bootable: true}}
	case WindowsUEFI:
		return "gpt", []plannedPart{
			{name: "ESP", size: 500 * mib, gptType: gpt.EFISystemPartition, fs: FSFAT32},
			{name: "MSR", size: 128 * mib, gptType: gpt.MicrosoftReserved},
			{name: "Windows", gptType: gpt.MicrosoftBasicData, fs: FSNTFS},
			// required (bit 0) and no drive letter (bit 63), as Windows sets it
			{name: "Recovery", size: gib, gptType: gpt.MicrosoftWindowsRecovery, fs: FSNTFS, attrs: 0x8000000000000001, atEnd: true},
		}
	case WindowsBIOS:
		return "mbr", []plannedPart{
			{name: "System", size: 500 * mib, mbrType: mbr.NTFS, fs: FSNTFS, bootable: true},
			{name: "Windows", mbrType: mbr.NTFS, fs: FSNTFS},
		}
	}
	return "", nil
}

// Format writes layout l to the disk or image file at path, replacing any
// partition table, and formats the ESP (FAT32) and NTFS partitions. On a
// block device it makes the kernel re-read the table and waits for the
// partition nodes.
func Format(ctx context.Context, path string, l Layout) (*Result, error) {
	table, planned := plan(l)
	if table == "" {
		_, err := ParseLayout(string(l))
		return nil, err
	}
	d, err := diskfs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("format %s: open: %w", path, err)
	}
	defer d.Close()
	ss := d.LogicalBlocksize
	res := &Result{Layout: l, Table: table, DiskSize: d.Size, SectorSize: ss}
	isDev := isBlockDevice(path)

	// Lay out in bytes: 1 MiB aligned start, 1 MiB free at the end (also
	// room for the backup GPT).
	var fixed int64
	for _, p := range planned {
		fixed += p.size
	}
	usableEnd := (d.Size/mib)*mib - mib
	restSize := usableEnd - mib - fixed
	if restSize < gib/2 {
		return nil, deploy.Errorf(deploy.KindInvalid, "format %s: disk of %s is too small for layout %s (needs at least %s)",
			path, FormatSize(d.Size), l, FormatSize(fixed+gib/2+3*mib))
	}
	if table == "mbr" && usableEnd/ss > 1<<32-1 {
		return nil, deploy.Errorf(deploy.KindInvalid, "format %s: disk of %s is too large for an MBR layout (2 TiB at most); use a UEFI layout",
			path, FormatSize(d.Size))
	}
	pos, endPos := mib, usableEnd
	for i, p := range planned {
		size := p.size
		if size == 0 {
			size = restSize
		}
		start := pos
		if p.atEnd {
			start = endPos - size
		} else {
			pos += size
		}
		res.Partitions = append(res.Partitions, Partition{
			DiskPath: path, Number: i + 1, Start: start, Size: size, Name: p.name,
			Filesystem: p.fs, Bootable: p.bootable,
		})
	}

	// Wipe old tables and signatures: first and last MiB of the disk, first
	// MiB of every partition.
	w, err := d.Backend.Writable()
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	zero := make([]byte, mib)
	offsets := []int64{0, d.Size - mib}
	for _, p := range res.Partitions {
		offsets = append(offsets, p.Start)
	}
	for _, off := range offsets {
		if off < 0 {
			continue
		}
		n := min(mib, d.Size-off)
		if _, err := w.WriteAt(zero[:n], off); err != nil {
			return nil, fmt.Errorf("format %s: wipe at %d: %w", path, off, err)
		}
	}

	var pt partition.Table
	if table == "gpt" {
		t := &gpt.Table{LogicalSectorSize: int(ss), PhysicalSectorSize: int(ss), ProtectiveMBR: true}
		for i, p := range planned {
			rp := &res.Partitions[i]
			rp.Type = string(p.gptType)
			t.Partitions = append(t.Partitions, &gpt.Partition{
				Index: i + 1, Start: uint64(rp.Start / ss), End: uint64((rp.Start+rp.Size)/ss - 1),
				Size: uint64(rp.Size), Type: p.gptType, Name: p.name, Attributes: p.attrs,
			})
		}
		pt = t
	} else {
		t := &mbr.Table{LogicalSectorSize: int(ss), PhysicalSectorSize: int(ss)}
		for i, p := range planned {
			rp := &res.Partitions[i]
			rp.Type = fmt.Sprintf("0x%02x", uint8(p.mbrType))
			t.Partitions = append(t.Partitions, &mbr.Partition{
				Index: i + 1, Bootable: p.bootable, Type: p.mbrType,
				Start: uint32(rp.Start / ss), Size: uint32(rp.Size / ss),
			})
		}
		pt = t
	}
	if err := d.Partition(pt); err != nil {
		return nil, fmt.Errorf("format %s: write %s partition table: %w", path, table, err)
	}
	if table == "mbr" {
		// A disk signature, so Windows and Linux can tell disks apart.
		sig := make([]byte, 4)
		_, _ = rand.Read(sig)
		if _, err := w.WriteAt(sig, 440); err != nil {
			return nil, fmt.Errorf("format %s: write disk signature: %w", path, err)
		}
	}
	if isDev {
		for i := range res.Partitions {
			res.Partitions[i].Device = PartitionPath(path, res.Partitions[i].Number)
		}
		if err := waitForNodes(ctx, res.Partitions); err != nil {
			return nil, fmt.Errorf("format %s: %w", path, err)
		}
	}

	for i, p := range res.Partitions {
		switch p.Filesystem {
		case FSFAT32:
			if p.Size < minESP {
				return nil, fmt.Errorf("format %s: ESP of %s is below %s", path, FormatSize(p.Size), FormatSize(minESP))
			}
			if _, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: p.Number, FSType: filesystem.TypeFat32, VolumeLabel: "ESP"}); err != nil {
				return nil, fmt.Errorf("format %s: FAT32 on partition %d: %w", path, p.Number, err)
			}
		case FSNTFS:
			label := planned[i].name
			if err := MakeNTFS(ctx, p, label); err != nil {
				return nil, fmt.Errorf("format %s: %w", path, err)
			}
		}
	}
	if s, ok := w.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return nil, fmt.Errorf("format %s: sync: %w", path, err)
		}
	}
	return res, nil
}

// PartitionPath names partition n of a disk node: /dev/sda → /dev/sda1,
// /dev/nvme0n1 → /dev/nvme0n1p1, /dev/mmcblk0 → /dev/mmcblk0p1 (a "p" when
// the disk name ends in a digit).
func PartitionPath(diskPath string, n int) string {
	if diskPath != "" && unicode.IsDigit(rune(diskPath[len(diskPath)-1])) {
		return diskPath + "p" + strconv.Itoa(n)
	}
	return diskPath + strconv.Itoa(n)
}

func isBlockDevice(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
}

// waitForNodes waits until udev (or devtmpfs) has made the partition nodes.
func waitForNodes(ctx context.Context, parts []Partition) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var missing []string
		for _, p := range parts {
			if !isBlockDevice(p.Device) {
				missing = append(missing, filepath.Base(p.Device))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partition nodes %s did not appear: %w", strings.Join(missing, ", "), ctx.Err())
		case <-tick.C:
		}
	}
}
