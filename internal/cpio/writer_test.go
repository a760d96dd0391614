package cpio_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imprint-osd/imprint/internal/cpio"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// entry is one archive member as read back by readNewc.
type entry struct {
	Name  string
	Mode  uint32
	Ino   uint32
	UID   uint32
	MTime uint32
	RDev  [2]uint32
	Data  string
}

// readNewc parses a newc archive independently of the writer, checking the
// alignment rules as it goes, and stops at the trailer.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	field := func(i int) uint32 {
		s := string(b[off+6+8*i : off+6+8*(i+1)])
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			t.Fatalf("offset %d field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	for {
		if off%4 != 0 {
			t.Fatalf("header at offset %d is not 4-aligned", off)
		}
		if off+110 > len(b) {
			t.Fatalf("truncated archive at offset %d", off)
		}
		if got := string(b[off : off+6]); got != "070701" {
			t.Fatalf("offset %d: magic %q", off, got)
		}
		e := entry{Ino: field(0), Mode: field(1), UID: field(2), MTime: field(5), RDev: [2]uint32{field(9), field(10)}}
		size, nameSize := int(field(6)), int(field(11))
		name := string(b[off+110 : off+110+nameSize])
		if !strings.HasSuffix(name, "\x00") {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		e.Name = strings.TrimSuffix(name, "\x00")
		off += 110 + nameSize
		off = (off + 3) &^ 3
		e.Data = string(b[off : off+size])
		off += size
		off = (off + 3) &^ 3
		if e.Name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func sample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	steps := []error{
		w.Mkdir("dev", 0o755),
		w.CharDev("dev/console", 0o600, 5, 1),
		w.Mkdir("/etc", 0o755),
		w.WriteFile("etc/hello", 0o644, 5, strings.NewReader("hello")),
		w.WriteFile("etc/empty", 0o600, 0, strings.NewReader("")),
		w.WriteFile("init", 0o755, 3, strings.NewReader("abc")),
		w.Symlink("lib", "usr/lib"),
		w.Mkdir("tmp", fs.ModeSticky|0o777),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return buf.Bytes()
}

func TestWriterReadBackInGo(t *testing.T) {
	got := readNewc(t, sample(t))
	want := []entry{
		{Name: "dev", Mode: 0o40755, Ino: 1},
		{Name: "dev/console", Mode: 0o20600, Ino: 2, RDev: [2]uint32{5, 1}},
		{Name: "etc", Mode: 0o40755, Ino: 3},
		{Name: "etc/hello", Mode: 0o100644, Ino: 4, Data: "hello"},
		{Name: "etc/empty", Mode: 0o100600, Ino: 5},
		{Name: "init", Mode: 0o100755, Ino: 6, Data: "abc"},
		{Name: "lib", Mode: 0o120777, Ino: 7, Data: "usr/lib"},
		{Name: "tmp", Mode: 0o41777, Ino: 8},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

func TestWriterReadByGNUCpio(t *testing.T) {
	testenv.LookPath(t, "cpio")
	arc := sample(t)

	list := exec.Command("cpio", "-t", "--quiet")
	list.Stdin = bytes.NewReader(arc)
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	wantList := "dev\ndev/console\netc\netc/hello\netc/empty\ninit\nlib\ntmp\n"
	if diff := cmp.Diff(wantList, string(out)); diff != "" {
		t.Errorf("cpio -t (-want +got):\n%s", diff)
	}

	// Extract everything but the device node (mknod needs privileges some
	// test environments lack) and compare the tree.
	dir := t.TempDir()
	ext := exec.Command("cpio", "-i", "-d", "--quiet", "--no-absolute-filenames", "-D", dir, "-f", "dev/console")
	ext.Stdin = bytes.NewReader(arc)
	if out, err := ext.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	got := map[string]string{}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "-> " + target
			return err
		case fi.IsDir():
			got[rel] = fmt.Sprintf("dir %o", unixPerm(fi.Mode()))
		default:
			b, err := os.ReadFile(p)
			got[rel] = fmt.Sprintf("%o %s", fi.Mode().Perm(), b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"dev":       "dir 755",
		"etc":       "dir 755",
		"etc/hello": "644 hello",
		"etc/empty": "600 ",
		"init":      "755 abc",
		"lib":       "-> usr/lib",
		"tmp":       "dir 1777",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}
}

func TestWriterRejectsBadInput(t *testing.T) {
	tests := map[string]struct {
		do   func(w *cpio.Writer) error
		want string
	}{
		"empty name":     {func(w *cpio.Writer) error { return w.Mkdir("", 0o755) }, "invalid entry name"},
		"dot dot":        {func(w *cpio.Writer) error { return w.Mkdir("a/../b", 0o755) }, "invalid entry name"},
		"double slash":   {func(w *cpio.Writer) error { return w.Mkdir("a//b", 0o755) }, "invalid entry name"},
		"trailer name":   {func(w *cpio.Writer) error { return w.Mkdir("TRAILER!!!", 0o755) }, "invalid entry name"},
		"short content":  {func(w *cpio.Writer) error { return w.WriteFile("f", 0o644, 10, strings.NewReader("abc")) }, "short content: got 3 of 10"},
		"empty symlink":  {func(w *cpio.Writer) error { return w.Symlink("l", "") }, "empty target"},
		"after close":    {func(w *cpio.Writer) error { w.Close(); return w.Mkdir("d", 0o755) }, "write after close"},
		"negative size":  {func(w *cpio.Writer) error { return w.WriteFile("f", 0o644, -1, strings.NewReader("")) }, "does not fit"},
		"too large file": {func(w *cpio.Writer) error { return w.WriteFile("f", 0o644, 1<<32, strings.NewReader("")) }, "does not fit"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.do(cpio.NewWriter(io.Discard))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}
