package disksteps_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
)

func TestLayoutFor(t *testing.T) {
	tests := []struct {
		layout, style string
		uefi          bool
		want, err     string
	}{
		{"Linux", "Auto", true, "linux-uefi", ""},
		{"linux", "", false, "linux-bios", ""},
		{"Windows", "GPT", false, "windows-uefi", ""},
		{"Windows", "mbr", true, "windows-bios", ""},
		{"", "Auto", true, "windows-uefi", ""},
		{"linux-bios", "GPT", true, "linux-bios", ""},
		{"BSD", "Auto", true, "", `Layout "BSD"`},
		{"Linux", "APM", true, "", `PartitionStyle "APM"`},
	}
	for _, tt := range tests {
		got, err := disksteps.LayoutFor(tt.layout, tt.style, tt.uefi)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("LayoutFor(%q, %q) err = %v, want %q", tt.layout, tt.style, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LayoutFor(%q, %q, %v) = %q, %v; want %q", tt.layout, tt.style, tt.uefi, got, err, tt.want)
		}
	}
}

func TestDiskRuleSpec(t *testing.T) {
	tests := []struct {
		rule, index, removable string
		want, err              string
	}{
		{"", "0", "", "index=0", ""},
		{"", "2", "true", "index=2,removable=true", ""},
		{"", "", "", "", ""},
		{"size>=100G, bus=nvme,model~Samsung*", "3", "", "size>=100G,bus=nvme,model=Samsung*", ""},
		{"bus=virtio,removable=true", "", "False", "bus=virtio,removable=true", ""},
		{"", "-1", "", "", `DiskIndex "-1"`},
		{"serial=X1", "", "", "", "cannot select disks by serial"},
		{"bus!=usb", "", "", "", "bus takes = or ~"},
		{"size~1G", "", "", "", "size takes"},
	}
	for _, tt := range tests {
		got, err := disksteps.DiskRuleSpec(tt.rule, tt.index, tt.removable)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("DiskRuleSpec(%q, %q) err = %v, want %q", tt.rule, tt.index, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("DiskRuleSpec(%q, %q): %v", tt.rule, tt.index, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DiskRuleSpec(%q, %q) (-want +got):\n%s", tt.rule, tt.index, diff)
		}
	}
}

func TestPartitionSpecs(t *testing.T) {
	if got := disksteps.PartitionSpec("/dev/vda", "/dev/vda2", 2); got != "/dev/vda2" {
		t.Errorf("device spec = %q", got)
	}
	got := disksteps.PartitionSpec("/tmp/x#y/disk.img", "", 2)
	img, n, ok := disksteps.SplitImageSpec(got)
	if diff := cmp.Diff([]any{"/tmp/x#y/disk.img", 2, true}, []any{img, n, ok}); diff != "" {
		t.Errorf("round trip of %q (-want +got):\n%s", got, diff)
	}
	for _, s := range []string{"/dev/vda2", "/dev/x#0", "/dev/x#a"} {
		if _, _, ok := disksteps.SplitImageSpec(s); ok {
			t.Errorf("SplitImageSpec(%q) ok", s)
		}
	}
}

func TestStreamedAndOptions(t *testing.T) {
	for _, tt := range []struct {
		typ, opt string
		want     bool
	}{
		{stepdefs.TypeApplyOS, "image", true},
		{strings.ToUpper(stepdefs.TypeApplyIGEL), "Image", true},
		{stepdefs.TypeApplyChromeOSFlex, "Image", true},
		{stepdefs.TypeApplyOS, "Unattend", false},
		{stepdefs.TypeInstallApplication, "Image", false},
	} {
		if got := disksteps.Streamed(tt.typ, tt.opt); got != tt.want {
			t.Errorf("Streamed(%s, %s) = %v", tt.typ, tt.opt, got)
		}
	}
	// The option names the steps read are those of the catalogue.
	want := map[string][]string{
		stepdefs.TypeFormatDisk:   {"DiskIndex", "DiskRule", "Layout", "PartitionStyle", "AllowRemovable"},
		stepdefs.TypeApplyOS:      {"Image", "ImageIndex", "ImageFormat", "TargetPartition"},
		stepdefs.TypeCaptureImage: {"Source", "Compression", "TargetContentItem"},
		stepdefs.TypeApplyIGEL:    {"Image", "DiskIndex", "DiskRule"},
	}
	for typ, names := range want {
		def, ok := stepdefs.Builtin(typ)
		if !ok {
			t.Fatalf("no built-in %s", typ)
		}
		have := map[string]bool{}
		for _, o := range def.Latest().Options {
			have[o.Name] = true
		}
		for _, n := range names {
			if !have[n] {
				t.Errorf("%s has no option %s", typ, n)
			}
		}
	}
	for _, tt := range []struct {
		in   string
		want int
	}{{"Zstd", 3}, {"LZX", 3}, {"None", 1}, {"19", 19}} {
		if got, err := disksteps.CaptureLevel(tt.in); err != nil || got != tt.want {
			t.Errorf("CaptureLevel(%q) = %d, %v", tt.in, got, err)
		}
	}
	if _, err := disksteps.CaptureLevel("brotli"); err == nil {
		t.Error("CaptureLevel(brotli) accepted")
	}
}
