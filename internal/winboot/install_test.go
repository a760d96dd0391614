package winboot_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/testenv"
	"github.com/imprint-osd/imprint/internal/winboot"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

// The load option's device path is the one Windows wrote (§3.9: HD node
// for partition 1 at LBA 0x800, 0x32000 sectors), built here by hand.
func TestLoadOptionGolden(t *testing.T) {
	p := winboot.GPTPartition{Number: 1, FirstLBA: 0x800, LastLBA: 0x800 + 0x32000 - 1, SectorSize: 512,
		ID: guid(t, "1581cea0-12ee-4f7d-8967-a2b73024aae2")}
	got := winboot.LoadOption("Windows Boot Manager", p, `\EFI\Microsoft\Boot\bootmgfw.efi`, nil)
	path := hex.EncodeToString([]byte(strings.Join(strings.Split(`\EFI\Microsoft\Boot\bootmgfw.efi`, ""), "\x00") + "\x00\x00\x00"))
	desc := hex.EncodeToString([]byte(strings.Join(strings.Split("Windows Boot Manager", ""), "\x00") + "\x00\x00\x00"))
	want, err := hex.DecodeString(strings.Join(strings.Fields(`
		01000000 7400`+desc+`
		04012a00 01000000 0008000000000000 0020030000000000
		a0ce8115ee127d4f8967a2b73024aae2 02 02
		04044600`+path+`
		7fff0400`), ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("load option\n got %x\nwant %x", got, want)
	}
	// 0x74 = 42 (HD) + 70 (file path node: 4 + 33 UTF-16 units) + 4 (end).
	if len(path)/2 != 66 {
		t.Fatalf("path is %d bytes", len(path)/2)
	}
}

func TestAddBootEntry(t *testing.T) {
	dir := t.TempDir()
	v := winboot.EFIVarFS{Dir: dir}
	other := []byte("another OS")
	if err := v.Set("Boot0000", other); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("BootOrder", []byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	opt := []byte("our load option")
	n, err := winboot.AddBootEntry(v, opt)
	if err != nil || n != 1 {
		t.Fatalf("AddBootEntry = %d, %v", n, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "Boot0001-"+winboot.EFIGlobal))
	if err != nil || !bytes.Equal(raw, append([]byte{7, 0, 0, 0}, opt...)) {
		t.Errorf("Boot0001 file = %q, %v", raw, err)
	}
	order, _ := v.Get("BootOrder")
	if !bytes.Equal(order, []byte{1, 0, 0, 0}) {
		t.Errorf("BootOrder = %x, want 0100 0000", order)
	}
	// Again: the same entry is reused and the order is unchanged.
	if n, err := winboot.AddBootEntry(v, opt); err != nil || n != 1 {
		t.Errorf("second AddBootEntry = %d, %v", n, err)
	}
	names, _ := v.Names()
	if len(names) != 3 {
		t.Errorf("variables after two adds: %v", names)
	}
	if order, _ := v.Get("BootOrder"); !bytes.Equal(order, []byte{1, 0, 0, 0}) {
		t.Errorf("BootOrder after the second add = %x", order)
	}
}

// gptImage makes a disk image with sgdisk: an ESP and a Windows partition
// with known GUIDs.
func gptImage(t *testing.T) string {
	t.Helper()
	testenv.LookPath(t, "sgdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sgdisk", "-U", "addc0d43-17a9-4e26-a16c-dc71e67393f7",
		"-n", "1:2048:+16M", "-t", "1:ef00", "-u", "1:11111111-2222-3333-4444-555555555555",
		"-n", "2:0:+16M", "-t", "2:0700", "-u", "2:1581cea0-12ee-4f7d-8967-a2b73024aae2", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	return img
}

func TestReadGPT(t *testing.T) {
	img := gptImage(t)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := winboot.ReadGPT(f)
	if err != nil {
		t.Fatal(err)
	}
	if g.DiskID.String() != "{addc0d43-17a9-4e26-a16c-dc71e67393f7}" || len(g.Partitions) != 2 {
		t.Fatalf("disk %s, %d partitions", g.DiskID, len(g.Partitions))
	}
	p2, _ := g.Partition(2)
	if p2.ID.String() != "{1581cea0-12ee-4f7d-8967-a2b73024aae2}" || p2.FirstLBA != 2048+16*2048 {
		t.Errorf("partition 2: %s from %d", p2.ID, p2.FirstLBA)
	}
	if _, err := winboot.ReadGPT(bytes.NewReader(make([]byte, 8192))); err == nil {
		t.Error("an empty disk has no GPT, but ReadGPT found one")
	}
}

func TestInstall(t *testing.T) {
	hivextest.Need(t)
	img := gptImage(t)
	f, _ := os.Open(img)
	g, err := winboot.ReadGPT(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	win := wintest.Tree(t)
	espDir := t.TempDir()
	res, err := winboot.Install(context.Background(), winboot.DirESP(espDir), winboot.InstallOptions{
		WinRoot: win, GPT: g, Windows: 2, ESP: 1, Locale: "en-GB"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/EFI/Boot/bootx64.efi", "/EFI/Microsoft/Boot/BCD", "/EFI/Microsoft/Boot/Fonts/wgl4_boot.ttf",
		"/EFI/Microsoft/Boot/bootmgfw.efi", "/EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui", "/EFI/Microsoft/Boot/memtest.efi"}
	var got []string
	_ = filepath.WalkDir(espDir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(espDir, p)
			got = append(got, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ESP files (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(espDir, "EFI/Boot/bootx64.efi")); string(b) != wintest.BootMgr {
		t.Errorf("fallback loader holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(espDir, "EFI/Microsoft/Recovery")); err != nil {
		t.Errorf("no Recovery directory: %v", err)
	}
	if res.Description != wintest.Product {
		t.Errorf("description %q (from the SOFTWARE hive)", res.Description)
	}
	// The BCD through hivex: the loader's devices carry the GUIDs sgdisk
	// reports for the disk and the Windows partition.
	dump := hivextest.Dump(t, filepath.Join(espDir, "EFI/Microsoft/Boot/BCD"))
	info, err := exec.Command("sgdisk", "-i", "2", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Partition unique GUID: ([0-9A-F-]+)`).FindSubmatch(info)
	if m == nil {
		t.Fatalf("sgdisk -i: %s", info)
	}
	dev := base64Decode(t, dump[winboot.ElementPath(res.Loader, 0x21000001)]["Element"])
	if len(dev) != 88 || !bytes.Equal(dev[0x20:0x30], guidBytes(t, string(m[1]))) || !bytes.Equal(dev[0x38:0x48], guidBytes(t, "ADDC0D43-17A9-4E26-A16C-DC71E67393F7")) {
		t.Errorf("loader OSDevice %x does not name partition %s", dev, m[1])
	}
	if l := dump[winboot.ElementPath(res.Loader, 0x12000005)]["Element"]; l != "string:en-GB" {
		t.Errorf("locale %q", l)
	}
}

func base64Decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "binary:"))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

func guidBytes(t *testing.T, s string) []byte {
	t.Helper()
	g := guid(t, s)
	return g[:]
}

func TestInstallRefusesNonWindows(t *testing.T) {
	img := gptImage(t)
	f, _ := os.Open(img)
	g, _ := winboot.ReadGPT(f)
	f.Close()
	_, err := winboot.Install(context.Background(), winboot.DirESP(t.TempDir()), winboot.InstallOptions{WinRoot: t.TempDir(), GPT: g, Windows: 2, ESP: 1})
	if err == nil || !strings.Contains(err.Error(), "no Windows\\Boot\\EFI") {
		t.Errorf("err = %v", err)
	}
	_, err = winboot.Install(context.Background(), winboot.DirESP(t.TempDir()), winboot.InstallOptions{WinRoot: wintest.Tree(t), GPT: g, Windows: 5, ESP: 1})
	if err == nil || !strings.Contains(err.Error(), "no partition 5") {
		t.Errorf("err = %v", err)
	}
}
