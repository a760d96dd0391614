//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/imprint-osd/imprint/internal/hive/hivextest"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

// WindowsBootMarker is what the synthetic image's bootmgfw.efi prints.
const WindowsBootMarker = "IMPRINT-WINDOWS-BOOT-MARKER"

var (
	reWindowsBoot = regexp.MustCompile(WindowsBootMarker)
	// OVMF's boot manager names the Boot#### entry it starts on the
	// serial console.
	reBootEntry = regexp.MustCompile(`BdsDxe: starting (Boot[0-9A-F]{4}) "([^"]*)" from ([^\r\n]*)`)
)

// Well-known BCD objects (the bcdboot technical reference).
const (
	bcdBootMgr            = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
	bcdGlobalSettings     = "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}"
	bcdBootLoaderSettings = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"
)

// WindowsImage is the synthetic install.wim: Windows' boot layout with a
// bootmgfw.efi that prints WindowsBootMarker, and SYSTEM and SOFTWARE
// hives written with hivex (internal/winboot/wintest).
type WindowsImage struct {
	WIM     string
	BootMgr []byte // the EFI program at Windows/Boot/EFI/bootmgfw.efi
}

// bootMarkerEFI builds an x86_64 EFI program (GRUB with an embedded
// configuration) that prints WindowsBootMarker on the console and powers
// the machine off.
func (e *Env) bootMarkerEFI(ctx context.Context) []byte {
	t := e.t
	t.Helper()
	needTools(t, "grub-mkstandalone")
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi"); err != nil {
		t.Fatalf("grub-mkstandalone needs /usr/lib/grub/x86_64-efi: apt-get install grub-efi-amd64-bin")
	}
	cfg := filepath.Join(e.Dir, "marker-grub.cfg")
	if err := os.WriteFile(cfg, []byte("echo "+WindowsBootMarker+"\nhalt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.Dir, "bootmgfw.efi")
	if _, err := run(ctx, "grub-mkstandalone", "-O", "x86_64-efi", "-o", out,
		"--install-modules=echo halt normal", "--modules=echo halt", "--locales=", "--fonts=", "--themes=",
		"boot/grub/grub.cfg="+cfg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildWindowsImage captures the synthetic Windows tree into a pipable WIM.
func (e *Env) buildWindowsImage(ctx context.Context) *WindowsImage {
	t := e.t
	t.Helper()
	needTools(t, "wimlib-imagex")
	tree := wintest.Tree(t)
	img := &WindowsImage{WIM: filepath.Join(e.Dir, "install.wim"), BootMgr: e.bootMarkerEFI(ctx)}
	if err := os.WriteFile(filepath.Join(tree, "Windows", "Boot", "EFI", "bootmgfw.efi"), img.BootMgr, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, "wimlib-imagex", "capture", tree, img.WIM, wintest.Product, "--pipable"); err != nil {
		t.Fatal(err)
	}
	return img
}

// uploadDriverPack adds a DriverPack Folder item holding the storage
// driver of windrivers' test pack (class SCSIAdapter, virtio-blk's
// hardware ids), its version Active with the given Manufacturer and Model.
func (e *Env) uploadDriverPack(ctx context.Context, manufacturer, model string) string {
	t := e.t
	t.Helper()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pack := filepath.Join(e.Dir, "driverpack")
	src := filepath.Join(root, "internal", "windrivers", "testdata", "pack", "storage")
	for _, name := range []string{"vstor.inf", "VSTOR.SYS"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(pack, "storage"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pack, "storage", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.imprint(ctx, "", "--json", "content", "add", "--name", "e2e storage drivers", "--type", "Folder", "--purpose", "DriverPack")
	if err != nil {
		t.Fatal(err)
	}
	var item struct {
		ID string `json:"id"`
	}
	if err := jsonUnmarshal(out, &item); err != nil || item.ID == "" {
		t.Fatalf("content add: no id in %q (%v)", out, err)
	}
	if _, err := e.imprint(ctx, "", "content", "version", item.ID, pack, "--status", "Active",
		"--manufacturer", manufacturer, "--model", model); err != nil {
		t.Fatal(err)
	}
	return item.ID
}

// gptGUIDs reads the disk's GUID and partition n's unique GUID with sgdisk.
func gptGUIDs(ctx context.Context, disk string, n int) (diskGUID, partGUID string, err error) {
	out, err := run(ctx, "sgdisk", "-p", disk)
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`Disk identifier \(GUID\): ([0-9A-Fa-f-]{36})`).FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("sgdisk -p %s: no disk GUID in\n%s", disk, out)
	}
	diskGUID = string(m[1])
	out, err = run(ctx, "sgdisk", "-i", fmt.Sprint(n), disk)
	if err != nil {
		return "", "", err
	}
	m = regexp.MustCompile(`Partition unique GUID: ([0-9A-Fa-f-]{36})`).FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("sgdisk -i %d %s: no unique GUID in\n%s", n, disk, out)
	}
	return diskGUID, string(m[1]), nil
}

// guidBytes is a GUID's on-disk form (the first three fields little-endian).
func guidBytes(s string) ([]byte, error) {
	h, err := hex.DecodeString(strings.ReplaceAll(strings.Trim(s, "{}"), "-", ""))
	if err != nil || len(h) != 16 {
		return nil, fmt.Errorf("GUID %q: %v", s, err)
	}
	return append([]byte{h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6]}, h[8:]...), nil
}

// bcdProblems reads the BCD store with hivexml (libhivex, not our hive
// code) and checks what bcdboot would have written: {bootmgr} whose
// default and display order name one Windows Boot Loader, whose device and
// osdevice elements name the Windows partition by the disk's and the
// partition's GPT GUIDs; the inherited settings objects; a locale and a
// description.
func bcdProblems(t *testing.T, bcd, diskGUID, partGUID string) []string {
	t.Helper()
	dump := map[string]map[string]string{} // key paths in lower case
	for k, v := range hivextest.Dump(t, bcd) {
		dump[strings.ToLower(k)] = v
	}
	var problems []string
	el := func(obj, id string) string { return dump[strings.ToLower(`Objects\`+obj+`\Elements\`+id)]["Element"] }
	for _, obj := range []string{bcdBootMgr, bcdGlobalSettings, bcdBootLoaderSettings} {
		if _, ok := dump[strings.ToLower(`Objects\`+obj+`\Description`)]; !ok {
			problems = append(problems, fmt.Sprintf("BCD has no object %s", obj))
		}
	}
	def := strings.TrimPrefix(el(bcdBootMgr, "23000003"), "string:")
	if def == "" {
		return append(problems, fmt.Sprintf("{bootmgr} has no default (23000003); BCD keys: %d", len(dump)))
	}
	if order := el(bcdBootMgr, "24000001"); !strings.Contains(strings.ToLower(order), strings.ToLower(def)) {
		problems = append(problems, fmt.Sprintf("{bootmgr} display order %q does not list the default %s", order, def))
	}
	if typ := dump[strings.ToLower(`Objects\`+def+`\Description`)]["Type"]; typ != "int32:270532611" { // 0x10200003: Windows Boot Loader
		problems = append(problems, fmt.Sprintf("the default object %s has type %q, want a Windows Boot Loader (0x10200003)", def, typ))
	}
	if d := el(def, "12000004"); !strings.HasPrefix(d, "string:") || len(d) <= len("string:") {
		problems = append(problems, fmt.Sprintf("the loader has no description (12000004): %q", d))
	}
	if l := el(def, "12000005"); !strings.HasPrefix(l, "string:") || len(l) <= len("string:") {
		problems = append(problems, fmt.Sprintf("the loader has no locale (12000005): %q", l))
	}
	if p := el(def, "12000002"); !strings.EqualFold(strings.TrimPrefix(p, "string:"), `\Windows\system32\winload.efi`) {
		problems = append(problems, fmt.Sprintf("the loader's path (12000002) is %q", p))
	}
	dg, err1 := guidBytes(diskGUID)
	pg, err2 := guidBytes(partGUID)
	if err1 != nil || err2 != nil {
		return append(problems, fmt.Sprint(err1, err2))
	}
	for _, id := range []string{"11000001", "21000001"} { // device, osdevice
		v := el(def, id)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "binary:"))
		if !strings.HasPrefix(v, "binary:") || err != nil {
			problems = append(problems, fmt.Sprintf("loader element %s is %q, want binary device data", id, v))
			continue
		}
		if !bytes.Contains(raw, pg) || !bytes.Contains(raw, dg) {
			problems = append(problems, fmt.Sprintf("loader element %s does not name partition %s of disk %s: %x", id, partGUID, diskGUID, raw))
		}
	}
	return problems
}

// utf16le is s in UTF-16LE, as Windows stores text.
func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// findInImage reports at which byte offsets of the file at path any of
// needles occurs (reading 4 MiB at a time, overlapping by the longest
// needle). It returns at most one offset per needle.
func findInImage(path string, needles map[string][]byte) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	longest := 0
	for _, n := range needles {
		longest = max(longest, len(n))
	}
	found := map[string]int64{}
	buf := make([]byte, 4<<20+longest)
	var off int64
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		chunk := buf[:keep+n]
		for name, needle := range needles {
			if _, seen := found[name]; seen {
				continue
			}
			if i := bytes.Index(chunk, needle); i >= 0 {
				found[name] = off - int64(keep) + int64(i)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		off += int64(n)
		keep = min(longest, len(chunk))
		copy(buf, chunk[len(chunk)-keep:])
	}
}
