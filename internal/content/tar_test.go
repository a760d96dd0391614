package content_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// entry is one tar entry to write; Body is the content of regular files.
type entry struct {
	Name     string
	Type     byte
	Mode     int64
	Body     string
	Linkname string
}

func file(name, body string) entry {
	return entry{Name: name, Type: tar.TypeReg, Mode: 0o644, Body: body}
}
func dir(name string) entry { return entry{Name: name, Type: tar.TypeDir, Mode: 0o755} }

func makeTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname, ModTime: time.Unix(1700000000, 0)}
		if e.Type == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPutTarRejects(t *testing.T) {
	long := strings.Repeat("d/", 2048) + "f"
	tests := map[string]struct {
		entries []entry
		kind    deploy.Kind
		msg     string // must appear in the error
	}{
		"absolute":            {[]entry{file("/etc/passwd", "x")}, deploy.KindInvalid, `"/etc/passwd": absolute`},
		"dotdot":              {[]entry{file("../evil", "x")}, deploy.KindInvalid, `"../evil"`},
		"inner dotdot":        {[]entry{file("a/../../evil", "x")}, deploy.KindInvalid, `"a/../../evil"`},
		"dot slash dotdot":    {[]entry{file("./../evil", "x")}, deploy.KindInvalid, `"./../evil"`},
		"dotdot dir":          {[]entry{dir("../")}, deploy.KindInvalid, `"../"`},
		"backslash dotdot":    {[]entry{file(`a\..\..\evil`, "x")}, deploy.KindInvalid, `backslash`},
		"drive letter":        {[]entry{file("C:/Windows/evil", "x")}, deploy.KindInvalid, `"C:/Windows/evil"`},
		"ntfs stream":         {[]entry{file("a.txt::$DATA", "x")}, deploy.KindInvalid, `colon`},
		"device name":         {[]entry{file("drivers/con.inf", "x")}, deploy.KindInvalid, `"drivers/con.inf"`},
		"double slash":        {[]entry{file("a//b", "x")}, deploy.KindInvalid, `"a//b"`},
		"control char":        {[]entry{file("a\nb", "x")}, deploy.KindInvalid, `control character`},
		"symlink":             {[]entry{{Name: "link", Type: tar.TypeSymlink, Linkname: "/etc"}}, deploy.KindInvalid, `"link": symbolic links`},
		"hard link":           {[]entry{file("a", "x"), {Name: "b", Type: tar.TypeLink, Linkname: "a"}}, deploy.KindInvalid, `"b": hard links`},
		"char device":         {[]entry{{Name: "tty", Type: tar.TypeChar}}, deploy.KindInvalid, `"tty": device`},
		"block device":        {[]entry{{Name: "sda", Type: tar.TypeBlock}}, deploy.KindInvalid, `"sda": device`},
		"fifo":                {[]entry{{Name: "pipe", Type: tar.TypeFifo}}, deploy.KindInvalid, `"pipe": FIFOs`},
		"duplicate":           {[]entry{file("a.txt", "1"), file("a.txt", "2")}, deploy.KindInvalid, `"a.txt": duplicate`},
		"duplicate dot slash": {[]entry{file("a.txt", "1"), file("./a.txt", "2")}, deploy.KindInvalid, `"a.txt": duplicate`},
		"file under file":     {[]entry{file("a", "1"), file("a/b", "2")}, deploy.KindInvalid, `"a/b": parent "a" is a file`},
		"file over dir":       {[]entry{file("a/b", "1"), file("a", "2")}, deploy.KindInvalid, `"a": path is both`},
		"dir over file":       {[]entry{file("a", "1"), dir("a/")}, deploy.KindInvalid, `"a": path is both`},
		"path too long":       {[]entry{file(long, "x")}, deploy.KindInvalid, `longer than 4096 bytes`},
		"too many entries":    {[]entry{file("1", ""), file("2", ""), file("3", ""), file("4", "")}, deploy.KindInvalid, `tar entry 4 "4": more than 3 entries`},
		"too large":           {[]entry{file("a", strings.Repeat("x", 60)), file("b", strings.Repeat("y", 50))}, deploy.KindTooLarge, `"b"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			content.SetMaxEntries(s, 3)
			_, _, err := s.PutTar(t.Context(), bytes.NewReader(makeTar(t, tt.entries...)), content.PutOptions{MaxSize: 100})
			wantKind(t, err, tt.kind)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if got := files(t, s.Dir(), "tmp"); len(got) != 0 {
				t.Errorf("temp files left: %v", got)
			}
		})
	}
}

func TestPutTarCorrupt(t *testing.T) {
	good := makeTar(t, file("a.txt", strings.Repeat("a", 2000)), file("b.txt", "b"))
	tests := map[string][]byte{
		"not a tar":         bytes.Repeat([]byte("garbage!"), 200),
		"truncated in body": good[:512+1000],
		"truncated header":  good[:100],
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			_, _, err := s.PutTar(t.Context(), bytes.NewReader(data), content.PutOptions{})
			wantKind(t, err, deploy.KindInvalid)
			if got := files(t, s.Dir(), "tmp"); len(got) != 0 {
				t.Errorf("temp files left: %v", got)
			}
		})
	}
}

// readTar reads an archive back into entries, failing on any header field
// WriteTar should not set.
func readTar(t *testing.T, data []byte) []entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read back tar: %v", err)
		}
		if !hdr.ModTime.Equal(time.Unix(0, 0)) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("entry %q: header not deterministic: mtime %v uid %d gid %d uname %q gname %q",
				hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, Body: string(body)})
	}
}

func TestTarRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	big := string(randomBytes(t, 2<<20+3))
	long := strings.Repeat("long-directory-name/", 10) + "file.txt" // needs PAX
	in := []entry{
		dir("./"),
		dir("./drivers/"),
		{Name: "./drivers/setup.exe", Type: tar.TypeReg, Mode: 0o755, Body: big},
		file("./drivers/net/e1000.inf", "[Version]\n"),
		file("README.txt", "same bytes"),
		file("copy/README.txt", "same bytes"),
		{Name: "empty", Type: tar.TypeReg, Mode: 0o4755, Body: ""}, // setuid dropped
		file(long, "deep"),
		file("unicode/pilote-é.inf", "é"),
	}
	m, total, err := s.PutTar(ctx, bytes.NewReader(makeTar(t, in...)), content.PutOptions{})
	if err != nil {
		t.Fatalf("PutTar: %v", err)
	}
	mf := func(p string, mode uint32, body string) deploy.ManifestFile {
		return deploy.ManifestFile{Path: p, Size: int64(len(body)), Mode: mode, SHA256: sum([]byte(body))}
	}
	want := &deploy.Manifest{Files: []deploy.ManifestFile{
		mf("README.txt", 0o644, "same bytes"),
		mf("copy/README.txt", 0o644, "same bytes"),
		mf("drivers/net/e1000.inf", 0o644, "[Version]\n"),
		mf("drivers/setup.exe", 0o755, big),
		mf("empty", 0o755, ""),
		mf(long, 0o644, "deep"),
		mf("unicode/pilote-é.inf", 0o644, "é"),
	}}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Fatalf("manifest (-want +got):\n%s", diff)
	}
	var wantTotal int64
	for _, f := range want.Files {
		wantTotal += f.Size
	}
	if total != wantTotal {
		t.Errorf("total = %d, want %d", total, wantTotal)
	}
	if n := len(files(t, s.Dir(), "sha256")); n != len(want.Files)-1 {
		t.Errorf("%d blobs stored, want %d (identical files stored once)", n, len(want.Files)-1)
	}

	var out bytes.Buffer
	if err := s.WriteTar(ctx, &out, m); err != nil {
		t.Fatalf("WriteTar: %v", err)
	}
	var wantEntries []entry
	for _, f := range want.Files {
		e := entry{Name: f.Path, Type: tar.TypeReg, Mode: int64(f.Mode)}
		for _, i := range in {
			if strings.TrimPrefix(i.Name, "./") == f.Path {
				e.Body = i.Body
			}
		}
		wantEntries = append(wantEntries, e)
	}
	if diff := cmp.Diff(wantEntries, readTar(t, out.Bytes())); diff != "" {
		t.Errorf("tar read back (-want +got):\n%s", diff)
	}

	var again bytes.Buffer
	if err := s.WriteTar(ctx, &again, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Errorf("WriteTar is not deterministic")
	}

	// The archive WriteTar produced is accepted again, with the same hash.
	m2, _, err := s.PutTar(ctx, bytes.NewReader(out.Bytes()), content.PutOptions{ExpectSHA256: content.ManifestHash(m)})
	if err != nil {
		t.Fatalf("PutTar of WriteTar output: %v", err)
	}
	if diff := cmp.Diff(m, m2); diff != "" {
		t.Errorf("second manifest (-first +second):\n%s", diff)
	}
}

func TestPutTarExpectSHA256(t *testing.T) {
	s := newStore(t)
	data := makeTar(t, file("a", "1"))
	_, _, err := s.PutTar(t.Context(), bytes.NewReader(data), content.PutOptions{ExpectSHA256: sum([]byte("nope"))})
	wantKind(t, err, deploy.KindInvalid)
	if !strings.Contains(err.Error(), "manifest hash mismatch") {
		t.Errorf("error %q should name the manifest hash mismatch", err)
	}
}

func TestManifestHash(t *testing.T) {
	a := deploy.ManifestFile{Path: "a", Size: 1, Mode: 0o644, SHA256: sum([]byte("a"))}
	b := deploy.ManifestFile{Path: "b", Size: 1, Mode: 0o755, SHA256: sum([]byte("b"))}
	m1 := &deploy.Manifest{Files: []deploy.ManifestFile{a, b}}
	m2 := &deploy.Manifest{Files: []deploy.ManifestFile{b, a}}
	if content.ManifestHash(m1) != content.ManifestHash(m2) {
		t.Errorf("hash depends on file order")
	}
	if m2.Files[0].Path != "b" {
		t.Errorf("ManifestHash reordered its argument")
	}
	b.Mode = 0o644
	if content.ManifestHash(m1) == content.ManifestHash(&deploy.Manifest{Files: []deploy.ManifestFile{a, b}}) {
		t.Errorf("hash ignores the mode")
	}
	if content.ManifestHash(nil) != content.ManifestHash(&deploy.Manifest{}) {
		t.Errorf("nil and empty manifests hash differently")
	}
	// Pinned: the canonical form is {"files":[{"path","size","mode","sha256"}]}.
	want := sum([]byte(`{"files":[{"path":"a","size":1,"mode":420,"sha256":"` + a.SHA256 + `"}]}`))
	if got := content.ManifestHash(&deploy.Manifest{Files: []deploy.ManifestFile{a}}); got != want {
		t.Errorf("ManifestHash = %s, want %s", got, want)
	}
}

func TestWriteTarErrors(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	b, err := s.Put(ctx, strings.NewReader("original bytes"), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok := deploy.ManifestFile{Path: "f", Size: b.Size, Mode: 0o644, SHA256: b.SHA256}
	tests := map[string]struct {
		files []deploy.ManifestFile
		kind  deploy.Kind
		msg   string
	}{
		"missing blob":  {[]deploy.ManifestFile{{Path: "g", SHA256: sum([]byte("absent"))}}, deploy.KindNotFound, `"g"`},
		"bad path":      {[]deploy.ManifestFile{{Path: "../g", SHA256: b.SHA256, Size: b.Size}}, deploy.KindInvalid, `"../g"`},
		"bad hash":      {[]deploy.ManifestFile{{Path: "g", SHA256: "../../etc/passwd"}}, deploy.KindInvalid, `"g"`},
		"size mismatch": {[]deploy.ManifestFile{{Path: "g", SHA256: b.SHA256, Size: 3}}, deploy.KindInternal, `manifest says 3`},
		"duplicate":     {[]deploy.ManifestFile{ok, ok}, deploy.KindInvalid, `"f": duplicate`},
		"mode bits":     {[]deploy.ManifestFile{{Path: "g", SHA256: b.SHA256, Size: b.Size, Mode: 0o4755}}, deploy.KindInvalid, `"g": mode`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := s.WriteTar(ctx, io.Discard, &deploy.Manifest{Files: tt.files})
			wantKind(t, err, tt.kind)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}

	// Bitrot: one flipped byte in a stored blob is detected on the way out.
	p := s.Path(b.SHA256)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("Original bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = s.WriteTar(ctx, io.Discard, &deploy.Manifest{Files: []deploy.ManifestFile{ok}})
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("WriteTar of a corrupted blob: %v, want a corruption error", err)
	}
}
