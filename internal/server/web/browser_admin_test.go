package web_test

// The content, devices, boot-image and security pages in Chromium, driven
// from TestConsoleInChromium (browser_test.go) with its browser and
// helpers.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// fakeDisk gives the agent's fake /sys one NVMe disk to gather.
func fakeDisk(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "sys", "block", "nvme0n1", "device")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "sys", "block", "nvme0n1", "size"), []byte("500118192\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "model"), []byte("KXG60ZNV256G TOSHIBA\n"), 0o644)
}

// chromeHelpers are TestConsoleInChromium's helpers.
type chromeHelpers struct {
	bctx     context.Context
	run      func(what string, actions ...chromedp.Action[chromedp.Void])
	visit    func(path string)
	waitText func(sel, want string)
	shot     func(name string) []byte
}

// consoleAdminPages, as an admin: create a content item and upload a
// version through the form (progress seen), then the devices, boot-image
// and security pages. It returns the item's ID.
func consoleAdminPages(t *testing.T, e *env, h chromeHelpers) string {
	t.Helper()
	ctx := context.Background()
	h.visit("/content")
	h.run("create a content item",
		chromedp.Click(chromedp.CSS(`#new-content summary`)),
		chromedp.SendKeys(chromedp.CSS(`#content-new-form input[name="name"]`), "Chromium upload"),
		chromedp.SetValue(chromedp.CSS(`#content-new-form select[name="purpose"]`), "Application"),
		chromedp.SetValue(chromedp.CSS(`#content-new-form select[name="type"]`), "File"),
		chromedp.Click(chromedp.CSS(`#content-new-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#upload-form`)))
	h.waitText("main", "Created Chromium upload")

	// A 64 MiB file: big enough for several progress events on loopback.
	data := make([]byte, 64<<20)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "setup.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	// Every text the progress line shows is kept in sessionStorage, which
	// outlives upload.js's move to the item page when the upload is done.
	h.run("watch the progress line", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
			sessionStorage.setItem("imprintProgress", "[]");
			var el = document.getElementById("upload-text");
			new MutationObserver(function () {
				var seen = JSON.parse(sessionStorage.getItem("imprintProgress"));
				seen.push(el.textContent + " | bar " + document.getElementById("upload-progress").value);
				sessionStorage.setItem("imprintProgress", JSON.stringify(seen));
			}).observe(el, {childList: true, characterData: true, subtree: true});
			return true;
		})()`))
		return err
	}))
	h.run("upload a version",
		chromedp.SendKeys(chromedp.CSS(`#upload-form input[name="installationCommandLine"]`), "setup.bin /quiet"),
		chromedp.SendKeys(chromedp.CSS(`#upload-form input[name="installationSuccessCodes"]`), "0,3010"),
		chromedp.SetUploadFiles(chromedp.CSS(`#upload-form input[type="file"]`), []string{file}),
		chromedp.Click(chromedp.CSS(`#upload-form button[type="submit"]`)))
	h.waitText("main", "Version 1 stored")
	h.shot("content-item")
	raw, err := chromedp.Run(h.bctx, chromedp.Evaluate[string](`sessionStorage.getItem("imprintProgress") || "[]"`))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	json.Unmarshal([]byte(raw), &seen)
	progress := 0
	for _, s := range seen {
		if strings.Contains(s, " of 64.0 MiB (") {
			progress++
		}
	}
	t.Logf("upload progress lines seen: %d (%q … )", progress, seen[:min(len(seen), 4)])
	if progress == 0 {
		t.Errorf("the upload showed no progress (\"N of 64.0 MiB (P%%)\"); the progress line showed: %q", seen)
	}
	items, err := e.srv.Store().ContentItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var item *deploy.ContentItem
	for _, it := range items {
		if it.Name == "Chromium upload" {
			item = it
		}
	}
	if item == nil || len(item.Versions) != 1 || item.Versions[0].SHA256 != hex.EncodeToString(sum[:]) ||
		deploy.Str(item.Versions[0].InstallationCommandLine) != "setup.bin /quiet" {
		t.Fatalf("the uploaded version is not stored as sent: %+v", item)
	}
	consoleFolderUpload(t, e, h) // browser_folder_test.go

	// Devices: the machine the agent ran on, with what it gathered.
	h.visit("/devices")
	h.waitText("table.devices", "7HX2Q93")
	h.waitText("table.devices", "OptiPlex 7090")
	h.shot("devices")
	h.run("open the device", chromedp.Click(chromedp.CSS(`table.devices tbody a[href^="/devices/"]`)), chromedp.WaitVisible(chromedp.CSS(`#next-boot`)))
	h.waitText("dd.disks", "nvme0n1: 238.5 GiB (KXG60ZNV256G TOSHIBA)")
	h.run("set next boot to deploy", chromedp.SetValue(chromedp.CSS(`#next-boot select`), "deploy"))
	h.waitText("main", "will next boot: deploy")
	h.shot("device")
	consoleBootImageBuild(t, e, h)
	for _, p := range []string{"/security", "/security/sessions", "/security/tokens", "/security/audit"} {
		h.visit(p)
		h.shot(strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-"))
	}
	h.visit("/security/tokens")
	h.run("create an admin token",
		chromedp.SendKeys(chromedp.CSS(`#token-create-form input[name="name"]`), "browser-test"),
		chromedp.Click(chromedp.CSS(`#token-create-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret`)))
	return item.ID
}

// gatedBuild is a boot image build for the console's job (the test's
// Config.BuildBootImage): it writes the lines the test sends and ends
// when the test says so. It stands in for bootimage.BuildDebian, which
// downloads from Debian, only to test the console's job and page.
type gatedBuild struct {
	lines   chan string
	release chan error
}

func newGatedBuild() *gatedBuild {
	return &gatedBuild{lines: make(chan string), release: make(chan error)}
}

func (g *gatedBuild) run(ctx context.Context, log io.Writer) error {
	fmt.Fprintln(log, "fetching linux-image-amd64")
	for {
		select {
		case l := <-g.lines:
			fmt.Fprintln(log, l)
		case err := <-g.release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// consoleBootImageBuild, as an admin: start a boot image build on the
// boot images page and watch its log and state change without a reload.
func consoleBootImageBuild(t *testing.T, e *env, h chromeHelpers) {
	t.Helper()
	h.visit("/bootimages")
	h.run("start a boot image build", chromedp.Click(chromedp.CSS(`#build-form button[type="submit"]`)))
	h.waitText("#build-state", "running")
	h.waitText("#build-log", "fetching linux-image-amd64")
	h.run("mark the page", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.imprintBuildMarker = true`))
		return err
	}))
	e.build.lines <- "unpacking linux-image-6.12.9-amd64"
	h.waitText("#build-log", "unpacking linux-image-6.12.9-amd64")
	if live, _ := chromedp.Run(h.bctx, chromedp.Evaluate[bool](`window.imprintBuildMarker === true`)); !live {
		t.Error("the build's log line appeared only after a reload")
	}
	h.shot("bootimages")
	e.build.release <- nil
	h.waitText("#build-state", "succeeded") // the page reloads itself when the build ends
	h.waitText("#build-log", "unpacking linux-image-6.12.9-amd64")
}

// viewerRefusals, as a viewer: every change the console has, posted from
// the page with the viewer's own session and CSRF token, is refused by
// the server with 403 and changes nothing. It returns the paths tried.
func viewerRefusals(t *testing.T, e *env, h chromeHelpers, itemID, tsID string) []string {
	t.Helper()
	ctx := context.Background()
	runs, _ := e.srv.Store().Runs(ctx, deploy.RunFilter{})
	devs, _ := e.srv.Store().Devices(ctx)
	if len(runs) == 0 || len(devs) == 0 {
		t.Fatalf("no run (%d) or device (%d) to try changes on", len(runs), len(devs))
	}
	paths := []string{
		"/content/new", "/content/" + itemID + "/versions/upload", "/content/" + itemID + "/versions/1/status",
		"/devices/" + devs[0].ID + "/nextboot", "/runs/" + runs[0].ID + "/cancel",
		"/ts/import", "/ts/new", "/ts/" + tsID + "/versions/1/status",
		"/security/anonymous", "/security/passcode", "/security/passcode/generate", "/security/passcode/rotate",
		"/security/passcode/clear", "/security/sessions/revoke", "/security/tokens", "/security/audit/verify",
		"/bootimages/build",
	}
	h.visit("/content/" + itemID)
	if n, _ := chromedp.Run(h.bctx, chromedp.Evaluate[int](`document.querySelectorAll("#upload-form, form.status-form, #content-new-form").length`)); n != 0 {
		t.Errorf("the viewer's item page shows %d change forms", n)
	}
	list, _ := json.Marshal(paths)
	js := fmt.Sprintf(`(async function () {
		var csrf = document.querySelector('form.who input[name="csrf"]').value;
		var out = {};
		for (const p of %s) {
			var r = await fetch(p, {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"},
				body: "nextBoot=deploy&status=Deprecated&on=true&name=x&passcode=correct-horse-battery&all=1"});
			out[p] = r.status;
		}
		return JSON.stringify(out);
	})()`, list)
	tctx, cancel := context.WithTimeout(h.bctx, 60*time.Second)
	defer cancel()
	raw, err := chromedp.Run(tctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("viewer's changes: %v", err)
	}
	var got map[string]int
	json.Unmarshal([]byte(raw), &got)
	for _, p := range paths {
		if got[p] != 403 {
			t.Errorf("viewer POST %s: %d, want 403 from the server", p, got[p])
		}
	}
	if st, _ := e.admin.PasscodeStatus(ctx); st.Set && st.Generated {
		t.Error("a viewer's refused request generated a passcode")
	}
	if r, _ := e.srv.Store().Run(ctx, runs[0].ID); r.State == deploy.RunCanceled {
		t.Error("a viewer's refused request canceled a run")
	}
	return paths
}
