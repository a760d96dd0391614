package disksteps_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/winboot"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

// needWindowsTools skips unless the test can mount NTFS through a loop
// device (root, losetup, ntfs-3g) and check with the independent tools.
func needWindowsTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device and mount NTFS")
	}
	need(t, "losetup", "ntfs-3g", "mkntfs", "wimlib-imagex", "sfdisk", "mtype", "mcopy")
	hivextest.Need(t)
}

// windowsDisk runs Format disk (Windows, GPT) and Apply operating system
// with the synthetic install.wim on a disk image file.
func windowsDisk(t *testing.T) (*disksteps.Deps, *sequence.Vars, string) {
	t.Helper()
	dir := t.TempDir()
	diskImg := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(diskImg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(diskImg, 3<<30); err != nil {
		t.Fatal(err)
	}
	wim, err := os.ReadFile(wintest.WIM(t))
	if err != nil {
		t.Fatal(err)
	}
	m := newClient(t, &contentServer{name: "install.wim", data: wim})
	d := &disksteps.Deps{Content: m, TempDir: dir, EFIVarsDir: filepath.Join(dir, "efivars"),
		Disks: func() ([]disksteps.DiskInfo, error) {
			return []disksteps.DiskInfo{{Path: diskImg, Size: 3 << 30, Bus: "nvme"}}, nil
		}}
	vars := sequence.NewVars()
	vars.SetInternal("IsUEFI", "True")
	ctx := context.Background()
	env, log := newEnv(vars, map[string]string{"Layout": "Windows", "PartitionStyle": "GPT"})
	if _, err := (disksteps.Format{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Format disk: %v\n%s", err, log)
	}
	env, log = newEnv(vars, map[string]string{"ImageIndex": "1"})
	env.Refs["Image"] = deploy.Ref{ID: "img", VersionNo: 1}
	if _, err := (disksteps.ApplyOS{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Apply operating system: %v\n%s", err, log)
	}
	return d, vars, diskImg
}

// espFile reads a file from the image's ESP with mtools.
func espFile(t *testing.T, diskImg string, espStart int64, p string) []byte {
	t.Helper()
	out, err := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", diskImg, espStart), "::"+p).Output()
	if err != nil {
		t.Fatalf("mtype %s: %v", p, err)
	}
	return out
}

func TestWindowsUEFIPrepareOnImageFile(t *testing.T) {
	needWindowsTools(t)
	d, vars, diskImg := windowsDisk(t)
	if err := os.MkdirAll(d.EFIVarsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	vars.SetInternal("UILanguage", "de-DE")
	env, log := newEnv(vars, map[string]string{})
	if _, err := (disksteps.PrepareOS{D: d}).Run(context.Background(), env); err != nil {
		t.Fatalf("Prepare operating system: %v\n%s", err, log)
	}
	esp, err := disksteps.ResolvePartition(vars.Value("ESPPartition"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/EFI/Microsoft/Boot/bootmgfw.efi", "/EFI/Boot/bootx64.efi"} {
		if got := espFile(t, diskImg, esp.Start, p); string(got) != wintest.BootMgr {
			t.Errorf("%s holds %q", p, got)
		}
	}
	if got := espFile(t, diskImg, esp.Start, "/EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui"); string(got) != "MUI" {
		t.Errorf("locale file holds %q", got)
	}
	bcd := filepath.Join(t.TempDir(), "BCD")
	if err := os.WriteFile(bcd, espFile(t, diskImg, esp.Start, "/EFI/Microsoft/Boot/BCD"), 0o644); err != nil {
		t.Fatal(err)
	}
	dump := hivextest.Dump(t, bcd)

	// The disk's and the Windows partition's GUIDs as sfdisk reports them.
	out, err := exec.Command("sfdisk", "--json", diskImg).Output()
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		PartitionTable struct {
			ID         string `json:"id"`
			Partitions []struct {
				UUID string `json:"uuid"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	diskID, _ := winboot.ParseGUID(table.PartitionTable.ID)
	winID, _ := winboot.ParseGUID(table.PartitionTable.Partitions[2].UUID)
	espID, _ := winboot.ParseGUID(table.PartitionTable.Partitions[0].UUID)
	def := strings.TrimPrefix(dump[winboot.ElementPath(winboot.BootMgr, winboot.ElemDefaultObject)]["Element"], "string:")
	loader, err := winboot.ParseGUID(def)
	if err != nil {
		t.Fatalf("{bootmgr} default %q: %v", def, err)
	}
	for _, id := range []uint32{winboot.ElemApplicationDevice, winboot.ElemOSDevice} {
		got := dump[winboot.ElementPath(loader, id)]["Element"]
		want := "binary:" + base64.StdEncoding.EncodeToString(winboot.DeviceGPT(diskID, winID))
		if got != want {
			t.Errorf("loader element %08x = %s, want the Windows partition %s on disk %s", id, got, winID, diskID)
		}
	}
	if got := dump[winboot.ElementPath(winboot.BootMgr, winboot.ElemApplicationDevice)]["Element"]; got != "binary:"+base64.StdEncoding.EncodeToString(winboot.DeviceGPT(diskID, espID)) {
		t.Errorf("{bootmgr} device %s does not name the ESP %s", got, espID)
	}
	if got := dump[winboot.ElementPath(loader, winboot.ElemDescription)]["Element"]; got != "string:"+wintest.Product {
		t.Errorf("loader description %s", got)
	}
	if got := dump[winboot.ElementPath(loader, winboot.ElemPreferredLocale)]["Element"]; got != "string:de-DE" {
		t.Errorf("loader locale %s", got)
	}
	// The firmware entry went to the (directory standing in for) efivars.
	order, err := os.ReadFile(filepath.Join(d.EFIVarsDir, "BootOrder-"+winboot.EFIGlobal))
	if err != nil || !bytes.Equal(order, []byte{7, 0, 0, 0, 0, 0}) {
		t.Errorf("BootOrder = %x, %v", order, err)
	}
	entry, err := os.ReadFile(filepath.Join(d.EFIVarsDir, "Boot0000-"+winboot.EFIGlobal))
	if err != nil || !bytes.Contains(entry, espID[:]) {
		t.Errorf("Boot0000 does not name the ESP %s: %x %v", espID, entry, err)
	}
	if !strings.Contains(log.String(), "Firmware boot entry Boot0000") {
		t.Errorf("log:\n%s", log)
	}
}
