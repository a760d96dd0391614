//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// Partition is one entry of a disk image's partition table, as sfdisk
// reports it (sizes in 512-byte sectors).
type Partition struct {
	Node  string `json:"node"`
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	Type  string `json:"type"` // GPT type GUID or MBR type byte in hex
}

// Offset and Bytes are the partition's byte range in the image.
func (p Partition) Offset() int64 { return p.Start * 512 }
func (p Partition) Bytes() int64  { return p.Size * 512 }

// PartitionTable is a disk image's table: label "gpt" or "dos".
type PartitionTable struct {
	Label      string      `json:"label"`
	Partitions []Partition `json:"partitions"`
}

// GPT partition type GUIDs and sgdisk codes the layouts use.
const (
	GUIDESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	GUIDLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	GUIDMSR   = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
	GUIDBasic = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
)

// readTable reads the partition table of a disk image with sfdisk.
func readTable(ctx context.Context, disk string) (*PartitionTable, error) {
	cmd := exec.CommandContext(ctx, "sfdisk", "--json", disk)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // warnings (a damaged primary GPT) go to stderr
	if err != nil {
		return nil, fmt.Errorf("sfdisk --json %s: %w: %s", disk, err, stderr.String())
	}
	var doc struct {
		PT PartitionTable `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	for i := range doc.PT.Partitions {
		doc.PT.Partitions[i].Type = strings.ToUpper(doc.PT.Partitions[i].Type)
	}
	return &doc.PT, nil
}

// sgdiskVerify runs `sgdisk -v` and wants "No problems found" and no
// complaint about the headers: sgdisk says "No problems found" even when
// it had to load the backup table because the main header is corrupt.
func sgdiskVerify(ctx context.Context, disk string) error {
	out, err := run(ctx, "sgdisk", "-v", disk)
	if err != nil {
		return err
	}
	low := strings.ToLower(string(out))
	if !strings.Contains(string(out), "No problems found") || strings.Contains(low, "corrupt") ||
		strings.Contains(low, "crc") || strings.Contains(low, "invalid") || strings.Contains(low, "error") {
		return fmt.Errorf("sgdisk -v %s found problems:\n%s", disk, out)
	}
	return nil
}

var sgdiskRow = regexp.MustCompile(`(?m)^\s+(\d+)\s+\d+\s+\d+\s+\S+ \S+\s+([0-9A-F]{4})\s`)

// sgdiskCodes returns the sgdisk type code of each partition (EF00, 8300,
// …) in table order, from `sgdisk -p`.
func sgdiskCodes(ctx context.Context, disk string) ([]string, string, error) {
	out, err := run(ctx, "sgdisk", "-p", disk)
	if err != nil {
		return nil, "", err
	}
	var codes []string
	for _, m := range sgdiskRow.FindAllStringSubmatch(string(out), -1) {
		codes = append(codes, m[2])
	}
	return codes, string(out), nil
}

// rangeSHA256 hashes n bytes of path starting at off.
func rangeSHA256(path string, off, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	got, err := io.Copy(h, io.NewSectionReader(f, off, n))
	if err != nil {
		return "", err
	}
	if got != n {
		return "", fmt.Errorf("%s: only %d of %d bytes at offset %d", path, got, n, off)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract copies n bytes at off of path into a new file dst.
func extract(path string, off, n int64, dst string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, off, n)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// e2fsckClean runs `e2fsck -fn` on an ext4 image file.
func e2fsckClean(ctx context.Context, img string) (string, error) {
	out, err := run(ctx, "e2fsck", "-fn", img)
	return string(out), err
}

// debugfsCat reads one file out of an ext4 image without mounting it.
func debugfsCat(ctx context.Context, img, path string) (string, error) {
	out, err := run(ctx, "debugfs", "-R", "cat "+path, img)
	if err != nil {
		return "", err
	}
	// debugfs prints its version banner on stderr, which run merges.
	s := string(out)
	if i := strings.Index(s, "\n"); strings.HasPrefix(s, "debugfs ") && i >= 0 {
		s = s[i+1:]
	}
	return s, nil
}

// mdir lists a directory of the FAT filesystem at byte offset off of disk.
func mdir(ctx context.Context, disk string, off int64, dir string) (string, error) {
	out, err := run(ctx, "mdir", "-i", fmt.Sprintf("%s@@%d", disk, off), "::"+dir)
	return string(out), err
}

// mcopyOut reads one file from the FAT filesystem at byte offset off.
func mcopyOut(ctx context.Context, disk string, off int64, path, dst string) error {
	_, err := run(ctx, "mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", disk, off), "::"+path, dst)
	return err
}

// sameFile reports whether two files have the same bytes.
func sameFile(a, b string) (bool, error) {
	_, ha, err := fileDigest(a)
	if err != nil {
		return false, err
	}
	_, hb, err := fileDigest(b)
	if err != nil {
		return false, err
	}
	return ha == hb, nil
}

// linuxDiskProblems checks a disk the Linux layout was deployed to and
// returns what is wrong. UEFI: GPT with an ESP (EF00) holding the UKI as
// \EFI\BOOT\BOOTX64.EFI and a Linux root (8300); BIOS: MBR with one
// bootable Linux (0x83) partition. Either way the root partition's first
// bytes must be the image, and e2fsck must find the filesystem clean.
func linuxDiskProblems(ctx context.Context, disk string, osimg *TestOS, fw Firmware) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if fw == UEFI {
		if err := sgdiskVerify(ctx, disk); err != nil {
			bad("%v", err)
		}
	}
	pt, err := readTable(ctx, disk)
	if err != nil {
		return append(problems, err.Error())
	}
	wantLabel, wantParts := "gpt", 2
	if fw == BIOS {
		wantLabel, wantParts = "dos", 1
	}
	if pt.Label != wantLabel || len(pt.Partitions) != wantParts {
		return append(problems, fmt.Sprintf("partition table %s with %d partitions %+v, want %s with %d", pt.Label, len(pt.Partitions), pt.Partitions, wantLabel, wantParts))
	}
	root := pt.Partitions[wantParts-1]
	if fw == UEFI {
		codes, table, err := sgdiskCodes(ctx, disk)
		if err != nil {
			return append(problems, err.Error())
		}
		if strings.Join(codes, ",") != "EF00,8300" {
			bad("partition type codes %v, want [EF00 8300]:\n%s", codes, table)
		}
	} else if root.Type != "83" {
		bad("MBR partition type %s, want 83", root.Type)
	}
	if root.Bytes() < osimg.Size {
		return append(problems, fmt.Sprintf("root partition holds %d bytes, less than the %d-byte image", root.Bytes(), osimg.Size))
	}
	got, err := rangeSHA256(disk, root.Offset(), osimg.Size)
	if err != nil {
		return append(problems, err.Error())
	}
	if got != osimg.SHA256 {
		bad("root partition: SHA-256 of the first %d bytes is %s, want the image's %s", osimg.Size, got, osimg.SHA256)
	}
	part := disk + ".root"
	defer os.Remove(part)
	if err := extract(disk, root.Offset(), osimg.Size, part); err != nil {
		return append(problems, err.Error())
	}
	if out, err := e2fsckClean(ctx, part); err != nil {
		bad("e2fsck -fn on the root partition: %v\n%s", err, out)
	}
	if m, err := debugfsCat(ctx, part, "/etc/imprint-marker"); err != nil || strings.TrimSpace(m) != osimg.Marker {
		bad("root partition /etc/imprint-marker = %q (%v), want %q", m, err, osimg.Marker)
	}
	if fw != UEFI {
		return problems
	}
	espOff := pt.Partitions[0].Offset()
	list, err := mdir(ctx, disk, espOff, "/")
	if err != nil {
		return append(problems, err.Error())
	}
	if !strings.Contains(list, "EFI") {
		bad("ESP root has no EFI directory:\n%s", list)
	}
	boot := disk + ".bootx64"
	defer os.Remove(boot)
	if err := mcopyOut(ctx, disk, espOff, "/EFI/BOOT/BOOTX64.EFI", boot); err != nil {
		return append(problems, err.Error())
	}
	if same, err := sameFile(boot, osimg.UKI); err != nil || !same {
		bad("ESP \\EFI\\BOOT\\BOOTX64.EFI differs from the deployed root's UKI (%v)", err)
	}
	return problems
}
