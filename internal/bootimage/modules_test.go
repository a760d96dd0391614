package bootimage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imprint-osd/imprint/internal/bootimage"
)

func writeModTree(t *testing.T, dep, builtin string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if builtin != "" {
		if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(builtin), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A modules.dep in the shape Debian's depmod writes (dependencies listed so
// that the last is loaded first), with mixed compression suffixes.
const syntheticDep = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko.zst: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz:
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/crypto/crc32c_generic.ko:
kernel/drivers/usb/storage/usb-storage.ko:
`

const syntheticBuiltin = `kernel/drivers/scsi/sd_mod.ko
kernel/drivers/ata/ahci.ko
`

func TestResolveModules(t *testing.T) {
	dir := writeModTree(t, syntheticDep, syntheticBuiltin)
	tests := map[string]struct {
		want    []string
		got     []string
		wantErr string
	}{
		"no dependencies": {
			want: []string{"e1000"},
			got:  []string{"kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz"},
		},
		"transport with four deps, last listed loads first": {
			want: []string{"virtio_pci"},
			got: []string{
				"kernel/drivers/virtio/virtio.ko",
				"kernel/drivers/virtio/virtio_ring.ko",
				"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
				"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
				"kernel/drivers/virtio/virtio_pci.ko",
			},
		},
		"shared dependencies appear once": {
			want: []string{"virtio_pci", "virtio_net"},
			got: []string{
				"kernel/drivers/virtio/virtio.ko",
				"kernel/drivers/virtio/virtio_ring.ko",
				"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
				"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
				"kernel/drivers/virtio/virtio_pci.ko",
				"kernel/net/core/failover.ko",
				"kernel/drivers/net/net_failover.ko",
				"kernel/drivers/net/virtio_net.ko.zst",
			},
		},
		"wanted order kept: crc32c before ext4": {
			want: []string{"crc32c_generic", "ext4"},
			got: []string{
				"kernel/crypto/crc32c_generic.ko",
				"kernel/fs/jbd2/jbd2.ko",
				"kernel/fs/mbcache.ko",
				"kernel/lib/crc16.ko",
				"kernel/fs/ext4/ext4.ko",
			},
		},
		"hyphen and underscore are the same": {
			want: []string{"usb_storage", "virtio-net"},
			got: []string{
				"kernel/drivers/usb/storage/usb-storage.ko",
				"kernel/drivers/virtio/virtio.ko",
				"kernel/drivers/virtio/virtio_ring.ko",
				"kernel/net/core/failover.ko",
				"kernel/drivers/net/net_failover.ko",
				"kernel/drivers/net/virtio_net.ko.zst",
			},
		},
		"built-ins skipped": {
			want: []string{"sd_mod", "ahci", "e1000"},
			got:  []string{"kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz"},
		},
		"nothing wanted": {want: nil, got: nil},
		"missing module named": {
			want:    []string{"e1000", "igb", "ixgbe"},
			wantErr: "neither a module nor built in): igb, ixgbe",
		},
		"not a module name": {
			want:    []string{"kernel/foo.txt"},
			wantErr: `"kernel/foo.txt" is not a module name`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := bootimage.ResolveModules(dir, tc.want)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.got, got); diff != "" {
				t.Errorf("closure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveModulesBadTrees(t *testing.T) {
	tests := map[string]struct {
		dep, want, wantErr string
	}{
		"cycle": {
			dep:     "a.ko: b.ko\nb.ko: a.ko\n",
			want:    "a",
			wantErr: "dependency cycle: a.ko -> b.ko -> a.ko",
		},
		"dependency not listed": {
			dep:     "a.ko: ghost.ko\n",
			want:    "a",
			wantErr: "a.ko needs ghost.ko, which modules.dep does not list",
		},
		"line without colon": {
			dep:     "a.ko\n",
			want:    "a",
			wantErr: "line 1: want",
		},
		"absolute path": {
			dep:     "/lib/a.ko:\n",
			want:    "a",
			wantErr: "not a clean relative path",
		},
		"escaping dependency": {
			dep:     "a.ko: ../../etc/shadow.ko\n",
			want:    "a",
			wantErr: "not a clean relative path",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeModTree(t, tc.dep, "")
			_, err := bootimage.ResolveModules(dir, []string{tc.want})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := bootimage.ResolveModules(t.TempDir(), []string{"a"}); err == nil || !strings.Contains(err.Error(), "run depmod") {
		t.Errorf("no modules.dep: got %v, want a hint to run depmod", err)
	}
}

func TestModuleName(t *testing.T) {
	tests := map[string]string{
		"kernel/fs/ext4/ext4.ko":        "ext4",
		"kernel/fs/ext4/ext4.ko.xz":     "ext4",
		"kernel/fs/ext4/ext4.ko.zst":    "ext4",
		"usb-storage":                   "usb_storage",
		"kernel/drivers/usb-storage.ko": "usb_storage",
		"kernel/drivers/readme.txt":     "",
		"kernel/drivers/x.ko.bz3":       "",
		"virtio_net":                    "virtio_net",
	}
	for in, want := range tests {
		if got := bootimage.ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}
