//go:build linux

package disk

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type wantPart struct {
	Start, Size int64 // sectors
	Type        string
	Name        string
	Bootable    bool
}

func TestFormatLayouts(t *testing.T) {
	needTools(t, "sfdisk", "sgdisk", "mdir", "fsck.fat", "mkntfs", "ntfsinfo")
	const size = 3 << 30
	const s = 2048 // sectors per MiB
	end := int64(size/512 - s)
	tests := []struct {
		layout Layout
		label  string
		want   []wantPart
		ntfs   []int // partition numbers that must hold NTFS
	}{
		{LinuxUEFI, "gpt", []wantPart{
			{s, 260 * s, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "ESP", false},
			{261 * s, end - 261*s, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "root", false},
		}, nil},
		{LinuxBIOS, "dos", []wantPart{{s, end - s, "83", "", true}}, nil},
		{WindowsUEFI, "gpt", []wantPart{
			{s, 500 * s, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "ESP", false},
			{501 * s, 128 * s, "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "MSR", false},
			{629 * s, end - 1024*s - 629*s, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Windows", false},
			{end - 1024*s, 1024 * s, "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Recovery", false},
		}, []int{3, 4}},
		{WindowsBIOS, "dos", []wantPart{
			{s, 500 * s, "7", "", true},
			{501 * s, end - 501*s, "7", "", false},
		}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(string(tt.layout), func(t *testing.T) {
			img := sparseImage(t, size)
			res, err := Format(t.Context(), img, tt.layout)
			if err != nil {
				t.Fatal(err)
			}
			got := sfdisk(t, img)
			if got.PartitionTable.Label != tt.label {
				t.Errorf("label = %s, want %s", got.PartitionTable.Label, tt.label)
			}
			var gotParts []wantPart
			for _, p := range got.PartitionTable.Partitions {
				gotParts = append(gotParts, wantPart{p.Start, p.Size, p.Type, p.Name, p.Bootable})
			}
			if diff := cmp.Diff(tt.want, gotParts); diff != "" {
				t.Errorf("partitions (-want +got):\n%s", diff)
			}
			// Result agrees with the table on disk.
			for i, p := range res.Partitions {
				if i < len(tt.want) && (p.Start != tt.want[i].Start*512 || p.Size != tt.want[i].Size*512) {
					t.Errorf("Result partition %d = %d+%d, want %d+%d", p.Number, p.Start, p.Size, tt.want[i].Start*512, tt.want[i].Size*512)
				}
			}
			if tt.label == "gpt" {
				if out := runTool(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
					t.Errorf("sgdisk -v:\n%s", out)
				}
				if esp, _ := res.Part("ESP"); true {
					checkESP(t, img, esp)
				}
			}
			if tt.layout == WindowsUEFI {
				if out := runTool(t, "sgdisk", "-i", "4", img); !strings.Contains(out, "Attribute flags: 8000000000000001") {
					t.Errorf("recovery attributes:\n%s", out)
				}
			}
			for _, n := range tt.ntfs {
				p := res.Partitions[n-1]
				out := runTool(t, "ntfsinfo", "-m", extractPart(t, img, p))
				if !strings.Contains(out, "Volume Name: "+p.Name) {
					t.Errorf("partition %d: ntfsinfo:\n%s", n, out)
				}
			}
		})
	}
}

// checkESP reads the ESP with mtools and fsck.fat, accepting only the two
// complaints fsck.fat always makes about go-diskfs's FAT32.
func checkESP(t *testing.T, img string, esp Partition) {
	t.Helper()
	runTool(t, "mdir", "-i", fmt.Sprintf("%s@@%d", img, esp.Start), "::/")
	out, err := toolCmd(t, "fsck.fat", "-n", extractPart(t, img, esp)).CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("fsck.fat: %v\n%s", err, out)
		}
	}
	if !strings.Contains(string(out), "FAT32") && !strings.Contains(string(out), "files") {
		t.Errorf("fsck.fat did not check a filesystem:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", strings.HasPrefix(line, "fsck.fat "), strings.HasPrefix(line, "Checking we can access"),
			strings.Contains(line, "files,"), strings.Contains(line, "Leaving filesystem unchanged"):
		case strings.Contains(line, "Invalid '..'"), strings.Contains(line, "Free cluster summary"),
			strings.HasPrefix(line, "Free cluster summary uninitialized"), strings.HasPrefix(line, "/"),
			strings.HasPrefix(line, "Checking free cluster summary"), strings.HasPrefix(line, "1) Set it"), strings.HasPrefix(line, "2) Leave"):
		default:
			t.Errorf("fsck.fat complains: %q\n%s", line, out)
		}
	}
}

func TestFormatRefuses(t *testing.T) {
	if _, err := Format(t.Context(), sparseImage(t, 512<<20), WindowsUEFI); err == nil || !strings.Contains(err.Error(), "too small for layout windows-uefi") {
		t.Errorf("small disk: err = %v", err)
	}
	if _, err := Format(t.Context(), sparseImage(t, 1<<30), Layout("zfs")); err == nil || !strings.Contains(err.Error(), `unknown disk layout "zfs"`) {
		t.Errorf("bad layout: err = %v", err)
	}
	if _, err := Format(t.Context(), t.TempDir()+"/missing.img", LinuxUEFI); err == nil || !strings.Contains(err.Error(), "missing.img") {
		t.Errorf("missing disk: err = %v", err)
	}
}
