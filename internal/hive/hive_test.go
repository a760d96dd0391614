package hive_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/hive"
	"github.com/imprint-osd/imprint/internal/hive/hivextest"
)

func write(t *testing.T, h *hive.Hive) string {
	t.Helper()
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "h.hive")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMarshalReadByHivex(t *testing.T) {
	hivextest.Need(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 2500) // 40000 bytes
	for _, minor := range []uint32{3, 5} {
		t.Run(fmt.Sprint("minor", minor), func(t *testing.T) {
			h := hive.New("ROOT", 0x01d9000000000000)
			h.Minor = minor
			k, err := h.Root.Create(`A\Ключ`, 0)
			if err != nil {
				t.Fatal(err)
			}
			k.SetString("s", "héllo wörld")
			k.Set("e", hive.ExpandSZ, hive.EncodeSZ(`%SystemRoot%\inf`))
			k.Set("m", hive.MultiSZ, hive.EncodeMultiSZ("one", "two"))
			k.Set("q", hive.QWORD, hive.EncodeQWORD(1<<40))
			k.SetDWORD("d", 0xdeadbeef)
			k.Set("", hive.Binary, []byte{1, 2, 3, 4, 5, 6, 7})
			k.Set("tiny", hive.Binary, []byte{9})
			k.Class = "someclass"
			b, _ := h.Root.Create("Big", 0)
			b.Set("blob", hive.Binary, big)
			many, _ := h.Root.Create("Many", 0)
			for i := 599; i >= 0; i-- { // reverse order: Marshal must sort
				c, _ := many.Create(fmt.Sprintf("k%04d", i), 0)
				c.SetDWORD("i", uint32(i))
			}
			got := hivextest.Dump(t, write(t, h))
			want := map[string]string{
				"s": "string:héllo wörld", "e": `expand:%SystemRoot%\inf`, "m": "string-list:one|two|",
				"q": fmt.Sprintf("int64:%d", int64(1)<<40), "d": fmt.Sprintf("int32:%d", int32(-559038737)),
				"@":    "binary:" + base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7}),
				"tiny": "binary:" + base64.StdEncoding.EncodeToString([]byte{9}),
			}
			if diff := cmp.Diff(want, got[`A\Ключ`]); diff != "" {
				t.Errorf(`A\Ключ read by hivex (-want +got):\n%s`, diff)
			}
			if g := got["Big"]["blob"]; g != "binary:"+base64.StdEncoding.EncodeToString(big) {
				t.Errorf("40000-byte value read back as %d characters", len(g))
			}
			n := 0
			for p := range got {
				if strings.HasPrefix(p, `Many\`) {
					n++
				}
			}
			if n != 600 || got[`Many\k0599`]["i"] != "int32:599" || got[`Many\k0000`]["i"] != "int32:0" {
				t.Errorf("hivex sees %d of 600 subkeys; k0599 = %v", n, got[`Many\k0599`])
			}
			// Our own reader gets the same tree back, class and all.
			raw, _ := h.Marshal()
			back, err := hive.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			bk := back.Root.Lookup(`a\КЛЮЧ`)
			if bk == nil || bk.Class != "someclass" || len(bk.Values) != 7 {
				t.Fatalf("parsed back: %+v", bk)
			}
			if v, _ := bk.Value("M"); !cmp.Equal(v.Strings(), []string{"one", "two"}) {
				t.Errorf("multi-sz parsed back as %q", v.Strings())
			}
			if v, _ := back.Root.Lookup("Big").Value("blob"); !bytes.Equal(v.Data, big) {
				t.Errorf("big value parsed back as %d bytes", len(v.Data))
			}
			again, _ := back.Marshal()
			if !bytes.Equal(raw, again) {
				t.Error("writing a parsed hive does not give the same bytes")
			}
		})
	}
}

// A hive that hivex itself built is read, rewritten, and hivex sees the
// same content in both; security descriptors survive.
func TestRoundTripOfHivexHive(t *testing.T) {
	hivextest.Need(t)
	base := write(t, hive.New("ROOT", 0))
	long := strings.TrimSuffix(strings.Repeat("ab,", 2000), ",") // 2000 bytes (hivexsh limits line length)
	src := hivextest.Shell(t, base, `add ControlSet001
cd ControlSet001
add Services
add Control
cd Services
add disk
cd disk
setval 5
Type
dword:0x00000001
Start
dword:0x00000000
ImagePath
expandstring:System32\drivers\disk.sys
Group
string:SCSI miniport
Blob
hex:3:`+long+`
cd \
add Select
cd Select
setval 1
Current
dword:0x00000001`)
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hive.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	disk := h.Root.Lookup(`controlset001\services\DISK`)
	if disk == nil {
		t.Fatal("Services\\disk not found")
	}
	if v, _ := disk.Value("ImagePath"); v.Type != hive.ExpandSZ || v.String() != `System32\drivers\disk.sys` {
		t.Errorf("ImagePath = %d %q", v.Type, v.String())
	}
	if v, _ := disk.Value("Blob"); len(v.Data) != 2000 {
		t.Errorf("Blob is %d bytes", len(v.Data))
	}
	if disk.Security == nil || !bytes.Equal(disk.Security, h.Root.Security) {
		t.Error("security descriptor of a hivex-made key was not read")
	}
	if v, err := hive.ReadValue(raw, `CONTROLSET001\services\Disk`, "group"); err != nil || v.String() != "SCSI miniport" {
		t.Errorf("ReadValue Group = %q, %v", v.String(), err)
	}
	if _, err := hive.ReadValue(raw, `ControlSet001\Services\nope`, "Group"); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("ReadValue of a missing key: err = %v", err)
	}
	out := write(t, h)
	want := hivextest.Dump(t, src)
	if diff := cmp.Diff(want, hivextest.Dump(t, out)); diff != "" {
		t.Errorf("rewritten hive differs as hivex reads it (-hivex +rewritten):\n%s", diff)
	}
}

func TestParseRefusesBadFiles(t *testing.T) {
	good, err := hive.New("R", 0).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	fixSum := func(b []byte) []byte {
		var x uint32
		for i := 0; i < 508; i += 4 {
			x ^= binary.LittleEndian.Uint32(b[i:])
		}
		binary.LittleEndian.PutUint32(b[508:], x)
		return b
	}
	// The root nk cell's subkey count and list point at the root itself.
	loop := mod(func(b []byte) []byte {
		root := int(binary.LittleEndian.Uint32(b[36:]))
		nk := b[4096+root+4:]
		binary.LittleEndian.PutUint32(nk[20:], 1)
		// An li list holding the root: reuse the root's own class field cell? Write a
		// new cell into the bin's free space.
		free := len(b) - 4096 - 16
		cell := b[4096+free:]
		sz := int32(-16)
		binary.LittleEndian.PutUint32(cell, uint32(sz))
		copy(cell[4:], "li")
		binary.LittleEndian.PutUint16(cell[6:], 1)
		binary.LittleEndian.PutUint32(cell[8:], uint32(root))
		binary.LittleEndian.PutUint32(nk[28:], uint32(free))
		return b
	})
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"not a hive":    {[]byte("hello"), "not a registry hive"},
		"dirty":         {mod(func(b []byte) []byte { b[4]++; return fixSum(b) }), "not closed cleanly"},
		"checksum":      {mod(func(b []byte) []byte { b[12]++; return b }), "checksum"},
		"root outside":  {mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[36:], 1<<30); return fixSum(b) }), "outside the file"},
		"loop":          {loop, "reached twice"},
		"truncated bin": {good[:4096+64], "outside the file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := hive.Parse(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestMarshalRefusesDuplicates(t *testing.T) {
	h := hive.New("R", 0)
	h.Root.Subkeys = append(h.Root.Subkeys, &hive.Key{Name: "a"}, &hive.Key{Name: "A"})
	if _, err := h.Marshal(); err == nil || !strings.Contains(err.Error(), "two subkeys") {
		t.Errorf("duplicate subkeys: err = %v", err)
	}
	h = hive.New("R", 0)
	h.Root.Values = []hive.Value{{Name: "x"}, {Name: "X"}}
	if _, err := h.Marshal(); err == nil || !strings.Contains(err.Error(), "two values") {
		t.Errorf("duplicate values: err = %v", err)
	}
	if _, err := h.Root.Create(`a\`+strings.Repeat("x", 256), 0); err == nil {
		t.Error("a 256-character key name was accepted")
	}
}

// The layout Windows' own hive check (CmCheckRegistry) insists on and
// hivex does not: bins of whole 4 KiB pages, each naming its own offset,
// tiled exactly by 8-byte-aligned cells; the header's data size matching.
func TestBinsAreTiled(t *testing.T) {
	h := hive.New("ROOT", 0)
	h.Minor = 5
	k, _ := h.Root.Create(`A\B`, 0)
	k.Set("big", hive.Binary, bytes.Repeat([]byte{7}, 70000))
	for i := 0; i < 700; i++ {
		c, _ := h.Root.Create(fmt.Sprintf(`Many\k%d`, i), 0)
		c.SetString("v", strings.Repeat("x", i%50))
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	data := int(binary.LittleEndian.Uint32(b[40:]))
	if len(b) != 4096+data {
		t.Fatalf("file is %d bytes, header says 4096+%d", len(b), data)
	}
	bins := 0
	for off := 4096; off < len(b); {
		if string(b[off:off+4]) != "hbin" {
			t.Fatalf("no hbin at %#x", off)
		}
		if got := int(binary.LittleEndian.Uint32(b[off+4:])); got != off-4096 {
			t.Errorf("bin at %#x says it is at %#x", off-4096, got)
		}
		size := int(binary.LittleEndian.Uint32(b[off+8:]))
		if size%4096 != 0 || size == 0 || off+size > len(b) {
			t.Fatalf("bin at %#x has size %d", off-4096, size)
		}
		for c := off + 32; c < off+size; {
			n := int(int32(binary.LittleEndian.Uint32(b[c:])))
			if n < 0 {
				n = -n
			}
			if n == 0 || n%8 != 0 || c+n > off+size {
				t.Fatalf("cell at %#x has size %d in bin %#x+%d", c-4096, n, off-4096, size)
			}
			c += n
		}
		bins++
		off += size
	}
	if bins < 2 {
		t.Errorf("%d bins: the test wants several, and one larger than a page", bins)
	}
}
