package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deployrjson"
)

// sameTokens fails unless got has the JSON tokens of want, in the same
// order and with the same string escapes (layout and a BOM aside).
func sameTokens(t *testing.T, want, got []byte) {
	t.Helper()
	w, err := deployrjson.Tokens(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := deployrjson.Tokens(got)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("export differs from the imported file, token by token (-file +export):\n%s", d)
	}
}

// TestCompatExportsAreTokenIdentical: for every shared export, export after
// import gives the file's JSON tokens, in order, with its escapes — so an
// admin keeping exports in git sees no diff. Content items come back
// without Imprint's awaiting-content state.
func TestCompatExportsAreTokenIdentical(t *testing.T) {
	dir := startServer(t)
	for _, kind := range []struct{ sub, cmd string }{
		{"stepdefinitions", "stepdef"}, {"contentitems", "content"}, {"tasksequences", "ts"},
	} {
		for _, f := range compatFiles(t, kind.sub) {
			t.Run(filepath.Base(f), func(t *testing.T) {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				var id struct{ ID string }
				if err := json.Unmarshal(src, &id); err != nil {
					t.Fatal(err)
				}
				ok(t, dir, kind.cmd, "import", f)
				sameTokens(t, src, []byte(ok(t, dir, kind.cmd, "export", strings.ToLower(id.ID))))
			})
		}
	}
}

// TestReimportNeverOverwrites: importing an id that exists is refused with
// a message naming both ways out; --new-version appends, --clone copies.
func TestReimportNeverOverwrites(t *testing.T) {
	dir := startServer(t)
	tsFile := filepath.Join(compatDir, "tasksequences", "module-app-installs-0b226848.json")
	sdFile := filepath.Join(compatDir, "stepdefinitions", "readiness-checker-7e12116e.json")
	ciFile := filepath.Join(compatDir, "contentitems", "custom-step-definitions-scripts-d819ff51.json")
	for _, c := range []struct{ cmd, file, id string }{
		{"ts", tsFile, "0b226848-2b30-4863-ab1c-c8bbd66e1c42"},
		{"stepdef", sdFile, "7e12116e-6c80-4e28-abef-1b9219b8a3e0"},
		{"content", ciFile, "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab"},
	} {
		t.Run(c.cmd, func(t *testing.T) {
			ok(t, dir, c.cmd, "import", c.file)
			before := ok(t, dir, c.cmd, "export", c.id)
			r := imprint(t, dir, nil, c.cmd, "import", c.file)
			if r.code != 1 {
				t.Fatalf("second import: exit %d, want 1", r.code)
			}
			wantContains(t, "stderr", r.stderr, c.id, "already exists", "--new-version", "--clone")
			if after := ok(t, dir, c.cmd, "export", c.id); after != before {
				t.Error("the refused import changed the stored document")
			}

			var doc struct {
				ID       string `json:"id"`
				Versions []struct {
					ID        string `json:"id"`
					VersionNo int    `json:"versionNo"`
				} `json:"versions"`
			}
			ok(t, dir, c.cmd, "import", "--new-version", c.file)
			if err := json.Unmarshal([]byte(ok(t, dir, c.cmd, "export", c.id)), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Versions) != 2 || doc.Versions[0].VersionNo != 1 || doc.Versions[1].VersionNo != 2 ||
				doc.Versions[0].ID == doc.Versions[1].ID {
				t.Errorf("after --new-version: versions %+v, want 1 and 2 with distinct ids", doc.Versions)
			}
			var v1, v2 struct{ Versions []json.RawMessage }
			json.Unmarshal([]byte(before), &v1)
			json.Unmarshal([]byte(ok(t, dir, c.cmd, "export", c.id)), &v2)
			if len(v2.Versions) == 0 || string(v1.Versions[0]) != string(v2.Versions[0]) {
				t.Error("--new-version changed the first version")
			}

			var clone struct{ ID string }
			out := ok(t, dir, c.cmd, "import", "--clone", c.file, "--json")
			if c.cmd == "ts" {
				var res struct{ TaskSequence struct{ ID string } }
				json.Unmarshal([]byte(out), &res)
				clone.ID = res.TaskSequence.ID
			} else {
				json.Unmarshal([]byte(out), &clone)
			}
			if clone.ID == "" || clone.ID == c.id {
				t.Errorf("--clone: id %q, want a new one", clone.ID)
			}
			r = imprint(t, dir, nil, c.cmd, "import", "--clone", "--new-version", c.file)
			if r.code != 2 && r.code != 1 {
				t.Errorf("--clone with --new-version: exit %d", r.code)
			}
		})
	}
}

// TestContentImportAwaitsContent: a content-item export arrives with every
// version's metadata and no bytes; each version shows as awaiting content
// until supplied, the export's hash is checked, and a sequence using an
// awaiting version validates with a warning.
func TestContentImportAwaitsContent(t *testing.T) {
	dir := startServer(t)
	const id = "c4a1b2c3-0000-4000-8000-000000000001"
	out := ok(t, dir, "content", "import", filepath.Join("testdata", "content-item-versions.json"))
	wantContains(t, "import", out, id, "with 2 versions", "version 1 is awaiting content", "imprint content version "+id+" PATH --version 2")
	wantContains(t, "show", ok(t, dir, "content", "show", id), "awaiting content", "Hand-made & <tools>")
	var v struct {
		InstallationCommandLine string   `json:"installationCommandLine"`
		Tags                    []string `json:"tags"`
	}
	okJSON(t, dir, &v, "content", "show", id, "--version", "1")
	if v.InstallationCommandLine != "setup.exe /q" || len(v.Tags) != 1 {
		t.Errorf("version 1 metadata lost: %+v", v)
	}

	// A sequence using awaiting version 2: valid, with a warning, and the
	// step cannot run.
	ts := filepath.Join("testdata", "ts-uses-content.json")
	r := imprint(t, dir, nil, "ts", "validate", ts)
	if r.code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "validate", r.stdout, `version 2 is awaiting content`, "CANNOT RUN  Install tools: ", "1 step cannot run.")

	tmp := t.TempDir()
	good := filepath.Join(tmp, "good.bin")
	bad := filepath.Join(tmp, "bad.bin")
	os.WriteFile(good, []byte("imprint test content\n"), 0o644)
	os.WriteFile(bad, []byte("something else\n"), 0o644)
	r = imprint(t, dir, nil, "content", "version", id, bad, "--version", "2")
	if r.code != 1 || !strings.Contains(r.stderr, "hash mismatch") {
		t.Errorf("wrong bytes for a hashed version: exit %d, stderr %q", r.code, r.stderr)
	}
	wantContains(t, "fill", ok(t, dir, "content", "version", id, good, "--version", "2"), "supplied the content of version 2")
	ok(t, dir, "content", "version", id, bad, "--version", "1") // no hash in the export: any bytes
	r = imprint(t, dir, nil, "content", "version", id, good, "--version", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "already has its content") {
		t.Errorf("second fill: exit %d, stderr %q", r.code, r.stderr)
	}
	if show := ok(t, dir, "content", "show", id); strings.Contains(show, "awaiting content") {
		t.Errorf("still awaiting after both were supplied:\n%s", show)
	}
	got := filepath.Join(tmp, "got.bin")
	ok(t, dir, "content", "get", id, "--version", "2", "-o", got)
	if b, _ := os.ReadFile(got); string(b) != "imprint test content\n" {
		t.Errorf("downloaded %q", b)
	}
	r = imprint(t, dir, nil, "ts", "validate", ts)
	if strings.Contains(r.stdout, "awaiting content") {
		t.Errorf("validate still reports awaiting content:\n%s", r.stdout)
	}

	// A Folder item of the shared corpus, filled with a directory.
	ci := "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab"
	ok(t, dir, "content", "import", filepath.Join(compatDir, "contentitems", "custom-step-definitions-scripts-d819ff51.json"))
	folder := filepath.Join(tmp, "scripts")
	os.MkdirAll(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "Check-Readiness.ps1"), []byte("exit 0\n"), 0o644)
	ok(t, dir, "content", "version", ci, folder, "--version", "1")
	if show := ok(t, dir, "content", "show", ci); strings.Contains(show, "awaiting content") {
		t.Errorf("folder still awaiting:\n%s", show)
	}
}

// TestValidateSaysWhatCannotRun: over the shared corpus, ts validate marks
// each step that cannot run with its reason and counts them; an
// In_Development sequence says so and how to make it runnable.
func TestValidateSaysWhatCannotRun(t *testing.T) {
	dir := startServer(t)
	for _, f := range compatFiles(t, "stepdefinitions") {
		ok(t, dir, "stepdef", "import", f)
	}
	bare := filepath.Join(compatDir, "tasksequences", "windows-bare-metal-from-cloud-github-8770d276.json")
	out := ok(t, dir, "ts", "validate", bare)
	wantContains(t, "validate", out,
		"CANNOT RUN  Customize - Configure Initial Variables: DeployR built-in step type 00000001-0000-0000-0000-000000000021 (Customize - Configure Initial Variables) is not supported by this server yet",
		"CANNOT RUN  Windows PE/Apply OS from Cloud: \"Apply operating system from cloud\" runs DeployR's own script from DeployR's built-in content, which Imprint does not ship, and Imprint's agent has no implementation of it yet",
		"CANNOT RUN  UI Modification/Customize - Configure Default Start Menu Layout: step definition 49ddc4a3-5ec3-480b-a609-fc380587b20c is not on this server",
		" steps cannot run.")
	// Format disk, Prepare OS and Reboot are implemented natively: the
	// DeployR script content their definitions name is not needed.
	for _, step := range []string{"Windows PE/Format disk", "Windows PE/Prepare OS", "Windows PE/Reboot"} {
		if strings.Contains(out, "CANNOT RUN  "+step+":") {
			t.Errorf("%s is marked CANNOT RUN:\n%s", step, out)
		}
	}
	if strings.Contains(out, "CANNOT RUN  Pre Reqs/Readiness Checker") && !strings.Contains(out, "d819ff51") {
		t.Errorf("Readiness Checker marked for another reason than its content:\n%s", out)
	}

	osconf := filepath.Join(compatDir, "tasksequences", "module-os-configuration-b09560a1.json")
	ok(t, dir, "ts", "import", osconf)
	const id = "b09560a1-ae6d-48c2-b3d1-5177ee89a53f"
	out = ok(t, dir, "ts", "validate", id)
	wantContains(t, "validate", out, "version 1 is In_Development", "imprint ts status "+id+" 1 Active")
	ok(t, dir, "ts", "status", id, "1", "Active")
	if out = ok(t, dir, "ts", "validate", id); strings.Contains(out, "In_Development") {
		t.Errorf("still In_Development after ts status:\n%s", out)
	}
}

// A DeployR export is untrusted input: a name carrying a terminal escape
// is shown escaped when the import reports it.
func TestImportReportEscapesNames(t *testing.T) {
	dir := startServer(t)
	doc := filepath.Join(t.TempDir(), "hostile.json")
	body := `{"id":"c4a1b2c3-0000-4000-8000-0000000000e5","name":"Tools\u001b]0;pwned\u0007","contentItemType":"File","contentItemPurpose":"Application","versions":[],"tags":[]}`
	if err := os.WriteFile(doc, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out := ok(t, dir, "content", "import", doc)
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("import printed a raw escape: %q", out)
	}
	wantContains(t, "import", out, `Tools\x1b]0;pwned\x07`)
}
