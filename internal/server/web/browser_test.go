package web_test

// The console in a real browser: Debian's chromium, headless, driven by
// chromedp. The server is the real one in-process; the run it shows is a
// real agent's, against the same server.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// chromium finds the browser. In `make test` (IMPRINT_TEST_REQUIRE=1) a
// missing browser fails the test; run by hand, it skips (testenv.Missing).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed: apt-get install chromium (make deps does)")
	return ""
}

// screenshotDir is where the pages' screenshots go.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("IMPRINT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "imprint-console-screens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serverSPKI is the base64 SHA-256 of the server certificate's public
// key: chromium trusts exactly that key (--ignore-certificate-errors-spki-list),
// not every certificate.
func serverSPKI(t *testing.T, e *env) string {
	t.Helper()
	conn, err := tls.Dial("tcp", e.srv.APIAddr().String(), &tls.Config{RootCAs: e.ca, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// gateStep is a command-line step that waits until the test creates its
// gate file, so the test sees each step in progress.
func gateStep(id, name, gate string) string {
	return fmt.Sprintf(`{"id":%q,"name":%q,"typeId":%q,"enabled":true,"settings":{"CommandLine":"while [ ! -e %s ]; do sleep 0.1; done"}}`,
		id, name, stepdefs.TypeRunCommandLine, gate)
}

// gateContentStep is a gateStep that first downloads a content item (the
// agent reports the bytes of that download). The working directory is
// set: the default, the content's folder, is the file itself for a File
// item (the agent then fails with "not a directory").
func gateContentStep(id, name, gate, content string) string {
	return fmt.Sprintf(`{"id":%q,"name":%q,"typeId":%q,"enabled":true,"settings":{"CommandLine":"while [ ! -e %s ]; do sleep 0.1; done","WorkingDirectory":"/"},"contentItems":{"Content":"%s:1"}}`,
		id, name, stepdefs.TypeRunCommandLine, gate, content)
}

func TestConsoleInChromium(t *testing.T) {
	exe := chromium(t)
	shots := screenshotDir(t)
	t.Logf("console screenshots: %s", shots)
	build := newGatedBuild()
	e := startWith(t, func(c *server.Config) { c.BuildBootImage = build.run })
	e.build = build
	ctx := context.Background()
	e.addUser(t, "root", "admin")
	e.addUser(t, "eve", "viewer")
	const passcode = "Correct-Horse-Battery-42"
	if _, err := e.admin.SetPasscode(ctx, passcode); err != nil {
		t.Fatal(err)
	}
	gates := t.TempDir()
	gate := func(n int) string { return filepath.Join(gates, fmt.Sprint("gate", n)) }
	const tsID = "7b2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
	item, err := e.admin.CreateContentItem(ctx, deploy.ContentItem{Name: "Lab image", Type: deploy.ContentFile, Purpose: deploy.PurposeOther})
	if err != nil {
		t.Fatal(err)
	}
	image := make([]byte, 8<<20)
	rand.Read(image)
	if _, err := e.admin.AddContentVersion(ctx, item.ID, deploy.ContentVersion{Status: deploy.StatusActive}, bytes.NewReader(image), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	doc := `{"id":"` + tsID + `","name":"Lab Linux","architecture":"Any","versions":[{"id":"8c3e4f5a-2b3c-4d4e-9f0a-1b2c3d4e5f60","taskSequenceId":"` + tsID +
		`","versionNo":1,"status":"Active","steps":[` +
		gateContentStep("9d4f5a6b-3c4d-4e5f-8a1b-2c3d4e5f6071", "Partition disk", gate(1), item.ID) + `,` +
		gateStep("ae5a6b7c-4d5e-4f6a-9b2c-3d4e5f607182", "Apply operating system", gate(2)) + `,` +
		gateStep("bf6b7c8d-5e6f-4a7b-8c3d-4e5f60718293", "Install drivers", gate(3)) + `,` +
		`{"id":"c07c8d9e-6f70-4b8c-9d4e-5f6071829304","name":"Only in WinPE","typeId":"` + stepdefs.TypeRunCommandLine +
		`","enabled":true,"settings":{"CommandLine":"false"},` +
		`"condition":"{\"operator\":\"and\",\"items\":[{\"field\":\"OSVERSION\",\"operator\":\"equals\",\"value\":\"WinPE\"}]}"}]}]}`
	if _, ferrs, err := e.admin.ImportTaskSequence(ctx, strings.NewReader(doc), client.ImportNew); err != nil || len(ferrs) > 0 {
		t.Fatalf("import: %v %v", err, ferrs)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", serverSPKI(t, e)),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}

	// Every console error, exception or failed load on any page fails the
	// test (a CSP violation is one).
	var mu sync.Mutex
	var consoleErrs []string
	page := ""
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				consoleErrs = append(consoleErrs, page+": "+m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, actions...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
			t.Fatalf("%s: %v; the page shows:\n%s", what, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		tctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitText polls the page until sel's text contains want.
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // a loaded machine running the whole suite
		for {
			s, _ := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||""`, sel)))
			if strings.Contains(s, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed %q; it shows:\n%s", sel, want, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// settled waits until the page has loaded and no upload form is about
	// to leave it: upload.js shows "Version N stored" and then navigates,
	// and a screenshot taken across that navigation fails with "Not
	// attached to an active page".
	settled := func() {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !document.querySelector("form[data-done=ok]")`))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page never settled: ready=%v err=%v", ok, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	shot := func(name string) []byte {
		t.Helper()
		settled()
		b, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	visit := func(path string) {
		t.Helper()
		mu.Lock()
		page = path
		mu.Unlock()
		run("open "+path, chromedp.Navigate(e.base+path), chromedp.WaitReady(chromedp.CSS("main")))
	}
	login := func(name string) {
		t.Helper()
		visit("/login")
		run("log in as "+name,
			chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), pw),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
		waitText("main", "Runs")
	}

	visit("/login")
	shot("login")
	// The collector sees errors: a probe must arrive before the test
	// relies on it.
	run("probe the console", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`console.error("imprint-console-probe"), true`))
		return err
	}))
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		got := slices.ContainsFunc(consoleErrs, func(m string) bool { return strings.Contains(m, "imprint-console-probe") })
		if got {
			consoleErrs = nil
		}
		mu.Unlock()
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a console.error never reached the collector: console errors would go unnoticed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	login("root")
	waitText("#live", "No machine is deploying now.")

	// A marker only this page load has: if it is still there after the
	// run, the dashboard updated without a reload.
	run("mark the page", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.imprintMarker = true`))
		return err
	}))

	// A real agent runs the sequence against the server.
	m, err := client.NewMachine(e.base, mustRead(t, server.CACertPath(e.srv.DataDir())))
	if err != nil {
		t.Fatal(err)
	}
	agentOut := &lockedBuf{}
	root := t.TempDir() // the machine's /sys as the agent gathers it
	dmi := filepath.Join(root, "sys", "class", "dmi", "id")
	os.MkdirAll(dmi, 0o755)
	for f, v := range map[string]string{"sys_vendor": "Dell Inc.", "product_name": "OptiPlex 7090",
		"product_serial": "7HX2Q93", "product_uuid": "4c4c4544-0048-5810-8032-b7c04f513933"} {
		os.WriteFile(filepath.Join(dmi, f), []byte(v+"\n"), 0o644)
	}
	fakeDisk(t, root) // conadmin: a disk for the devices page
	a := &agent.Agent{Client: m, Console: agent.NewConsole(strings.NewReader(""), agentOut), StateDir: t.TempDir(),
		TS: tsID, Vars: map[string]string{"Passcode": passcode},
		Gatherer: agent.Gatherer{Root: root, Addrs: func() ([]string, error) { return nil, nil }},
		Power:    func(context.Context, string) error { return nil }}
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(ctx, agent.State{}, false) }()
	defer func() {
		for i := 1; i <= 3; i++ {
			os.WriteFile(gate(i), nil, 0o644) // never leave the agent waiting
		}
	}()

	waitText("#live", "Partition disk")
	waitText("#live", "1 of 4")
	waitText("#live", "Dell Inc. OptiPlex 7090")
	waitText("#live", "Lab image: 8.0 MiB of 8.0 MiB") // the agent's download, reported in bytes
	live := shot("dashboard-step1")
	// IMPRINT_UPDATE_DOCS=1 refreshes the README's screenshot.
	if os.Getenv("IMPRINT_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "..", "docs", "console-dashboard.png"), live, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(gate(1), nil, 0o644)
	waitText("#live", "Apply operating system")
	waitText("#live", "2 of 4")
	shot("dashboard")
	os.WriteFile(gate(2), nil, 0o644)
	waitText("#live", "Install drivers")
	waitText("#live", "3 of 4")
	os.WriteFile(gate(3), nil, 0o644)
	select {
	case err := <-agentDone:
		if err != nil {
			t.Fatalf("agent: %v\n%s", err, agentOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the agent did not finish:\n%s", agentOut.String())
	}
	waitText("#live", "succeeded")
	if !strings.Contains(text("#live"), "No machine is deploying now.") {
		t.Errorf("the finished run is still shown in progress:\n%s", text("#live"))
	}
	still, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.imprintMarker === true`))
	if err != nil || !still {
		t.Fatalf("the dashboard page was reloaded (marker gone: %v, %v)", still, err)
	}
	shot("dashboard-finished")

	// The run page: its step table, and the logs the agent uploaded.
	runs, err := e.srv.Store().Runs(ctx, deploy.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	run("open the run", chromedp.Click(chromedp.CSS(`a[href="/runs/`+runs[0].ID+`"]`)), chromedp.WaitVisible(chromedp.CSS(`table.steps`)))
	mu.Lock()
	page = "/runs/" + runs[0].ID
	mu.Unlock()
	for _, want := range []string{"Partition disk", "Apply operating system", "Install drivers", "succeeded",
		"Only in WinPE", `if OSVERSION equals "WinPE"`, "skipped"} {
		waitText("table.steps", want)
	}
	waitText("#live", ".tar.gz") // the log bundle's links
	shot("run")
	run("open the log", chromedp.Click(chromedp.CSS(`a.logview`)), chromedp.WaitVisible(chromedp.CSS(`table.cmtrace`)))
	mu.Lock()
	page = "log view"
	mu.Unlock()
	waitText("table.cmtrace", "Partition disk")
	shot("log")

	for _, p := range []string{"/ts", "/content", "/security"} {
		visit(p)
		shot(strings.TrimPrefix(p, "/"))
	}
	visit("/content")
	waitText("td.usedby", "Lab Linux v1")
	// --- conadmin: content upload, devices, boot images, security (browser_admin_test.go) ---
	h := chromeHelpers{bctx: bctx, run: run, visit: visit, waitText: waitText, shot: shot}
	itemID := consoleAdminPages(t, e, h)
	// --- end conadmin ---

	// The editor (editor.go): a sequence from the Linux template, its
	// Apply operating system pointed at an image with the content picker,
	// then set Active.
	osImg := e.contentItem(t, "Linux image", deploy.PurposeOperatingSystem, deploy.StatusActive)
	visit("/ts")
	run("new from the Linux template",
		chromedp.SetValue(chromedp.CSS(`#new-form select[name="template"]`), "linux-bare-metal"),
		chromedp.SendKeys(chromedp.CSS(`#new-form input[name="name"]`), "Linux from console"),
		chromedp.Click(chromedp.CSS(`#new-form button[type="submit"]`)))
	waitText("main", "Created Linux from console")
	var linux *deploy.TaskSequence
	all, err := e.srv.Store().TaskSequences(ctx)
	for _, s := range all {
		if s.Name == "Linux from console" {
			linux = s
		}
	}
	if err != nil || linux == nil {
		t.Fatalf("the new sequence is not stored: %v", err)
	}
	applyOS := linux.Versions[0].Steps[0].GroupMembers[1]
	run("open the editor", chromedp.Click(chromedp.CSS(`tr[data-ts="`+linux.ID+`"] a.edit`)), chromedp.WaitVisible(chromedp.CSS(`ol.steps`)))
	mu.Lock()
	page = "editor"
	mu.Unlock()
	run("pick Apply operating system", chromedp.Click(chromedp.CSS(`#step-`+applyOS.ID+` > .row > a.pick`)), chromedp.WaitVisible(chromedp.CSS(`#step-form`)))
	waitText(`#step-`+applyOS.ID+` ul.problems`, "Image")
	shot("editor-step")
	run("choose the image",
		chromedp.SetValue(chromedp.CSS(`div[data-option="Image"] select`), osImg.ID+":1"),
		chromedp.Click(chromedp.CSS(`#step-form button.primary`)))
	waitText("main", "Saved.")
	shot("editor")
	linux, err = e.srv.Store().TaskSequence(ctx, linux.ID)
	if err != nil || linux.Versions[0].Steps[0].GroupMembers[1].ContentItems["Image"] != osImg.ID+":1" {
		t.Fatalf("Apply operating system's image after the editor's save: %v (%v)", linux.Versions[0].Steps[0].GroupMembers[1].ContentItems, err)
	}
	visit("/ts")
	run("set it Active", chromedp.SetValue(chromedp.CSS(`tr[data-ts="`+linux.ID+`"] select`), "Active"))
	waitText("main", "Linux from console version 1 is now Active")
	if linux, err = e.srv.Store().TaskSequence(ctx, linux.ID); err != nil || linux.Versions[0].Status != deploy.StatusActive {
		t.Fatalf("the edited sequence is not Active: %v", err)
	}
	visit("/content")
	waitText("tbody", "Linux from console v1")

	// A viewer sees the status form but the server refuses the change.
	run("log out", chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	login("eve")
	visit("/ts")
	// Picking a status submits its form (console.js), as for an operator.
	run("viewer picks a status", chromedp.SetValue(chromedp.CSS(`tr[data-ts="`+tsID+`"] select`), "Deprecated"))
	waitText("main", "Refused by the server: role viewer may not do this")
	shot("viewer-refused")
	ts, err := e.srv.Store().TaskSequence(ctx, tsID)
	if err != nil || ts.Versions[0].Status != deploy.StatusActive {
		t.Errorf("after the viewer's refused change the status is %v (%v), want Active", ts.Versions[0].Status, err)
	}
	// The editor's controls are refused to a viewer by the server too.
	visit("/ts/" + linux.ID + "/versions/1/edit")
	run("viewer copies a version", chromedp.Click(chromedp.CSS(`#copy-form button`)))
	waitText("main", "Refused by the server: role viewer may not do this")
	if after, err := e.srv.Store().TaskSequence(ctx, linux.ID); err != nil || len(after.Versions) != 1 {
		t.Errorf("the viewer's refused copy made a version: %v", err)
	}
	// --- conadmin: every other change control refused too ---
	refused := viewerRefusals(t, e, h, itemID, tsID)
	// --- end conadmin ---
	// The 403 page itself logs a failed load in the console; that one is
	// the expected refusal, anything else is a defect.
	mu.Lock()
	defer mu.Unlock()
	for _, m := range consoleErrs {
		if strings.Contains(m, "403") && (strings.Contains(m, "/ts/"+tsID) || strings.Contains(m, "/ts/"+linux.ID)) {
			continue
		}
		if strings.Contains(m, "403") && slices.ContainsFunc(refused, func(p string) bool { return strings.HasSuffix(m, p) }) {
			continue // conadmin: the viewer's refused changes
		}
		t.Errorf("browser console: %s", m)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
