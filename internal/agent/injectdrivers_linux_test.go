package agent_test

// Inject drivers against the real server: GET /v1/driverpacks lists what
// the run may use, the step picks by DeployR's matching rule, downloads the
// pack through the session and injects it into an offline Windows tree.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/testenv"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

const driversTSID = "7e111111-2222-3333-4444-555555555555"

// driverPackTar is the storage driver of windrivers' test pack as a
// Folder version's tar stream.
func driverPackTar(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"storage/vstor.inf", "storage/VSTOR.SYS"} {
		b, err := os.ReadFile(filepath.Join("..", "windrivers", "testdata", "pack", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestInjectDriversAgainstRealServer(t *testing.T) {
	hivextest.Need(t)
	testenv.LookPath(t, "sgdisk")
	ctx := context.Background()
	rs := startRealServer(t, nil)
	rs.setPasscode(t)

	// Packs: the matching Active one, an In_Development one that matches
	// too (Active versions come first), another model, a Deprecated
	// version and an application with the same make and model (neither
	// is listed).
	add := func(name string, purpose deploy.Purpose, versions ...deploy.ContentVersion) string {
		item, err := rs.admin.CreateContentItem(ctx, deploy.ContentItem{Name: name, Type: deploy.ContentFolder, Purpose: purpose})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			if _, err := rs.admin.AddContentVersion(ctx, item.ID, v, driverPackTar(t), "application/x-tar"); err != nil {
				t.Fatal(err)
			}
		}
		return item.ID
	}
	ver := func(st deploy.Status, mk, md string) deploy.ContentVersion {
		return deploy.ContentVersion{Status: st, DriverManufacturer: deploy.StrPtr(mk), DriverModel: deploy.StrPtr(md)}
	}
	match := add("QEMU e2e drivers", deploy.PurposeDriverPack,
		ver(deploy.StatusDeprecated, "QEMU", "Imprint E2E PC"), ver(deploy.StatusActive, "qemu", "IMPRINT E2E PC"))
	dev := add("QEMU e2e drivers (testing)", deploy.PurposeDriverPack, ver(deploy.StatusInDevelopment, "QEMU", "Imprint E2E PC"))
	other := add("Dell drivers", deploy.PurposeDriverPack, ver(deploy.StatusActive, "Dell", "Latitude 7440"))
	add("Not a driver pack", deploy.PurposeApplication, ver(deploy.StatusActive, "QEMU", "Imprint E2E PC"))

	doc, err := json.Marshal(map[string]any{"id": driversTSID, "name": "Drivers", "architecture": "Any",
		"versions": []any{map[string]any{"id": "7e111111-v1", "taskSequenceId": driversTSID, "versionNo": 1, "status": "Active",
			"steps": []any{tsStep("drivers", stepdefs.TypeInjectDrivers, map[string]string{})}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rs.admin.ImportTaskSequence(ctx, bytes.NewReader(doc), client.ImportNew); err != nil {
		t.Fatalf("import task sequence: %v", err)
	}
	session := func(ts string) *client.Machine {
		m := rs.machine(t)
		if _, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: e2ePasscode, Device: client.DeviceInfo{UUID: "6a0c1d2e-0000-4000-8000-0000000d0001"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.TaskSequenceVersion(ctx, ts, 1); err != nil {
			t.Fatal(err)
		}
		return m
	}

	// A run whose sequence has no Inject drivers step sees no pack and
	// cannot download one.
	plain := session(e2eTSID)
	if packs, err := plain.DriverPacks(ctx); err != nil || len(packs) != 0 {
		t.Errorf("a sequence without Inject drivers lists %+v (%v), want none", packs, err)
	}
	if _, err := plain.ContentInfo(ctx, match, 2); !deploy.IsNotFound(err) {
		t.Errorf("a sequence without Inject drivers reads a driver pack: %v, want not found", err)
	}

	m := session(driversTSID)
	packs, err := m.DriverPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, p := range packs {
		listed = append(listed, p.Ref().String()+" "+string(p.Status)+" "+p.Manufacturer+"/"+p.Model)
	}
	want := []string{match + ":2 Active qemu/IMPRINT E2E PC", dev + ":1 In_Development QEMU/Imprint E2E PC", other + ":1 Active Dell/Latitude 7440"}
	slices.Sort(listed)
	slices.Sort(want)
	if strings.Join(listed, "\n") != strings.Join(want, "\n") {
		t.Errorf("driver packs listed:\n%s\nwant:\n%s", strings.Join(listed, "\n"), strings.Join(want, "\n"))
	}
	if _, err := m.ContentInfo(ctx, match, 1); !deploy.IsNotFound(err) {
		t.Errorf("the Deprecated version is readable: %v, want not found", err)
	}

	// The step on a GPT disk image whose Windows partition is the
	// synthetic Windows tree.
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("sgdisk", "-n", "1:0:+16M", "-t", "1:ef00", "-n", "3:0:0", "-t", "3:0700", img).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, b)
	}
	root := wintest.Tree(t)
	fetcher := &agent.Fetcher{Client: m, Dir: filepath.Join(dir, "content")}
	d := &disksteps.Deps{Content: m, Packs: m, Fetch: fetcher.Fetch, TempDir: dir,
		MountNTFS: func(context.Context, string) (string, func() error, error) {
			return root, func() error { return nil }, nil
		}}
	vars := sequence.NewVars()
	for k, v := range map[string]string{
		// gather's values for `-smbios type=1,manufacturer=Imprint QEMU Lab,product=Imprint E2E PC`:
		// only the aliases match the pack.
		"Make": "Imprint QEMU Lab", "Model": "Imprint E2E PC", "MakeAlias": "QEMU", "ModelAlias": "Imprint E2E PC", "SystemAlias": "NA",
		disksteps.VarOSDiskLayout: "windows-uefi", disksteps.VarOSPartition: img + "#3",
	} {
		vars.SetInternal(k, v)
	}
	var log bytes.Buffer
	res, err := (disksteps.InjectDrivers{D: d}).Run(ctx, &sequence.Env{Vars: vars, Log: &log})
	if err != nil {
		t.Fatalf("Inject drivers: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "matches by MAKEALIAS+MODELALIAS") || !strings.Contains(log.String(), match+":2") {
		t.Errorf("log does not name the Active pack matched by the aliases:\n%s", log.String())
	}
	if !strings.Contains(res.Output, "matched by MAKEALIAS+MODELALIAS") || !strings.Contains(res.Output, "1 boot-critical storage drivers registered") {
		t.Errorf("output %q", res.Output)
	}
	if got := vars.Value("DriverPackID"); got != match+":2" {
		t.Errorf("DriverPackID = %q, want %s:2", got, match)
	}
	infs, _ := filepath.Glob(filepath.Join(root, "Windows", "Imprint", "Drivers", "*", "storage", "vstor.inf"))
	if len(infs) != 1 {
		t.Errorf("staged INF: %v, want one", infs)
	}
	sys := hivextest.Dump(t, filepath.Join(root, "Windows", "System32", "config", "SYSTEM"))
	if got := sys[`ControlSet001\Services\vstor`]["Start"]; got != "int32:0" {
		t.Errorf("SYSTEM hive: vstor service Start = %q, want boot start (0); service key: %v", got, sys[`ControlSet001\Services\vstor`])
	}

	// No pack for this machine: the step says so and succeeds.
	vars.SetInternal("Make", "LENOVO")
	vars.SetInternal("MakeAlias", "Lenovo")
	log.Reset()
	res, err = (disksteps.InjectDrivers{D: d}).Run(ctx, &sequence.Env{Vars: vars, Log: &log})
	if err != nil || !strings.Contains(res.Output, "No driver pack matches this machine") {
		t.Errorf("no matching pack: %q, %v", res.Output, err)
	}
}
