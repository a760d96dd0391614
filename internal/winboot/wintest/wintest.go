// Package wintest builds a synthetic Windows image for tests: the boot
// layout of an install.wim (Windows\Boot\EFI with bootmgfw.efi, memtest,
// a locale directory, fonts) and SYSTEM and SOFTWARE hives written by
// hivex, an implementation independent of internal/hive.
package wintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imprint-osd/imprint/internal/hive"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// BootMgr is the content of the tree's Windows\Boot\EFI\bootmgfw.efi.
const BootMgr = "BOOTMGFW synthetic boot manager"

// Product is the tree's ProductName.
const Product = "Windows 11 Enterprise"

// Tree writes the synthetic Windows volume into a new directory.
func Tree(t testing.TB) string {
	t.Helper()
	hivextest.Need(t)
	root := t.TempDir()
	files := map[string]string{
		"Windows/Boot/EFI/bootmgfw.efi":           BootMgr,
		"Windows/Boot/EFI/memtest.efi":            "MEMTEST",
		"Windows/Boot/EFI/en-US/bootmgfw.efi.mui": "MUI",
		"Windows/Boot/Fonts/wgl4_boot.ttf":        "FONT",
		"Windows/Boot/PCAT/bootmgr":               "BIOS ONLY",
		"Windows/System32/drivers/disk.sys":       "DISK",
		"Windows/Panther/placeholder.txt":         "",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base, err := hive.New("ROOT", 0).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(t.TempDir(), "base")
	if err := os.WriteFile(bp, base, 0o644); err != nil {
		t.Fatal(err)
	}
	software := hivextest.Shell(t, bp, `add Microsoft
cd Microsoft
add Windows NT
add Windows
cd Windows NT
add CurrentVersion
cd CurrentVersion
setval 2
ProductName
string:`+Product+`
CurrentBuild
string:22631
cd \Microsoft\Windows
add CurrentVersion
cd CurrentVersion
setval 2
DevicePath
expandstring:%SystemRoot%\inf
ProgramFilesDir
string:C:\Program Files`)
	system := hivextest.Shell(t, bp, `add Select
cd Select
setval 2
Current
dword:0x00000001
Default
dword:0x00000001
cd \
add ControlSet001
cd ControlSet001
add Control
add Services
cd Services
add disk
cd disk
setval 5
Type
dword:0x00000001
Start
dword:0x00000000
ErrorControl
dword:0x00000001
ImagePath
expandstring:System32\drivers\disk.sys
Group
string:SCSI Class
cd \
add DriverDatabase
cd DriverDatabase
add DriverInfFiles
add DeviceIds
add DriverPackages`)
	cfg := filepath.Join(root, "Windows/System32/config")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"SOFTWARE": software, "SYSTEM": system} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// WIM captures Tree into a WIM file with wimlib-imagex and returns its path.
func WIM(t testing.TB) string {
	t.Helper()
	testenv.LookPath(t, "wimlib-imagex")
	tree := Tree(t)
	out := filepath.Join(t.TempDir(), "install.wim")
	if b, err := exec.Command("wimlib-imagex", "capture", tree, out, "Windows 11 Enterprise").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex capture: %v\n%s", err, b)
	}
	return out
}
