package agent_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

func TestAliases(t *testing.T) {
	tests := []struct {
		make, model, version, sku, board string
		want                             [3]string
	}{
		{"Dell Inc.", "Latitude 7440", "", "0C0F", "0WWCK", [3]string{"Dell", "Latitude 7440", "0C0F"}},
		{"HP", "HP EliteBook 840 G10", "", "8A1Z", "8B41", [3]string{"HP", "HP EliteBook 840 G10", "8B41"}},
		{"Hewlett-Packard", "HP Compaq 8200", "", "", "1495", [3]string{"HP", "HP Compaq 8200", "1495"}},
		{"LENOVO", "21HMCTO1WW", "ThinkPad T14 Gen 4", "", "", [3]string{"Lenovo", "ThinkPad T14 Gen 4", "21HM"}},
		{"Microsoft Corporation", "Surface Pro 9", "", "Surface_Pro_9_2038", "", [3]string{"Microsoft", "Surface Pro 9", "Surface_Pro_9_2038"}},
		{"Microsoft Corporation", "Virtual Machine", "Hyper-V UEFI Release v4.1", "", "", [3]string{"Microsoft", "Virtual Machine", "Hyper-V UEFI Release v4.1"}},
		{"VMware, Inc.", "VMware Virtual Platform, 7", "", "", "", [3]string{"VMWare", "VMware_Virtual_Platform__7", "NA"}},
		{"QEMU", "Standard PC (Q35 + ICH9, 2009)", "pc-q35-8.2", "", "", [3]string{"QEMU", "Standard PC (Q35 + ICH9, 2009)", "NA"}},
		{"innotek GmbH", "VirtualBox", "1.2", "", "", [3]string{"Innotek", "VirtualBox", "NA"}},
		{"Intel(R) Client Systems", "NUC13ANHi7", "M89930-204", "", "", [3]string{"Intel(R) Client Systems", "M89930-204", "NA"}},
		{"Panasonic Corporation", "CF-33", "", "", "CF33-4", [3]string{"Panasonic Corporation", "CF-33", "CF33-4"}},
		{"FUJITSU", "LIFEBOOK U7413", "", "SK01", "", [3]string{"Fujitsu", "LIFEBOOK U7413", "SK01"}},
		{"Acer", "TravelMate P214", "", "", "", [3]string{"Acer", "TravelMate P214", "TravelMate P214"}},
		{"Framework", "Laptop 13", "", "", "", [3]string{"NA", "Laptop 13", "NA"}},
	}
	for _, tc := range tests {
		t.Run(tc.make+"/"+tc.model, func(t *testing.T) {
			a, b, c := agent.Aliases(tc.make, tc.model, tc.version, tc.sku, tc.board)
			if diff := cmp.Diff(tc.want, [3]string{a, b, c}); diff != "" {
				t.Errorf("MakeAlias, ModelAlias, SystemAlias (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsVM(t *testing.T) {
	for _, tc := range []struct {
		make, model string
		want        bool
	}{
		{"QEMU", "Standard PC (i440FX + PIIX, 1996)", true},
		{"Microsoft Corporation", "Virtual Machine", true},
		{"VMware, Inc.", "VMware20,1", true},
		{"innotek GmbH", "VirtualBox", true},
		{"Xen", "HVM domU", true},
		{"Red Hat", "KVM", true},
		{"Dell Inc.", "OptiPlex 7010", false},
		{"Microsoft Corporation", "Surface Laptop 5", false},
	} {
		if got := agent.IsVM(tc.make, tc.model); got != tc.want {
			t.Errorf("IsVM(%q, %q) = %v", tc.make, tc.model, got)
		}
	}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGatherFromFakeSysfs(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"sys/class/dmi/id/sys_vendor":        "LENOVO\n",
		"sys/class/dmi/id/product_name":      "21HMCTO1WW\n",
		"sys/class/dmi/id/product_version":   "ThinkPad T14 Gen 4\n",
		"sys/class/dmi/id/product_serial":    "PF4ABCDE\n",
		"sys/class/dmi/id/product_uuid":      "4c4c4544-0035-3010-8052-b4c04f4d4e31\n",
		"sys/class/dmi/id/board_name":        "21HMCTO1WW\n",
		"sys/class/dmi/id/chassis_asset_tag": "No Asset Tag\n",
		"sys/class/dmi/id/product_sku":       "LENOVO_MT_21HM\n",
		"sys/class/net/lo/address":           "00:00:00:00:00:00\n",
		"sys/class/net/enp0s31f6/address":    "8c:16:45:aa:bb:cc\n",
		"sys/class/net/wlp0s20f3/address":    "f4:26:79:11:22:33\n",
		"sys/firmware/efi/fw_platform_size":  "64\n",
		"proc/meminfo":                       "MemTotal:       32498764 kB\nMemFree: 1 kB\n",
		"sys/block/nvme0n1/size":             "1000215216\n",
		"sys/block/nvme0n1/device/model":     "SAMSUNG MZVL21T0HCLR-00BL7   \n",
		"sys/block/sda/size":                 "0\n", // a card reader without a card
		"sys/block/loop0/size":               "2048\n",
		"sys/block/sr0/size":                 "2097152\n",
	})
	g := agent.Gatherer{Root: root, GOARCH: "arm64", OSVersion: agent.OSVersionBootImage,
		Addrs: func() ([]string, error) { return []string{"192.0.2.10", "2001:db8::10"}, nil }}
	inv, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vars := sequence.NewVars()
	inv.SetVars(vars.SetInternal, func(n string, items []string) {
		if err := vars.SetList(n, items); err != nil {
			t.Fatal(err)
		}
	})
	want := map[string]string{
		"MAKE": "LENOVO", "MODEL": "21HMCTO1WW", "MAKEALIAS": "Lenovo", "MODELALIAS": "ThinkPad T14 Gen 4",
		"SYSTEMALIAS": "21HM", "SERIALNUMBER": "PF4ABCDE", "UUID": "4C4C4544-0035-3010-8052-B4C04F4D4E31",
		"ISVM": "False", "ISUEFI": "True", "SETUPMODE": "UEFI", "MEMORY": "31737", "ARCHITECTURE": "ARM64",
		"OSVERSION": "ImprintPE", "MACADDRESS001": "8C:16:45:AA:BB:CC", "MACADDRESS002": "F4:26:79:11:22:33",
		"MACADDRESS003": "", "IPADDRESS001": "192.0.2.10", "IPADDRESS002": "2001:db8::10", "SYSTEMSKU": "LENOVO_MT_21HM",
		"ASSETTAG": "No Asset Tag",
	}
	got := map[string]string{}
	for k := range want {
		got[k] = vars.Value(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
	wantDisks := []deploy.Disk{{Name: "nvme0n1", Model: "SAMSUNG MZVL21T0HCLR-00BL7", Size: 1000215216 * 512}}
	if diff := cmp.Diff(wantDisks, inv.Disks); diff != "" {
		t.Errorf("disks (-want +got):\n%s", diff)
	}
}

func TestGatherEmptyTree(t *testing.T) {
	inv, err := agent.Gatherer{Root: t.TempDir(), GOARCH: "amd64", Addrs: func() ([]string, error) { return nil, nil }}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if inv.IsUEFI || inv.MakeAlias != "NA" || inv.Architecture != "x64" || inv.OSVersion == "" {
		t.Errorf("inventory of an empty tree = %+v", inv)
	}
}
