package windrivers_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/hive"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/winboot"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
	"github.com/imprint-osd/imprint/internal/windrivers"
)

func TestInjectIntoOfflineImage(t *testing.T) {
	root := wintest.Tree(t)
	var logged []string
	o := windrivers.Options{Root: root, Pack: "testdata/pack", Name: "Example-Model", Modified: 0x01da000000000000,
		Log: func(f string, a ...any) { logged = append(logged, f) }}
	rep, err := windrivers.Inject(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.INFs != 2 || len(rep.BootDrivers) != 1 || rep.BootDrivers[0].Service != "vstor" {
		t.Fatalf("report %+v", rep)
	}
	// Staged.
	staged := filepath.Join(root, "Windows", "Imprint", "Drivers", "Example-Model")
	for _, f := range []string{"storage/vstor.inf", "storage/VSTOR.SYS", "net/vnet.inf"} {
		if _, err := os.Stat(filepath.Join(staged, f)); err != nil {
			t.Errorf("not staged: %v", err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "Windows", "System32", "drivers", "vstor.sys")); err != nil || string(b) != "STORAGE DRIVER BINARY" {
		t.Errorf("vstor.sys in System32\\drivers: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root, "Windows", "System32", "drivers", "vnet.sys")); err == nil {
		t.Error("the NIC driver was copied as if it were boot-critical")
	}

	sw := hivextest.Dump(t, filepath.Join(root, "Windows", "System32", "config", "SOFTWARE"))
	if got := sw[`Microsoft\Windows\CurrentVersion`]["DevicePath"]; got != `expand:%SystemRoot%\inf;%SystemRoot%\Imprint\Drivers` {
		t.Errorf("DevicePath read by hivex: %q", got)
	}
	if got := sw[`Microsoft\Windows NT\CurrentVersion`]["ProductName"]; got != "string:"+wintest.Product {
		t.Errorf("SOFTWARE lost ProductName: %q", got)
	}
	sys := hivextest.Dump(t, filepath.Join(root, "Windows", "System32", "config", "SYSTEM"))
	wantSvc := map[string]string{"Type": "int32:1", "Start": "int32:0", "ErrorControl": "int32:1",
		"ImagePath": `expand:system32\drivers\vstor.sys`, "Group": "string:SCSI Miniport"}
	if diff := cmp.Diff(wantSvc, sys[`ControlSet001\Services\vstor`]); diff != "" {
		t.Errorf("Services\\vstor read by hivex (-want +got):\n%s", diff)
	}
	if got := sys[`ControlSet001\Services\disk`]["ImagePath"]; got != `expand:System32\drivers\disk.sys` {
		t.Errorf("the image's own disk service changed: %q", got)
	}
	label := "vstor.inf_amd64_0000000000000000"
	checks := map[[2]string]string{
		{`DriverDatabase\DriverInfFiles\vstor.inf`, "@"}:                                                   "string-list:" + label + "|",
		{`DriverDatabase\DriverInfFiles\vstor.inf`, "Active"}:                                              "string:" + label,
		{`DriverDatabase\DriverInfFiles\vstor.inf`, "Configurations"}:                                      "string-list:vstor_inst|",
		{`DriverDatabase\DeviceIds\PCI\VEN_1AF4&DEV_1001`, "vstor.inf"}:                                    "binary:" + base64.StdEncoding.EncodeToString([]byte{1, 0xff, 0, 0}),
		{`DriverDatabase\DeviceIds\PCI\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01`, "vstor.inf"}:             "binary:" + base64.StdEncoding.EncodeToString([]byte{1, 0xff, 0, 0}),
		{`DriverDatabase\DriverPackages\` + label + `\Configurations\vstor_inst`, "Service"}:               "string:vstor",
		{`DriverDatabase\DriverPackages\` + label + `\Configurations\vstor_inst`, "ConfigFlags"}:           "int32:0",
		{`DriverDatabase\DriverPackages\` + label + `\Descriptors\PCI\VEN_1AF4&DEV_1001`, "Configuration"}: "string:vstor_inst",
	}
	for k, want := range checks {
		if got := sys[k[0]][k[1]]; got != want {
			t.Errorf("%s %s = %q, want %q", k[0], k[1], got, want)
		}
	}
	ver, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sys[`DriverDatabase\DriverPackages\`+label]["Version"], "binary:"))
	class, _ := winboot.ParseGUID("{4D36E97B-E325-11CE-BFC1-08002BE10318}")
	if len(ver) != 48 || string(ver[:8]) != "\x00\xff\x09\x00\x00\x00\x00\x00" || string(ver[8:24]) != string(class[:]) {
		t.Errorf("DriverPackages Version = %x", ver)
	}

	// Again: DevicePath is not extended twice, and the service that is now
	// there is left alone.
	rep, err = windrivers.Inject(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.BootDrivers) != 0 || !cmp.Equal(rep.Present, []string{"vstor"}) {
		t.Errorf("second run: %+v", rep)
	}
	sw = hivextest.Dump(t, filepath.Join(root, "Windows", "System32", "config", "SOFTWARE"))
	if got := sw[`Microsoft\Windows\CurrentVersion`]["DevicePath"]; strings.Count(got, "Imprint") != 1 {
		t.Errorf("DevicePath after two runs: %q", got)
	}
}

// Without DriverDatabase (Windows 7), the binding goes to
// CriticalDeviceDatabase.
func TestInjectCriticalDeviceDatabase(t *testing.T) {
	root := wintest.Tree(t)
	if err := winboot.EditHive(root, "SYSTEM", 0, func(h *hive.Hive) error {
		h.Root.Delete("DriverDatabase")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := windrivers.Inject(context.Background(), windrivers.Options{Root: root, Pack: "testdata/pack", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	sys := hivextest.Dump(t, filepath.Join(root, "Windows", "System32", "config", "SYSTEM"))
	k := `ControlSet001\Control\CriticalDeviceDatabase\PCI#VEN_1AF4&DEV_1001`
	if sys[k]["Service"] != "string:vstor" || sys[k]["ClassGUID"] != "string:{4D36E97B-E325-11CE-BFC1-08002BE10318}" {
		t.Errorf("%s = %v", k, sys[k])
	}
}

func TestInjectRefusesBadPacks(t *testing.T) {
	root := wintest.Tree(t)
	before, _ := os.ReadFile(filepath.Join(root, "Windows", "System32", "config", "SOFTWARE"))
	_, err := windrivers.Inject(context.Background(), windrivers.Options{Root: root, Pack: t.TempDir(), Name: "empty"})
	if err == nil || !strings.Contains(err.Error(), "no .inf file") {
		t.Errorf("empty pack: err = %v", err)
	}
	_, err = windrivers.Inject(context.Background(), windrivers.Options{Root: root, Pack: "testdata/pack", Name: `..`})
	if err == nil || !strings.Contains(err.Error(), "cannot be a folder name") {
		t.Errorf("bad name: err = %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(root, "Windows", "System32", "config", "SOFTWARE"))
	if string(before) != string(after) {
		t.Error("a refused pack changed the SOFTWARE hive")
	}
}
