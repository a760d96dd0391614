//go:build linux

package disk

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type fakeDisk struct {
	name, target  string // target: devices path under sysRoot
	sectors       int64
	model, serial string
	removable, ro bool
	dev           string
	parts         map[string]string // partition name -> MAJ:MIN
}

// fakeSys builds a /sys tree: sys/devices/... holds the attributes and
// sys/block/NAME is a symlink to it, as on a real kernel.
func fakeSys(t *testing.T, disks []fakeDisk) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, v string) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(v+"\n"), 0o644))
	}
	must(os.MkdirAll(filepath.Join(root, "block"), 0o755))
	b2s := map[bool]string{true: "1", false: "0"}
	for _, d := range disks {
		dir := filepath.Join(root, d.target)
		write(filepath.Join(dir, "size"), itoa(d.sectors))
		write(filepath.Join(dir, "removable"), b2s[d.removable])
		write(filepath.Join(dir, "ro"), b2s[d.ro])
		write(filepath.Join(dir, "dev"), d.dev)
		if d.model != "" {
			write(filepath.Join(dir, "device", "model"), d.model+"   ")
		}
		if d.serial != "" {
			write(filepath.Join(dir, "device", "serial"), d.serial)
		}
		for p, dev := range d.parts {
			write(filepath.Join(dir, p, "dev"), dev)
		}
		rel, err := filepath.Rel(filepath.Join(root, "block"), dir)
		must(err)
		must(os.Symlink(rel, filepath.Join(root, "block", d.name)))
	}
	return root
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

const gib64 = 64 << 30 / 512

func testMachine(t *testing.T) []Disk {
	t.Helper()
	sys := fakeSys(t, []fakeDisk{
		{name: "vda", target: "devices/pci0000:00/0000:00:04.0/virtio1/block/vda", sectors: gib64, dev: "252:0", serial: "V1"},
		{name: "vdb", target: "devices/pci0000:00/0000:00:05.0/virtio2/block/vdb", sectors: gib64, dev: "252:16"},
		{name: "nvme0n1", target: "devices/pci0000:00/0000:00:06.0/nvme/nvme0/nvme0n1", sectors: 512 << 30 / 512, model: "Samsung SSD 980 PRO 500GB", serial: "S5G", dev: "259:0"},
		{name: "sda", target: "devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", sectors: 256 << 30 / 512, model: "WDC WDS250", dev: "8:0",
			parts: map[string]string{"sda1": "8:1", "sda2": "8:2"}},
		{name: "sdb", target: "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb", sectors: 32 << 30 / 512, model: "Flash Disk", removable: true, dev: "8:16"},
		{name: "mmcblk0", target: "devices/platform/mmc/mmc0:0001/block/mmcblk0", sectors: 16 << 30 / 512, dev: "179:0", ro: true},
		{name: "loop0", target: "devices/virtual/block/loop0", sectors: 100, dev: "7:0"},
		{name: "sr0", target: "devices/pci0000:00/ata2/host1/block/sr0", sectors: 100, dev: "11:0"},
	})
	disks, err := Lister{SysRoot: sys, RootDev: func() (string, error) { return "8:2", nil }}.List()
	if err != nil {
		t.Fatal(err)
	}
	return disks
}

func TestList(t *testing.T) {
	got := testMachine(t)
	want := []Disk{
		{Path: "/dev/mmcblk0", Size: 16 << 30, Bus: "mmc", ReadOnly: true},
		{Path: "/dev/nvme0n1", Size: 512 << 30, Bus: "nvme", Model: "Samsung SSD 980 PRO 500GB", Serial: "S5G"},
		{Path: "/dev/sda", Size: 256 << 30, Bus: "sata", Model: "WDC WDS250", IsBoot: true},
		{Path: "/dev/sdb", Size: 32 << 30, Bus: "usb", Model: "Flash Disk", Removable: true},
		{Path: "/dev/vda", Size: 64 << 30, Bus: "virtio", Serial: "V1"},
		{Path: "/dev/vdb", Size: 64 << 30, Bus: "virtio"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func TestListMissingSys(t *testing.T) {
	_, err := Lister{SysRoot: t.TempDir(), RootDev: func() (string, error) { return "", nil }}.List()
	if err == nil || !strings.Contains(err.Error(), "list disks") {
		t.Fatalf("err = %v, want a list disks error", err)
	}
}

func TestSelect(t *testing.T) {
	disks := testMachine(t)
	tests := []struct {
		rule    string
		want    string // chosen path, or "" for an error
		wantErr []string
	}{
		{rule: "bus=nvme", want: "/dev/nvme0n1"},
		{rule: "model=*samsung*", want: "/dev/nvme0n1"},
		{rule: "model=WDC", wantErr: []string{"holds the running system"}},
		{rule: "model=WDC,boot=true", want: "/dev/sda"},
		{rule: "size>=100G,size<=300G,boot=true", want: "/dev/sda"},
		{rule: "bus=usb", wantErr: []string{"/dev/sdb (32 GiB usb \"Flash Disk\" removable): removable (add removable=true to allow)"}},
		{rule: "bus=usb,removable=true", want: "/dev/sdb"},
		{rule: "index=5", want: "/dev/vdb"},
		{rule: "index=0", wantErr: []string{"/dev/mmcblk0", "read-only"}},
		{rule: "bus=virtio", wantErr: []string{"2 disks match bus=virtio: /dev/vda (64 GiB virtio), /dev/vdb (64 GiB virtio); add a rule"}},
		{rule: "", wantErr: []string{"3 disks match any disk: /dev/nvme0n1", "/dev/vda (64 GiB virtio), /dev/vdb"}},
		{rule: "size>=1T", wantErr: []string{"no disk matches size>=1T", "/dev/vda (64 GiB virtio): smaller than 1 TiB", "/dev/nvme0n1 (512 GiB nvme \"Samsung SSD 980 PRO 500GB\"): smaller than 1 TiB"}},
		{rule: "bus=scsi", wantErr: []string{"/dev/vda (64 GiB virtio): bus virtio does not match \"scsi\""}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			r, err := ParseRule(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Select(disks, r)
			if tt.wantErr != nil && tt.want == "" {
				if err == nil {
					t.Fatalf("Select = %s, want an error", got.Path)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\n lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if got.Path != tt.want {
				t.Errorf("Select = %s, want %s", got.Path, tt.want)
			}
		})
	}
	// Without boot=true the boot disk is refused even when it is the only match.
	r, _ := ParseRule("model=WDC")
	if _, err := Select(disks, r); err == nil || !strings.Contains(err.Error(), "holds the running system") {
		t.Errorf("boot disk: err = %v", err)
	}
	if _, err := Select(nil, Rule{}); err == nil || !strings.Contains(err.Error(), "no disks") {
		t.Errorf("no disks: err = %v", err)
	}
}

func TestParseRule(t *testing.T) {
	idx := func(n int) *int { return &n }
	tests := []struct {
		in      string
		want    Rule
		wantErr string
	}{
		{in: "", want: Rule{}},
		{in: "size>=100G,bus=nvme,model=*Samsung*", want: Rule{MinSize: 100 << 30, Bus: "nvme", Model: "*Samsung*"}},
		{in: " size <= 2T , size>1.5G ", wantErr: "want size>=N"},
		{in: "size<=2T,size>1.5G", want: Rule{MinSize: 3<<29 + 1, MaxSize: 2 << 40}},
		{in: "size=512MiB", want: Rule{MinSize: 512 << 20, MaxSize: 512 << 20}},
		{in: "size<4096", want: Rule{MaxSize: 4095}},
		{in: "minsize=1k,maxsize=1GB", want: Rule{MinSize: 1024, MaxSize: 1 << 30}},
		{in: "index=2,removable=true,boot=yes", wantErr: `"boot=yes"`},
		{in: "index=2,removable=true,boot=1", want: Rule{Index: idx(2), AllowRemovable: true, AllowBoot: true}},
		{in: "index=-1", wantErr: "negative"},
		{in: "size>=10X", wantErr: `size "10X"`},
		{in: "colour=red", wantErr: `unknown key "colour"`},
		{in: "nvme", wantErr: "want key=value"},
		{in: "model=[", wantErr: "bad glob"},
		{in: "size>=2G,size<=1G", wantErr: "minimum size 2 GiB is above maximum 1 GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRule(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRule (-want +got):\n%s", diff)
			}
			if tt.in == "" {
				return
			}
			// String round-trips.
			again, err := ParseRule(got.String())
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestPartitionPath(t *testing.T) {
	tests := []struct {
		disk string
		n    int
		want string
	}{
		{"/dev/sda", 1, "/dev/sda1"},
		{"/dev/vdb", 12, "/dev/vdb12"},
		{"/dev/nvme0n1", 1, "/dev/nvme0n1p1"},
		{"/dev/mmcblk0", 2, "/dev/mmcblk0p2"},
		{"/dev/loop3", 1, "/dev/loop3p1"},
		{"/dev/xvda", 4, "/dev/xvda4"},
	}
	for _, tt := range tests {
		if got := PartitionPath(tt.disk, tt.n); got != tt.want {
			t.Errorf("PartitionPath(%s, %d) = %s, want %s", tt.disk, tt.n, got, tt.want)
		}
	}
}
