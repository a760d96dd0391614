package unattend_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/unattend"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

func TestInstallOnWindowsVolume(t *testing.T) {
	root := wintest.Tree(t)
	scripts := filepath.Join(root, "Windows", "Setup", "Scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scripts, "setupcomplete.cmd"), []byte("oem.exe /quiet\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := unattend.Build(full(unattend.AutoAdminLogonOnce))
	if err != nil {
		t.Fatal(err)
	}
	written, err := unattend.Install(root, res, 0x01da000000000000)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 3 {
		t.Errorf("written %q", written)
	}
	got, err := os.ReadFile(filepath.Join(root, "Windows", "Panther", "unattend.xml"))
	if err != nil || string(got) != string(res.Unattend) {
		t.Errorf("answer file: %v", err)
	}
	sc, err := os.ReadFile(filepath.Join(scripts, "setupcomplete.cmd"))
	if err != nil || !strings.HasPrefix(string(sc), string(res.SetupComplete)) || !strings.HasSuffix(string(sc), "oem.exe /quiet\r\n") {
		t.Errorf("SetupComplete.cmd (ours first, the image's kept after it):\n%s", sc)
	}
	if ents, _ := os.ReadDir(scripts); len(ents) != 1 {
		t.Errorf("Scripts holds %d files; the existing one in another case must be reused", len(ents))
	}
	dump := hivextest.Dump(t, filepath.Join(root, "Windows", "System32", "config", "SOFTWARE"))
	if v := dump[unattend.RunOnceKey][unattend.RunOnceName]; v != "string:"+unattend.DefaultCommand {
		t.Errorf("RunOnce value read by hivex: %q", v)
	}
	if v := dump[`Microsoft\Windows NT\CurrentVersion`]["ProductName"]; v != "string:"+wintest.Product {
		t.Errorf("the rest of SOFTWARE changed: ProductName %q", v)
	}
	// Running Prepare again does not stack a second copy of our script.
	if _, err := unattend.Install(root, res, 0); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(scripts, "setupcomplete.cmd"))
	if string(again) != string(sc) {
		t.Errorf("second Install changed SetupComplete.cmd:\n%s", again)
	}
}
