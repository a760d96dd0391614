package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/cli"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

// compatDir holds the DeployR exports every import must accept.
const compatDir = "../../../shared/compat/deployr"

// startServer runs the real server in-process on a fresh data directory with
// loopback listeners on free ports and returns the data directory.
func startServer(t *testing.T) string {
	t.Helper()
	return servertest.Start(t, nil).DataDir()
}

// result is the outcome of one imprint invocation.
type result struct {
	code           int
	stdout, stderr string
}

// imprint runs the command line against the data directory dir.
func imprint(t *testing.T, dir string, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"--data", dir}, args...), stdin, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// ok runs imprint and fails the test unless it exits 0.
func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := imprint(t, dir, nil, args...)
	if r.code != 0 {
		t.Fatalf("imprint %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// okJSON runs imprint --json and decodes its output into v.
func okJSON(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	out := ok(t, dir, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("imprint %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want it to contain %q", what, got, w)
		}
	}
}

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

type item struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Versions []struct {
		VersionNo   int    `json:"versionNo"`
		ContentSize int64  `json:"contentSize"`
		SHA256      string `json:"sha256"`
	} `json:"versions"`
}

type version struct {
	VersionNo   int     `json:"versionNo"`
	Status      string  `json:"status"`
	ContentSize int64   `json:"contentSize"`
	SHA256      string  `json:"sha256"`
	ExternalURL *string `json:"externalURL"`
	Install     *string `json:"installationCommandLine"`
	Codes       *string `json:"installationSuccessCodes"`
}

func TestContentEndToEnd(t *testing.T) {
	dir := startServer(t)
	src := t.TempDir()

	// File item: upload, inspect, download.
	var app item
	okJSON(t, dir, &app, "content", "add", "--name", "7-Zip", "--type", "File", "--purpose", "Application", "--description", "archiver", "--tag", "tools")
	if app.ID == "" || app.Name != "7-Zip" {
		t.Fatalf("created item = %+v", app)
	}
	data := randomFile(t, filepath.Join(src, "7z.msi"), 3<<20+17)
	sum := sha256.Sum256(data)
	var v version
	okJSON(t, dir, &v, "content", "version", app.ID, filepath.Join(src, "7z.msi"),
		"--status", "Active", "--install-cmd", "msiexec /i 7z.msi /qn", "--success-codes", "0,3010")
	want := version{VersionNo: 1, Status: "Active", ContentSize: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		Install: strPtr("msiexec /i 7z.msi /qn"), Codes: strPtr("0,3010")}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
	// Without --json the upload ends with one summary line on stderr.
	r := imprint(t, dir, nil, "content", "version", app.ID, filepath.Join(src, "7z.msi"))
	if r.code != 0 {
		t.Fatalf("second version: %s", r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "added version 2 of "+app.ID)
	wantContains(t, "stderr", r.stderr, "uploaded 3.0 MiB in ")

	got := filepath.Join(t.TempDir(), "out.msi")
	ok(t, dir, "content", "get", app.ID, "--version", "1", "-o", got)
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, data) {
		t.Errorf("downloaded file differs from the upload (err %v, %d bytes)", err, len(b))
	}

	// Folder item: a tree streamed as tar, downloaded back as tar.
	var drv item
	okJSON(t, dir, &drv, "content", "add", "--name", "Dell drivers", "--type", "Folder", "--purpose", "DriverPack")
	tree := filepath.Join(src, "drivers")
	files := map[string][]byte{
		"net/e1000.inf": []byte("[Version]\n"),
		"net/e1000.sys": randomFile(t, filepath.Join(tree, "net/e1000.sys"), 200_000),
		"readme.txt":    []byte("Dell\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tree, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	okJSON(t, dir, &v, "content", "version", drv.ID, tree, "--manufacturer", "Dell", "--model", "Latitude 7440")
	if v.VersionNo != 1 {
		t.Errorf("folder version = %+v", v)
	}
	var tarball bytes.Buffer
	r = imprint(t, dir, nil, "content", "get", drv.ID)
	if r.code != 0 {
		t.Fatalf("content get folder: %s", r.stderr)
	}
	tarball.WriteString(r.stdout)
	gotFiles := map[string][]byte{}
	tr := tar.NewReader(&tarball)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("download is not a tar stream: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			gotFiles[h.Name] = b
		}
	}
	if diff := cmp.Diff(files, gotFiles); diff != "" {
		t.Errorf("folder round trip (-want +got):\n%s", diff)
	}

	// A folder with a symbolic link is refused before anything is sent.
	if err := os.Symlink("readme.txt", filepath.Join(tree, "link.txt")); err != nil {
		t.Fatal(err)
	}
	r = imprint(t, dir, nil, "content", "version", drv.ID, tree)
	if r.code != 1 {
		t.Errorf("symlink upload: exit %d, want 1", r.code)
	}
	wantContains(t, "stderr", r.stderr, "imprint: content version: folder: link.txt is a symbolic link")

	// URL item.
	var iso item
	okJSON(t, dir, &iso, "content", "add", "--name", "Debian", "--type", "URL", "--purpose", "OperatingSystem")
	okJSON(t, dir, &v, "content", "version", iso.ID, "https://example.org/debian.iso", "--sha256", strings.Repeat("ab", 32))
	if v.ExternalURL == nil || *v.ExternalURL != "https://example.org/debian.iso" || v.SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("URL version = %+v", v)
	}

	// Listing and showing.
	out := ok(t, dir, "content", "list")
	wantContains(t, "content list", out, "ID", "NAME", "PURPOSE", app.ID, "7-Zip", "Application", drv.ID, "Dell drivers", "DriverPack", iso.ID)
	out = ok(t, dir, "content", "show", app.ID)
	wantContains(t, "content show", out, "Name:", "7-Zip", "archiver", "VERSION", "Active", "3.0 MiB", want.SHA256[:12])
	out = ok(t, dir, "content", "show", drv.ID, "--version", "1")
	wantContains(t, "content show --version", out, "Manufacturer:", "Dell", "Latitude 7440", "Files:")

	// Deleting.
	ok(t, dir, "content", "rm", app.ID, "--version", "1")
	var after item
	okJSON(t, dir, &after, "content", "show", app.ID)
	if len(after.Versions) != 1 || after.Versions[0].VersionNo != 2 {
		t.Errorf("after deleting version 1: %+v", after.Versions)
	}
	ok(t, dir, "content", "rm", app.ID)
	r = imprint(t, dir, nil, "content", "show", app.ID)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "imprint: content show: ") {
		t.Errorf("show of a deleted item: exit %d, stderr %q", r.code, r.stderr)
	}
}

func strPtr(s string) *string { return &s }

func compatFiles(t *testing.T, kind string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(compatDir, kind, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no compat files in %s/%s: %v", compatDir, kind, err)
	}
	return files
}

func TestStepdefEndToEnd(t *testing.T) {
	dir := startServer(t)
	var builtins []item
	okJSON(t, dir, &builtins, "stepdef", "list")
	if len(builtins) == 0 {
		t.Fatal("no built-in step definitions")
	}
	for _, f := range compatFiles(t, "stepdefinitions") {
		var d item
		okJSON(t, dir, &d, "stepdef", "import", f)
		var src struct{ ID, Name string }
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &src); err != nil {
			t.Fatal(err)
		}
		if !strings.EqualFold(d.ID, src.ID) || d.Name != src.Name {
			t.Errorf("%s: imported as %s %q, want %s %q", f, d.ID, d.Name, src.ID, src.Name)
		}
		out := ok(t, dir, "stepdef", "show", d.ID)
		wantContains(t, "stepdef show", out, src.Name, "Options of version")
	}
	out := ok(t, dir, "stepdef", "list")
	wantContains(t, "stepdef list", out, "ID", "NAME", "Readiness Checker")

	r := imprint(t, dir, strings.NewReader(`{"id":`), "stepdef", "import", "-")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "imprint: stepdef import: -: ") {
		t.Errorf("malformed import: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTaskSequenceEndToEnd(t *testing.T) {
	dir := startServer(t)
	for _, f := range compatFiles(t, "stepdefinitions") {
		ok(t, dir, "stepdef", "import", f)
	}
	for _, f := range compatFiles(t, "tasksequences") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var res struct {
				TaskSequence struct{ ID, Name string } `json:"taskSequence"`
				Warnings     []json.RawMessage         `json:"warnings"`
			}
			okJSON(t, dir, &res, "ts", "import", f)
			id := res.TaskSequence.ID

			// Export equals the file as generic JSON.
			orig, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			exported := ok(t, dir, "ts", "export", id)
			var want, got any
			if err := json.Unmarshal(orig, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(exported), &got); err != nil {
				t.Fatalf("export is not JSON: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("export differs from the imported file (-file +export):\n%s", diff)
			}
			outFile := filepath.Join(t.TempDir(), "ts.json")
			ok(t, dir, "ts", "export", id, "-o", outFile)
			if b, _ := os.ReadFile(outFile); string(b) != exported {
				t.Errorf("export -o wrote something else than export to stdout")
			}

			out := ok(t, dir, "ts", "show", id)
			wantContains(t, "ts show", out, res.TaskSequence.Name, "Version ")
			r := imprint(t, dir, nil, "ts", "validate", f)
			if r.code != 0 {
				t.Errorf("validate of a compat file: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			wantContains(t, "ts validate", r.stdout, "is valid")
			r = imprint(t, dir, nil, "ts", "validate", id)
			if r.code != 0 {
				t.Errorf("validate of the stored sequence by id: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	out := ok(t, dir, "ts", "list")
	wantContains(t, "ts list", out, "ID", "NAME", "Module - App Installs")
}

func TestTaskSequenceValidateMalformed(t *testing.T) {
	dir := startServer(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"id":"x","versions":[{"steps":[`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := imprint(t, dir, nil, "ts", "validate", bad)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stderr", r.stderr, "imprint: ts validate: "+bad+": ")
	if n := strings.Count(r.stderr, "\n"); n < 1 {
		t.Errorf("stderr = %q", r.stderr)
	}

	// A well-formed document whose step names an unknown step type.
	unknown := filepath.Join(t.TempDir(), "unknown.json")
	doc := `{"id":"5d8f0c2e-1111-4222-8333-944455556666","name":"Bad","description":null,"architecture":"amd64",
	 "versions":[{"id":"5d8f0c2e-1111-4222-8333-944455556667","taskSequenceId":"5d8f0c2e-1111-4222-8333-944455556666",
	 "versionNo":1,"status":"Active","description":null,"steps":[{"id":"5d8f0c2e-1111-4222-8333-944455556668",
	 "name":"Mystery","isGroup":false,"typeId":"not-a-type","settings":{},"contentItems":{},"enabled":true,
	 "continueOnError":false,"condition":"{\"operator\":\"and\",\"items\":[{\"field\":\"A\",\"operator\":\"nope\"}]}"}]}],
	 "versionsCount":1,"createdDate":0,"lastModifiedDate":0}`
	if err := os.WriteFile(unknown, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r = imprint(t, dir, nil, "ts", "validate", unknown)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "Errors (", "Mystery")
	wantContains(t, "stderr", r.stderr, "imprint: ts validate: "+unknown+": ")

	// Neither a file nor an id (the server's 400), nor a stored id (404).
	for _, arg := range []string{"no-such-id-or-file", "5d8f0c2e-1111-4222-8333-94445555ffff"} {
		r = imprint(t, dir, nil, "ts", "validate", arg)
		if r.code != 1 || !strings.Contains(r.stderr, "neither a file nor a stored task sequence") {
			t.Errorf("validate of %s: exit %d, stderr %q", arg, r.code, r.stderr)
		}
	}
}

func TestTaskSequenceNewFromTemplate(t *testing.T) {
	dir := startServer(t)
	out := ok(t, dir, "ts", "templates")
	wantContains(t, "ts templates", out, "TEMPLATE", "linux-bare-metal")

	var res struct {
		TaskSequence struct{ ID, Name string } `json:"taskSequence"`
	}
	okJSON(t, dir, &res, "ts", "new", "--template", "linux-bare-metal", "--name", "Lab Linux")
	if res.TaskSequence.ID == "" || res.TaskSequence.Name != "Lab Linux" {
		t.Fatalf("created %+v", res.TaskSequence)
	}
	out = ok(t, dir, "ts", "show", res.TaskSequence.ID)
	wantContains(t, "ts show", out, "Lab Linux", "Version 1")
	ok(t, dir, "ts", "rm", res.TaskSequence.ID)
	r := imprint(t, dir, nil, "ts", "show", res.TaskSequence.ID)
	if r.code != 1 {
		t.Errorf("show after rm: exit %d", r.code)
	}

	r = imprint(t, dir, nil, "ts", "new", "--template", "no-such-template", "--name", "X")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "imprint: ts new: ") {
		t.Errorf("unknown template: exit %d, stderr %q", r.code, r.stderr)
	}
}
