package windrivers_test

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/windrivers"
)

func TestBootCriticalFromINF(t *testing.T) {
	b, err := os.ReadFile("testdata/pack/storage/vstor.inf")
	if err != nil {
		t.Fatal(err)
	}
	// The same INF in UTF-16LE with a BOM, as many vendors ship them.
	u := utf16.Encode([]rune(string(b)))
	u16 := []byte{0xFF, 0xFE}
	for _, c := range u {
		u16 = binary.LittleEndian.AppendUint16(u16, c)
	}
	want := []windrivers.Driver{{INF: "vstor.inf", Class: "SCSIAdapter", ClassGUID: "{4D36E97B-E325-11CE-BFC1-08002BE10318}",
		Install: "vstor_inst", Service: "vstor", Binary: "vstor.sys", Group: "SCSI Miniport", Type: 1, ErrorControl: 1, Arch: "amd64",
		HardwareIDs: []string{`PCI\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00`, `PCI\VEN_1AF4&DEV_1001`, `PCI\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01`}}}
	for name, data := range map[string][]byte{"ansi": b, "utf-16": u16} {
		f, err := windrivers.ParseINF(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := windrivers.BootCritical("VSTOR.INF", f, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
		if v := f.Value("Version", "Provider"); v != `Example "Storage" Inc.` {
			t.Errorf("%s: Provider %q (quotes and [Strings] substitution)", name, v)
		}
	}
	f, _ := windrivers.ParseINF(b)
	x86, _ := windrivers.BootCritical("vstor.inf", f, "x86")
	if len(x86) != 1 || !cmp.Equal(x86[0].HardwareIDs, []string{`PCI\VEN_1AF4&DEV_0001`}) {
		t.Errorf("x86 picks the NTx86 models: %+v", x86)
	}
	arm, _ := windrivers.BootCritical("vstor.inf", f, "arm64")
	if len(arm) != 0 {
		t.Errorf("no arm64 models, yet %+v", arm)
	}
	net, _ := os.ReadFile("testdata/pack/net/vnet.inf")
	nf, err := windrivers.ParseINF(net)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := windrivers.BootCritical("vnet.inf", nf, "amd64"); len(d) != 0 {
		t.Errorf("a Net driver is not boot-critical storage: %+v", d)
	}
	if _, err := windrivers.ParseINF([]byte("[Strings]\nA=1\n")); err == nil || !strings.Contains(err.Error(), "[Version]") {
		t.Errorf("INF without [Version]: err = %v", err)
	}
}
