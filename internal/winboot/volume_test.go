package winboot_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/hive"
	"github.com/imprint-osd/imprint/internal/winboot"
	"github.com/imprint-osd/imprint/internal/winboot/wintest"
)

// A hive that was not closed cleanly is refused and left as it was.
func TestEditHiveRefusesDirtyHive(t *testing.T) {
	root := wintest.Tree(t)
	p := filepath.Join(root, "Windows/System32/config/SYSTEM")
	b, _ := os.ReadFile(p)
	b[4]++ // primary sequence number: now differs from the secondary
	var x uint32
	for i := 0; i < 508; i += 4 {
		x ^= uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
	}
	b[508], b[509], b[510], b[511] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	err := winboot.EditHive(root, "SYSTEM", 0, func(*hive.Hive) error { called = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "not closed cleanly") || called {
		t.Errorf("err = %v, edit called %v", err, called)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(after, b) {
		t.Error("the refused hive was changed")
	}
	if err := winboot.EditHive(root, "SAM", 0, func(*hive.Hive) error { return nil }); err == nil || !strings.Contains(err.Error(), "no SAM hive") {
		t.Errorf("missing hive: err = %v", err)
	}
}

func TestMkdirCIReusesExistingCase(t *testing.T) {
	root := wintest.Tree(t)
	p, err := winboot.MkdirCI(root, `WINDOWS\setup\Scripts`)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "Windows", "setup", "Scripts"); p != want {
		t.Errorf("MkdirCI = %s, want %s", p, want)
	}
}

// A hive is rewritten into the same file (same inode): on NTFS that keeps
// its security descriptor, which a replacement file would not have.
func TestEditHiveKeepsTheFile(t *testing.T) {
	root := wintest.Tree(t)
	p := filepath.Join(root, "Windows/System32/config/SOFTWARE")
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := winboot.EditHive(root, "SOFTWARE", 0, func(h *hive.Hive) error {
		k, err := h.Root.Create(`Imprint`, 0)
		if err != nil {
			return err
		}
		k.SetDWORD("x", 1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the hive file was replaced, not rewritten in place")
	}
	if _, err := os.Stat(p + ".imprint-new"); !os.IsNotExist(err) {
		t.Errorf("the kept copy is still there: %v", err)
	}
	b, _ := os.ReadFile(p)
	if v, err := hive.ReadValue(b, "Imprint", "x"); err != nil || v.Uint32() != 1 {
		t.Errorf("edit not in the file: %v", err)
	}
}

func TestFileTime(t *testing.T) {
	// 2024-01-01T00:00:00Z is 133485408000000000 in FILETIME.
	if got := winboot.FileTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); got != 133485408000000000 {
		t.Errorf("FileTime = %d", got)
	}
}
