package lab_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/lab"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// needFirmware fails (under make test) or skips when Debian's OVMF and
// iPXE ROMs are not installed.
func needFirmware(t *testing.T) {
	t.Helper()
	for path, pkg := range map[string]string{
		"/usr/share/OVMF/OVMF_CODE_4M.fd":         "ovmf",
		"/usr/share/OVMF/OVMF_VARS_4M.fd":         "ovmf",
		"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd": "ovmf",
		"/usr/share/OVMF/OVMF_VARS_4M.ms.fd":      "ovmf",
		"/usr/lib/ipxe/qemu/efi-virtio.rom":       "ipxe-qemu",
		"/usr/lib/ipxe/qemu/pxe-virtio.rom":       "ipxe-qemu",
	} {
		if _, err := os.Stat(path); err != nil {
			testenv.Missing(t, "%s is not there: apt-get install %s", path, pkg)
		}
	}
}

// hasArg reports whether flag is followed by a value containing want.
func hasArg(args []string, flag, want string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && strings.Contains(args[i+1], want) {
			return true
		}
	}
	return false
}

func TestArgs(t *testing.T) {
	needFirmware(t)
	tests := []struct {
		name    string
		m       lab.Machine
		want    [][2]string // flag, substring of its value
		notWant [][2]string
	}{
		{
			name: "uefi with iPXE",
			m:    lab.Machine{Firmware: lab.UEFI},
			want: [][2]string{{"-machine", "q35"}, {"-drive", "OVMF_CODE_4M.fd"}, {"-drive", "vars.fd"},
				{"-device", "virtio-blk-pci,drive=d0,bootindex=1"},
				{"-device", "virtio-net-pci,netdev=n0,bootindex=2,romfile=/usr/lib/ipxe/qemu/efi-virtio.rom"},
				{"-netdev", "bootfile=http://10.0.2.2:7282/boot.ipxe"}, {"-serial", "stdio"}, {"-monitor", "none"}},
			notWant: [][2]string{{"-machine", "smm=on"}, {"-boot", "n"}},
		},
		{
			name: "secure boot from the ISO",
			m:    lab.Machine{Firmware: lab.UEFI, SecureBoot: true, ISO: "imprint.iso", NoOptionROM: true, NIC: "e1000"},
			want: [][2]string{{"-machine", "q35,smm=on"}, {"-global", "cfi.pflash01,property=secure,value=on"},
				{"-drive", "OVMF_CODE_4M.secboot.fd"}, {"-device", "ide-cd,drive=cd0,bootindex=1"},
				{"-device", "virtio-blk-pci,drive=d0,bootindex=2"}, {"-device", "e1000,netdev=n0,bootindex=3,romfile="}},
			notWant: [][2]string{{"-device", "efi-e1000.rom"}},
		},
		{
			name:    "bios boots the network first",
			m:       lab.Machine{Firmware: lab.BIOS, MemoryMiB: 2048, CPUs: 2, Accel: "kvm", Interactive: true},
			want:    [][2]string{{"-machine", "pc"}, {"-boot", "n"}, {"-m", "2048"}, {"-smp", "2"}, {"-accel", "kvm"}, {"-serial", "mon:stdio"}},
			notWant: [][2]string{{"-drive", "pflash"}, {"-monitor", "none"}},
		},
		{
			name:    "named machine on bios",
			m:       lab.Machine{Firmware: lab.BIOS, MAC: "52:54:00:0a:0b:0c", UUID: "4c4c4544-0042-3010-8052-b4c04f4e4432"},
			want:    [][2]string{{"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:0a:0b:0c"}, {"-uuid", "4c4c4544-0042-3010-8052-b4c04f4e4432"}},
			notWant: [][2]string{{"-device", "romfile"}},
		},
		{
			name: "sata disk and smbios",
			m:    lab.Machine{Firmware: lab.UEFI, SATA: true, MAC: "52:54:00:01:02:03", SMBIOS: []string{"type=1,manufacturer=Dell Inc.,product=OptiPlex 7090"}, NoReboot: true},
			want: [][2]string{{"-device", "ide-hd,drive=d0,bus=ide.0,bootindex=1"}, {"-smbios", "product=OptiPlex 7090"},
				{"-device", "romfile=/usr/lib/ipxe/qemu/efi-virtio.rom,mac=52:54:00:01:02:03"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := tt.m
			m.Disk, m.DiskSize = filepath.Join(dir, "disk.img"), 1<<30
			m.Vars = filepath.Join(dir, "vars.fd")
			m.Net = lab.UserNet("http://10.0.2.2:7282/boot.ipxe")
			if m.ISO != "" {
				m.ISO = filepath.Join(dir, m.ISO)
				os.WriteFile(m.ISO, []byte("iso"), 0o644)
			}
			if err := m.Prepare(); err != nil {
				t.Fatal(err)
			}
			args := m.Args()
			for _, w := range tt.want {
				if !hasArg(args, w[0], w[1]) {
					t.Errorf("no %s …%s… in %q", w[0], w[1], args)
				}
			}
			for _, w := range tt.notWant {
				if hasArg(args, w[0], w[1]) {
					t.Errorf("unexpected %s …%s… in %q", w[0], w[1], args)
				}
			}
			if tt.m.NoReboot != slices.Contains(args, "-no-reboot") {
				t.Errorf("-no-reboot: want %v in %q", tt.m.NoReboot, args)
			}
		})
	}
}

// TestPrepare: a missing disk is created sparse at the size asked; an
// existing disk and UEFI variable store are kept (a deployed OS and its
// boot entries survive a restart); bad combinations are refused.
func TestPrepare(t *testing.T) {
	needFirmware(t)
	dir := t.TempDir()
	m := lab.Machine{Firmware: lab.UEFI, Disk: filepath.Join(dir, "d.img"), DiskSize: 64 << 30,
		Vars: filepath.Join(dir, "v.fd"), Net: lab.UserNet("http://192.0.2.1:7282/boot.ipxe")}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(m.Disk)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 64<<30 {
		t.Errorf("disk size %d, want %d", fi.Size(), int64(64<<30))
	}
	tmpl, _ := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if got, _ := os.ReadFile(m.Vars); !bytes.Equal(got, tmpl) {
		t.Error("the variable store is not a copy of OVMF's template")
	}
	// A deployed machine: its disk and variables must not be reset.
	os.WriteFile(m.Disk, []byte("deployed"), 0o644)
	os.WriteFile(m.Vars, []byte("boot entries"), 0o644)
	m2 := m
	if err := m2.Prepare(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(m.Disk); string(b) != "deployed" {
		t.Errorf("Prepare rewrote an existing disk: %q", b)
	}
	if b, _ := os.ReadFile(m.Vars); string(b) != "boot entries" {
		t.Errorf("Prepare rewrote existing UEFI variables: %q", b)
	}

	for _, tt := range []struct {
		name string
		edit func(m *lab.Machine)
		want string
	}{
		{"secure boot on bios", func(m *lab.Machine) { m.Firmware, m.SecureBoot = lab.BIOS, true }, "Secure Boot is for UEFI"},
		{"no rom on bios", func(m *lab.Machine) { m.Firmware, m.NoOptionROM = lab.BIOS, true }, "SeaBIOS has no network driver"},
		{"no network", func(m *lab.Machine) { m.Net = "" }, "no network"},
		{"new disk without size", func(m *lab.Machine) { m.Disk, m.DiskSize = filepath.Join(dir, "new.img"), 0 }, "no size was given"},
		{"missing iso", func(m *lab.Machine) { m.ISO = filepath.Join(dir, "none.iso") }, "none.iso"},
		{"uefi without vars", func(m *lab.Machine) { m.Vars = "" }, "variable store"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := m
			tt.edit(&bad)
			err := bad.Prepare()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Prepare() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new.img")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused machine left a disk behind: %v", err)
	}
}

func TestCheckReachable(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"http://10.0.2.2:7282", true},
		{"https://imprint.example.org:7281", true},
		{"http://192.168.1.5:7282", true},
		{"http://127.0.0.1:7282", false},
		{"https://localhost:7281", false},
		{"http://[::1]:7282", false},
		{"http://0.0.0.0:7282", false},
		{"not a url", false},
	} {
		err := lab.CheckReachable("boot URL", tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckReachable(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestIdentity(t *testing.T) {
	mac1, uuid1 := lab.Identity("lab1")
	mac1again, uuid1again := lab.Identity("lab1")
	mac2, uuid2 := lab.Identity("lab2")
	if mac1 != mac1again || uuid1 != uuid1again {
		t.Errorf("one name, two identities: %s %s / %s %s", mac1, uuid1, mac1again, uuid1again)
	}
	if mac1 == mac2 || uuid1 == uuid2 {
		t.Errorf("two names, one identity: %s %s / %s %s", mac1, uuid1, mac2, uuid2)
	}
	if !regexp.MustCompile(`^52:54:00(:[0-9a-f]{2}){3}$`).MatchString(mac1) {
		t.Errorf("MAC %q is not a QEMU (52:54:00) address", mac1)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(uuid1) {
		t.Errorf("UUID %q is not an RFC 4122 version 4 UUID", uuid1)
	}
}

func TestParseFirmware(t *testing.T) {
	for in, want := range map[string]lab.Firmware{"uefi": lab.UEFI, "UEFI": lab.UEFI, "bios": lab.BIOS} {
		if got, err := lab.ParseFirmware(in); err != nil || got != want {
			t.Errorf("ParseFirmware(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := lab.ParseFirmware("coreboot"); err == nil {
		t.Error("ParseFirmware accepted coreboot")
	}
}
