package web_test

// Folder versions uploaded from Chromium (static/upload.js builds the tar
// stream as a Blob of headers and File references).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// watchProgress keeps every text of the upload progress line in
// sessionStorage[key] (it outlives upload.js's move to the item page).
func watchProgress(h chromeHelpers, key string) {
	h.run("watch the progress line", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(function () {
			sessionStorage.setItem(%[1]q, "[]");
			var el = document.getElementById("upload-text");
			new MutationObserver(function () {
				var seen = JSON.parse(sessionStorage.getItem(%[1]q));
				seen.push(el.textContent + " | bar " + document.getElementById("upload-progress").value);
				sessionStorage.setItem(%[1]q, JSON.stringify(seen));
			}).observe(el, {childList: true, characterData: true, subtree: true});
			return true;
		})()`, key)))
		return err
	}))
}

// storedManifest is the manifest of version no of item id, as path ->
// "size sha256".
func storedManifest(t *testing.T, e *env, id string, no int) map[string]string {
	t.Helper()
	item, err := e.srv.Store().ContentItem(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range item.Versions {
		if v.VersionNo == no && v.Manifest != nil {
			got := map[string]string{}
			for _, f := range v.Manifest.Files {
				got[f.Path] = fmt.Sprintf("%d %s", f.Size, f.SHA256)
			}
			return got
		}
	}
	t.Fatalf("item %s has no version %d with a manifest: %+v", id, no, item.Versions)
	return nil
}

func sizeSum(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%d %s", len(b), hex.EncodeToString(s[:]))
}

// consoleFolderUpload uploads a Folder version twice: a folder picked in
// the form (chromedp gives the directory input a real directory), and
// File objects made in the page with long and non-ASCII paths, through
// upload.js's tar builder. The stored manifests must match the files.
func consoleFolderUpload(t *testing.T, e *env, h chromeHelpers) {
	t.Helper()
	ctx := context.Background()
	item, err := e.admin.CreateContentItem(ctx, deploy.ContentItem{Name: "Chromium folder", Type: deploy.ContentFolder, Purpose: deploy.PurposeDriverPack})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "drivers")
	big := make([]byte, 48<<20+123) // several progress events; not a multiple of 512
	rand.Read(big)
	want := map[string][]byte{
		"readme.txt":               []byte("Latitude drivers\n"),
		"net/e1000e/e1000e.inf":    []byte(strings.Repeat("[Version]\r\n", 77)),
		"storage/big/firmware.bin": big,
		"empty.cat":                {},
	}
	for p, b := range want {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.visit("/content/" + item.ID)
	watchProgress(h, "imprintFolderProgress")
	h.run("pick the folder", chromedp.SetUploadFiles(chromedp.CSS(`#upload-form input[webkitdirectory]`), []string{dir}))
	// Chromium lists the directory after SetUploadFiles returns: wait for
	// the input's files (each with its path under the picked folder).
	var paths string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		paths, err = chromedp.Run(h.bctx, chromedp.Evaluate[string](
			`JSON.stringify(Array.from(document.querySelector("#upload-form input[webkitdirectory]").files).map(function (f) { return f.webkitRelativePath; }).sort())`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(paths, `"drivers/`) == len(want) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("the picked folder's files in the page: %s", paths)
	h.run("upload the folder", chromedp.Click(chromedp.CSS(`#upload-form button[type="submit"]`)))
	h.waitText("main", "Version 1 stored")
	h.shot("content-folder")
	got := storedManifest(t, e, item.ID, 1)
	for p, b := range want {
		if got[p] != sizeSum(b) {
			t.Errorf("picked folder: stored %q = %q, want %q", p, got[p], sizeSum(b))
		}
	}
	if len(got) != len(want) {
		t.Errorf("picked folder: stored %d files %v, want %d", len(got), slices.Sorted(mapKeys(got)), len(want))
	}
	raw, err := chromedp.Run(h.bctx, chromedp.Evaluate[string](`sessionStorage.getItem("imprintFolderProgress") || "[]"`))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	json.Unmarshal([]byte(raw), &seen)
	progress := 0
	for _, s := range seen {
		if strings.Contains(s, " of 48.0 MiB (") {
			progress++
		}
	}
	t.Logf("folder upload progress lines seen: %d (%q … )", progress, seen[:min(len(seen), 4)])
	if progress == 0 {
		t.Errorf("the folder upload showed no progress (\"N of 48.0 MiB (P%%)\"); the progress line showed: %q", seen)
	}

	// Paths the ustar name field cannot hold (longer than 100 bytes, not
	// ASCII) go in pax headers; File objects made in the page stand for
	// picked files (their webkitRelativePath set as the browser would).
	long := "Dell/Latitude 7440/" + strings.Repeat("Intel Wireless Bluetooth ", 5) + "22.60/x64/ibtusb.inf"
	inPage := map[string]string{
		long:                      "[Version]\nSignature=\"$WINDOWS NT$\"\n",
		"Lenovo/ThinkPad ✓/é.sys": strings.Repeat("é", 300),
		"a.txt":                   "",
	}
	js, _ := json.Marshal(inPage)
	h.visit("/content/" + item.ID)
	status, err := chromedp.Run(h.bctx, chromedp.Evaluate[string](fmt.Sprintf(`(function () {
		var want = %s, files = [];
		Object.keys(want).forEach(function (p) {
			var f = new File([want[p]], p.split("/").pop(), {lastModified: 1700000000000});
			Object.defineProperty(f, "webkitRelativePath", {value: "picked/" + p});
			files.push(f);
		});
		var tar = window.imprintFolderTar(files);
		var form = document.getElementById("upload-form");
		return fetch(form.action + "?status=Active", {method: "POST", body: tar,
			headers: {"X-CSRF-Token": form.getAttribute("data-csrf"), "Content-Type": "application/octet-stream"}})
			.then(function (r) { return r.text().then(function (t) { return r.status + " " + t; }); });
	})()`, js), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, "201 ") {
		t.Fatalf("in-page folder tar upload: %s", status)
	}
	got = storedManifest(t, e, item.ID, 2)
	for p, b := range inPage {
		if got[p] != sizeSum([]byte(b)) {
			t.Errorf("in-page folder: stored %q = %q, want %q", p, got[p], sizeSum([]byte(b)))
		}
	}
	if len(got) != len(inPage) {
		t.Errorf("in-page folder: stored %v, want %d files", slices.Sorted(mapKeys(got)), len(inPage))
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
