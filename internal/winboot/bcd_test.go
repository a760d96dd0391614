package winboot_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/winboot"
)

var update = flag.Bool("update", false, "rewrite golden files")

func guid(t *testing.T, s string) winboot.GUID {
	t.Helper()
	g, err := winboot.ParseGUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The device element for a GPT partition is byte for byte the one Windows
// 11 wrote (spec/windows-offline.md §3.7, observed in virt-v2v's export).
func TestDeviceGPTMatchesWindows(t *testing.T) {
	want, _ := hex.DecodeString(strings.Join(strings.Fields(`
		00000000000000000000000000000000 06000000 00000000 48000000 00000000
		a0ce8115ee127d4f8967a2b73024aae2 00000000 00000000
		430ddcada917264ea16cdc71e67393f7 00000000000000000000000000000000`), ""))
	got := winboot.DeviceGPT(guid(t, "{addc0d43-17a9-4e26-a16c-dc71e67393f7}"), guid(t, "1581cea0-12ee-4f7d-8967-a2b73024aae2"))
	if !bytes.Equal(got, want) {
		t.Errorf("device element\n got %x\nwant %x", got, want)
	}
	if g := guid(t, "1581CEA0-12EE-4F7D-8967-A2B73024AAE2").String(); g != "{1581cea0-12ee-4f7d-8967-a2b73024aae2}" {
		t.Errorf("String() = %s", g)
	}
}

// hivexRender is how hivextest.Dump shows a value of an element.
func hivexRender(t *testing.T, e winboot.Element) string {
	t.Helper()
	switch (e.ID >> 24) & 0xF {
	case 1:
		return "binary:" + base64.StdEncoding.EncodeToString(e.Device)
	case 2:
		return "string:" + e.String
	case 3:
		return "string:" + e.Objects[0].String()
	case 4:
		var s []string
		for _, g := range e.Objects {
			s = append(s, g.String())
		}
		return "string-list:" + strings.Join(s, "|") + "|"
	case 5, 7:
		var b []byte
		for _, n := range e.Ints {
			b = binary.LittleEndian.AppendUint64(b, n)
		}
		return "binary:" + base64.StdEncoding.EncodeToString(b)
	case 6:
		if *e.Bool {
			return "binary:AQ=="
		}
		return "binary:AA=="
	}
	t.Fatalf("element %08x: unknown format", e.ID)
	return ""
}

func TestStoreReadByHivex(t *testing.T) {
	hivextest.Need(t)
	disk, win, esp := guid(t, "addc0d43-17a9-4e26-a16c-dc71e67393f7"), guid(t, "1581cea0-12ee-4f7d-8967-a2b73024aae2"), guid(t, "11111111-2222-3333-4444-555555555555")
	objs, loader, err := winboot.Store(winboot.StoreOptions{Disk: disk, Windows: win, ESP: esp, Locale: "de-DE",
		Description: "Windows 11 Enterprise", Rand: counter()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := winboot.StoreHive(objs, 0x01da000000000000)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "BCD")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	got := hivextest.Dump(t, path)

	// Every object and element reads back through hivex as written.
	for _, o := range objs {
		base := `Objects\` + o.ID.String()
		if typ := got[base+`\Description`]["Type"]; typ != fmt.Sprintf("int32:%d", int32(o.Type)) {
			t.Errorf("%s Type = %q, want %#x", o.ID, typ, o.Type)
		}
		for _, e := range o.Elements {
			p := fmt.Sprintf(`%s\Elements\%08x`, base, e.ID)
			if g, w := got[p]["Element"], hivexRender(t, e); g != w {
				t.Errorf("%s = %q, want %q", p, g, w)
			}
		}
	}
	// The facts a boot depends on, spelled out.
	bm := `Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements\`
	ld := `Objects\` + loader.String() + `\Elements\`
	winDev := "binary:" + base64.StdEncoding.EncodeToString(winboot.DeviceGPT(disk, win))
	checks := map[string]string{
		bm + "23000003": "string:" + loader.String(),
		bm + "24000001": "string-list:" + loader.String() + "|",
		bm + "12000002": `string:\EFI\Microsoft\Boot\bootmgfw.efi`,
		bm + "11000001": "binary:" + base64.StdEncoding.EncodeToString(winboot.DeviceGPT(disk, esp)),
		ld + "11000001": winDev,
		ld + "21000001": winDev,
		ld + "12000002": `string:\Windows\system32\winload.efi`,
		ld + "12000004": "string:Windows 11 Enterprise",
		ld + "12000005": "string:de-DE",
		ld + "14000006": "string-list:{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}|",
		`Objects\{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}\Elements\14000006`: "string-list:{4636856e-540f-4170-a130-a84776f4c654}|{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}|{5189b25c-5558-4bf2-bca4-289b11bd29e2}|",
	}
	for p, w := range checks {
		if g := got[p]["Element"]; g != w {
			t.Errorf("%s = %q, want %q", p, g, w)
		}
	}
	if d := got["Description"]; d["KeyName"] != "string:BCD00000000" || d["System"] != "int32:1" {
		t.Errorf("root Description = %v", d)
	}
	// Golden: the whole store as hivex reads it.
	var lines []string
	for p, vals := range got {
		for n, v := range vals {
			lines = append(lines, p+" "+n+" = "+v)
		}
		if len(vals) == 0 {
			lines = append(lines, p)
		}
	}
	sort.Strings(lines)
	text := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "bcd-uefi.golden")
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if diff := cmp.Diff(string(want), text); diff != "" {
		t.Errorf("BCD store differs from %s (-want +got):\n%s", golden, diff)
	}
}

// counter is a fixed "random" stream: 00 01 02 ...
func counter() *bytes.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return bytes.NewReader(b)
}

func TestStoreRefusesBadInput(t *testing.T) {
	if _, _, err := winboot.Store(winboot.StoreOptions{}); err == nil || !strings.Contains(err.Error(), "GUIDs are all needed") {
		t.Errorf("no GUIDs: err = %v", err)
	}
	g := guid(t, "addc0d43-17a9-4e26-a16c-dc71e67393f7")
	_, _, err := winboot.Store(winboot.StoreOptions{Disk: g, Windows: g, ESP: g, Rand: bytes.NewReader(make([]byte, 32))})
	if err == nil || !strings.Contains(err.Error(), "same GUID") {
		t.Errorf("repeating random source: err = %v", err)
	}
}
