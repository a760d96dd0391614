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
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/disk"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/testenv"
	"github.com/imprint-osd/imprint/internal/winboot"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

// needWindowsTools skips (fails under make test) unless the test can mount
// NTFS through a loop device (root, losetup, ntfs-3g) and check with the
// independent tools.
func needWindowsTools(t *testing.T) {
	t.Helper()
	testenv.Root(t, "to attach a loop device and mount NTFS")
	need(t, "losetup", "ntfs-3g", "ntfscat", "ntfssecaudit", "mkntfs", "wimlib-imagex", "sfdisk", "mtype")
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
	m := newClient(t, &contentServer{name: "install.wim", data: wim, winAgent: []byte(winAgentBytes)})
	d := &disksteps.Deps{Content: m, TempDir: dir, EFIVarsDir: filepath.Join(dir, "efivars"),
		Disks: func() ([]disksteps.DiskInfo, error) {
			return []disksteps.DiskInfo{{Path: diskImg, Size: 3 << 30, Bus: "nvme"}}, nil
		},
		// As the agent sets it: the real download and staging.
		StageWindows: func(ctx context.Context, root string) (string, error) {
			return agent.StageWindowsAgent(ctx, root, m, []byte(testCAPEM), nil)
		}}
	vars := sequence.NewVars()
	vars.SetInternal("IsUEFI", "True")
	ctx := context.Background()
	env, log := newEnv(vars, map[string]string{"Layout": "Windows", "PartitionStyle": "GPT"})
	if _, err := (disksteps.Format{D: d}).Run(ctx, env); err != nil {
		t.Fatalf("Format disk: %v\n%s", err, log)
	}
	env, log = newEnv(vars, map[string]string{"ImageIndex": "1", "ContinueMethod": "3"})
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
	vars.SetInternal("OSDComputerName", "PC-0042")
	vars.SetInternal("TimeZone", "W. Europe Standard Time")
	env, log := newEnv(vars, map[string]string{"AdminPassword": adminSecret})
	if _, err := (disksteps.EnableAdmin{}).Run(context.Background(), env); err != nil {
		t.Fatalf("Enable Administrator account: %v", err)
	}
	// Inject driver pack, the pack stored as a WIM in the content cache.
	cache := filepath.Join(t.TempDir(), "drvitem", "3")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	packWIM := filepath.Join(cache, "pack.wim")
	if out, err := exec.Command("wimlib-imagex", "capture", "../../windrivers/testdata/pack", packWIM, "drivers").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
	}
	env, log = newEnv(vars, map[string]string{})
	env.Content["DriverPack"] = packWIM
	if _, err := (disksteps.InjectDriverPack{D: d}).Run(context.Background(), env); err != nil {
		t.Fatalf("Inject driver pack: %v\n%s", err, log)
	}
	if !strings.Contains(log.String(), "Boot-critical storage driver vstor") {
		t.Errorf("Inject driver pack log:\n%s", log)
	}

	// Without the agent to stage nothing could continue the run in Windows.
	noAgent := *d
	noAgent.StageWindows = nil
	env, _ = newEnv(vars, map[string]string{})
	if _, err := (disksteps.PrepareOS{D: &noAgent}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "no Windows agent to stage") {
		t.Errorf("Prepare operating system without the agent: err = %v", err)
	}
	env, log = newEnv(vars, map[string]string{})
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

	// The answer file and the continuation, read from NTFS with ntfs-3g's
	// own tools.
	win, err := disksteps.ResolvePartition(vars.Value("OSPartition"))
	if err != nil {
		t.Fatal(err)
	}
	xml := string(ntfsFile(t, diskImg, win.Start, win.Size, "Windows/Panther/unattend.xml"))
	for _, want := range []string{"<ComputerName>PC-0042</ComputerName>", "<TimeZone>W. Europe Standard Time</TimeZone>",
		"<UILanguage>de-DE</UILanguage>", "<Username>Administrator</Username>", "<AdministratorPassword>"} {
		if !strings.Contains(xml, want) {
			t.Errorf("unattend.xml lacks %s:\n%s", want, xml)
		}
	}
	if sc := string(ntfsFile(t, diskImg, win.Start, win.Size, "Windows/Setup/Scripts/SetupComplete.cmd")); !strings.Contains(sc, `del /f /q "%WINDIR%\Panther\unattend.xml"`) {
		t.Errorf("SetupComplete.cmd:\n%s", sc)
	}
	sw := filepath.Join(t.TempDir(), "SOFTWARE")
	if err := os.WriteFile(sw, ntfsFile(t, diskImg, win.Start, win.Size, "Windows/System32/config/SOFTWARE"), 0o644); err != nil {
		t.Fatal(err)
	}
	swDump := hivextest.Dump(t, sw)
	if v := swDump[`Microsoft\Windows\CurrentVersion\RunOnce`]["ImprintResume"]; !strings.Contains(v, "imprint-agent.exe") {
		t.Errorf("RunOnce ImprintResume = %q", v)
	}
	if v := swDump[`Microsoft\Windows\CurrentVersion`]["DevicePath"]; v != `expand:%SystemRoot%\inf;%SystemRoot%\Imprint\Drivers` {
		t.Errorf("DevicePath = %q", v)
	}
	sysHive := filepath.Join(t.TempDir(), "SYSTEM")
	if err := os.WriteFile(sysHive, ntfsFile(t, diskImg, win.Start, win.Size, "Windows/System32/config/SYSTEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := hivextest.Dump(t, sysHive)[`ControlSet001\Services\vstor`]; v["Start"] != "int32:0" || v["ImagePath"] != `expand:system32\drivers\vstor.sys` {
		t.Errorf("Services\\vstor = %v", v)
	}
	if b := ntfsFile(t, diskImg, win.Start, win.Size, "Windows/System32/drivers/vstor.sys"); string(b) != "STORAGE DRIVER BINARY" {
		t.Errorf("vstor.sys = %q", b)
	}
	if b := ntfsFile(t, diskImg, win.Start, win.Size, "Windows/Imprint/Drivers/drvitem_3/net/vnet.inf"); !bytes.Contains(b, []byte("Class     = Net")) {
		t.Errorf("staged vnet.inf = %q", b)
	}
	// The continuation: the agent and the CA at the contract paths, the
	// state directory for SYSTEM and Administrators only.
	if b := ntfsFile(t, diskImg, win.Start, win.Size, agent.WindowsAgentPath); string(b) != winAgentBytes {
		t.Errorf("staged agent = %q", b)
	}
	if b := ntfsFile(t, diskImg, win.Start, win.Size, agent.WindowsStateDir+"/"+agent.WindowsCAFile); string(b) != testCAPEM {
		t.Errorf("staged CA = %q", b)
	}
	wantPrivate(t, diskImg, win, agent.WindowsStateDir, true)
	wantPrivate(t, diskImg, win, agent.WindowsStateDir+"/"+agent.WindowsCAFile, false)

	// The reboot stages the run (session and journal, not the secrets)
	// into it, on the NTFS partition mounted as the boot image does.
	state := t.TempDir()
	const token = "Tok-Canary-4242"
	if err := os.WriteFile(filepath.Join(state, "agent.json"), []byte(`{"server":"https://s","token":"`+token+
		`","runId":"r1","taskSequenceId":"ts","versionNo":1,"name":"n","bootImage":true,"secrets":[{"name":"AdminPassword","value":"`+
		adminSecret+`","secret":true}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "journal.json"), []byte(`{"format":1,"completed":[{"id":"prep"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (agent.BootImageResume{TempDir: t.TempDir()}).InstallVars(context.Background(), vars, "", state); err != nil {
		t.Fatalf("stage the run: %v", err)
	}
	if b := ntfsFile(t, diskImg, win.Start, win.Size, agent.WindowsStateDir+"/agent.json"); !bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(`"bootImage"`)) {
		t.Errorf("staged agent.json:\n%s", b)
	}
	if b := ntfsFile(t, diskImg, win.Start, win.Size, agent.WindowsStateDir+"/journal.json"); !bytes.Contains(b, []byte(`"prep"`)) {
		t.Errorf("staged journal.json:\n%s", b)
	}
	wantPrivate(t, diskImg, win, agent.WindowsStateDir+"/agent.json", false)
	wantPrivate(t, diskImg, win, agent.WindowsStateDir+"/journal.json", false)

	// The password is nowhere in clear: not in the log, not on the disk.
	if strings.Contains(log.String(), adminSecret) {
		t.Error("the log holds the Administrator password")
	}
	if at := onDisk(t, diskImg, adminSecret); at >= 0 {
		t.Errorf("the Administrator password is on the disk in clear near byte %d", at)
	}
	// The scan works: the computer name, which is no secret, is found.
	if onDisk(t, diskImg, "PC-0042") < 0 {
		t.Error("the disk scan does not find the computer name written in unattend.xml")
	}
}

const adminSecret = "Adm1n-Secret-7781"

const (
	winAgentBytes = "MZ\x90\x00 imprint-agent.exe for windows/amd64"
	testCAPEM     = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
)

// wantPrivate checks with ntfssecaudit, reading the partition's $Secure
// through a loop device, that p (slash-separated, from the partition's
// root) has the protected SYSTEM and Administrators descriptor.
func wantPrivate(t *testing.T, diskImg string, win disk.Partition, p string, dir bool) {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", "--offset", fmt.Sprint(win.Start), "--sizelimit", fmt.Sprint(win.Size), diskImg).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", dev).Run()
	b, err := exec.Command("ntfssecaudit", "-vv", dev, "/"+p).CombinedOutput()
	if err != nil {
		t.Fatalf("ntfssecaudit %s: %v\n%s", p, err, b)
	}
	flags := map[bool]string{true: "0x3", false: "0x0"}[dir]
	for _, want := range []string{"DACL cannot be modified by inheritable ACEs", "O:dec S-1-5-18", "ACE cnt  2", "flags    " + flags + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: ntfssecaudit does not say %q:\n%s", p, want, b)
		}
	}
	var sids []string
	for _, m := range regexp.MustCompile(`(?m)^\s+dec (S-[0-9-]+)$`).FindAllStringSubmatch(string(b), -1) {
		sids = append(sids, m[1])
	}
	if want := []string{"S-1-5-18", "S-1-5-32-544"}; !slices.Equal(sids, want) {
		t.Errorf("%s: ACEs for %v, want %v", p, sids, want)
	}
}

// ntfsFile reads a file from the NTFS partition at [start, start+size) of
// the disk image with ntfscat, through a loop device.
func ntfsFile(t *testing.T, diskImg string, start, size int64, p string) []byte {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", "--offset", fmt.Sprint(start), "--sizelimit", fmt.Sprint(size), diskImg).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", dev).Run()
	b, err := exec.Command("ntfscat", dev, p).Output()
	if err != nil {
		t.Fatalf("ntfscat %s: %v", p, err)
	}
	return b
}

// onDisk scans the data of the disk image for s in ASCII and UTF-16LE and
// returns where it is, -1 when nowhere.
func onDisk(t *testing.T, diskImg, s string) int64 {
	t.Helper()
	f, err := os.Open(diskImg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u16 := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		u16 = append(u16, c, 0)
	}
	buf := make([]byte, 4<<20)
	fi, _ := f.Stat()
	// Only the data extents: the image is sparse.
	for pos := int64(0); pos < fi.Size(); {
		data, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if err != nil {
			return -1 // no data after pos
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		for off := data; off < hole; {
			n, _ := f.ReadAt(buf[:min(int64(len(buf)), hole-off)], off)
			if n == 0 {
				break
			}
			if bytes.Contains(buf[:n], []byte(s)) || bytes.Contains(buf[:n], u16) {
				return off
			}
			if off+int64(n) >= hole {
				break
			}
			off += int64(n) - int64(len(u16)) // overlap so a match across chunks is seen
		}
		pos = hole
	}
	return -1
}

func TestInjectDriverPackRefusesBadInput(t *testing.T) {
	d := &disksteps.Deps{TempDir: t.TempDir()}
	vars := sequence.NewVars()
	env, _ := newEnv(vars, nil)
	if _, err := (disksteps.InjectDriverPack{D: d}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "DriverPack is empty") {
		t.Errorf("no pack: err = %v", err)
	}
	env.Content["DriverPack"] = t.TempDir()
	vars.SetInternal("OSDiskLayout", "linux-uefi")
	if _, err := (disksteps.InjectDriverPack{D: d}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "needs a Windows target") {
		t.Errorf("Linux target: err = %v", err)
	}
	vars.SetInternal("OSDiskLayout", "windows-uefi")
	zip := filepath.Join(t.TempDir(), "drivers.zip")
	_ = os.WriteFile(zip, []byte("PK"), 0o644)
	env.Content["DriverPack"] = zip
	if _, err := (disksteps.InjectDriverPack{D: d}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "not a WIM") {
		t.Errorf("zip: err = %v", err)
	}
}
