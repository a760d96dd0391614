package web_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// TestDevicesNextBootAndCancel: the devices pages list what machines sent,
// an operator changes a next boot and cancels a run, a viewer is refused
// both by the server, and every change is audited under the account.
func TestDevicesNextBootAndCancel(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	ctx := context.Background()
	st := e.srv.Store()
	dev := &deploy.Device{ID: "4c4c4544-0042-3510-8052-b4c04f4e3332", UUID: "4c4c4544-0042-3510-8052-b4c04f4e3332",
		MACs: []string{"52:54:00:12:34:56"}, SerialNumber: "SN-7781", Make: "Dell Inc.", Model: "Latitude 7440",
		Disks: []deploy.Disk{{Name: "nvme0n1", Model: "PM9A1 NVMe Samsung 512GB", Size: 512110190592}}}
	if err := st.UpsertDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	run := &deploy.Run{DeviceID: dev.ID, TaskSequenceID: "ts", VersionNo: 1, State: deploy.RunRunning, StartedAt: time.Now()}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}

	eve := e.browser(t)
	eve.mustLogin("eve")
	for _, p := range []string{"/devices", "/devices/" + dev.ID, "/bootimages"} {
		resp, body := eve.do("GET", p, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("viewer GET %s: %d", p, resp.StatusCode)
		}
		if p != "/bootimages" && (!strings.Contains(body, "SN-7781") || !strings.Contains(body, "Latitude 7440") || !strings.Contains(body, "52:54:00:12:34:56")) {
			t.Errorf("GET %s does not show the device's serial, model and MAC", p)
		}
		if strings.Contains(body, "/nextboot") {
			t.Errorf("GET %s offers the viewer the next-boot control", p)
		}
	}
	if _, body := eve.do("GET", "/devices/"+dev.ID, nil, nil); !strings.Contains(body, "nvme0n1: 476.9 GiB (PM9A1 NVMe Samsung 512GB)") {
		t.Error("the device page does not show its disk")
	}
	if _, body := eve.do("GET", "/bootimages", nil, nil); !strings.Contains(body, "No boot image yet") {
		t.Error("boot images page does not say there is none")
	}
	if resp, _ := eve.do("POST", "/devices/"+dev.ID+"/nextboot", url.Values{"csrf": {eve.csrf}, "nextBoot": {"deploy"}}, nil); resp.StatusCode != 403 {
		t.Errorf("viewer next-boot change: %d, want 403", resp.StatusCode)
	}
	if resp, _ := eve.do("POST", "/runs/"+run.ID+"/cancel", url.Values{"csrf": {eve.csrf}}, nil); resp.StatusCode != 403 {
		t.Errorf("viewer cancel: %d, want 403", resp.StatusCode)
	}
	if got, _ := st.Run(ctx, run.ID); got.State != deploy.RunRunning {
		t.Fatalf("the viewer's refused cancel happened: %s", got.State)
	}

	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.do("POST", "/devices/"+dev.ID+"/nextboot", url.Values{"csrf": {ops.csrf}, "nextBoot": {"sideways"}}, nil); resp.StatusCode != 400 {
		t.Errorf("next boot sideways: %d, want 400", resp.StatusCode)
	}
	if resp, _ := ops.do("POST", "/devices/"+dev.ID+"/nextboot", url.Values{"nextBoot": {"deploy"}}, nil); resp.StatusCode != 403 {
		t.Errorf("next boot without CSRF: %d, want 403", resp.StatusCode)
	}
	if resp, _ := ops.do("POST", "/devices/"+dev.ID+"/nextboot", url.Values{"csrf": {ops.csrf}, "nextBoot": {"deploy"}, "from": {"device"}}, nil); resp.StatusCode != 303 {
		t.Fatalf("operator next boot: %d", resp.StatusCode)
	}
	selected := regexp.MustCompile(`<option value="deploy" selected>`)
	if _, body := ops.do("GET", "/devices/"+dev.ID, nil, nil); !selected.MatchString(body) {
		t.Error("the device page does not show next boot deploy after the change")
	}
	if _, body := ops.do("GET", "/runs/"+run.ID, nil, nil); !strings.Contains(body, `id="cancel-form"`) {
		t.Error("the run page offers the operator no cancel")
	}
	if resp, _ := ops.do("POST", "/runs/"+run.ID+"/cancel", url.Values{"csrf": {ops.csrf}}, nil); resp.StatusCode != 303 {
		t.Fatalf("operator cancel: %d", resp.StatusCode)
	}
	got, _ := st.Run(ctx, run.ID)
	if got.State != deploy.RunCanceled || got.EndedAt == nil || !strings.Contains(got.Error, "console:ops") {
		t.Errorf("after cancel: state %s ended %v error %q; want canceled by console:ops", got.State, got.EndedAt, got.Error)
	}
	if resp, body := ops.do("POST", "/runs/"+run.ID+"/cancel", url.Values{"csrf": {ops.csrf}}, nil); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already ended") {
		t.Errorf("second cancel: %d, want 409 already ended", resp.StatusCode)
	}

	events, _ := st.AuditEvents(ctx, 0, 0)
	want := map[string]bool{"console:ops device.nextboot": false, "console:ops run.cancel": false, "console:eve console.refused": false}
	for _, ev := range events {
		if _, ok := want[ev.Actor+" "+ev.Action]; ok {
			want[ev.Actor+" "+ev.Action] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit log has no %q event", k)
		}
	}
}

var secretRE = regexp.MustCompile(`<pre class="secret" id="secret">([^<]+)</pre>`)

// TestSecurityAdminOnly: an admin generates a passcode (shown once),
// rotates and clears it, limits anonymous to a network, creates and
// revokes an admin token, pages and verifies the audit log; an operator is
// refused every one of those by the server.
func TestSecurityAdminOnly(t *testing.T) {
	e := start(t)
	e.addUser(t, "root", "admin")
	e.addUser(t, "ops", "operator")
	ctx := context.Background()

	ops := e.browser(t)
	ops.mustLogin("ops")
	for _, p := range []string{"/security/sessions", "/security/tokens", "/security/audit"} {
		if resp, _ := ops.do("GET", p, nil, nil); resp.StatusCode != 403 {
			t.Errorf("operator GET %s: %d, want 403", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/security/passcode", "/security/passcode/generate", "/security/passcode/rotate", "/security/passcode/clear",
		"/security/tokens", "/security/sessions/revoke", "/security/audit/verify", "/security/anonymous"} {
		if resp, _ := ops.do("POST", p, url.Values{"csrf": {ops.csrf}, "passcode": {"correct-horse-battery"}, "name": {"ci"}, "all": {"1"}, "on": {"true"}}, nil); resp.StatusCode != 403 {
			t.Errorf("operator POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	if st, _ := e.admin.PasscodeStatus(ctx); st.Set {
		t.Fatal("an operator's refused request set the passcode")
	}

	root := e.browser(t)
	root.mustLogin("root")
	resp, body := root.do("POST", "/security/passcode/generate", url.Values{"csrf": {root.csrf}}, nil)
	m := secretRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || len(m[1]) < 8 {
		t.Fatalf("generate passcode: %d, secret shown: %v", resp.StatusCode, m)
	}
	if st, _ := e.admin.PasscodeStatus(ctx); !st.Set || !st.Generated {
		t.Fatalf("passcode after generate: %+v", st)
	}
	if _, page := root.do("GET", "/security", nil, nil); strings.Contains(page, m[1]) {
		t.Error("the generated passcode is shown again on the security page")
	}
	if resp, _ := root.do("POST", "/security/passcode/rotate", url.Values{"csrf": {root.csrf}, "passcode": {"correct-horse-battery-9"}, "grace": {"1h"}}, nil); resp.StatusCode != 303 {
		t.Errorf("rotate: %d", resp.StatusCode)
	}
	if st, _ := e.admin.PasscodeStatus(ctx); st.Generated || st.PreviousGeneration == 0 {
		t.Errorf("after rotate: %+v, want a set passcode with the previous one in grace", st)
	}
	if resp, _ := root.do("POST", "/security/passcode/clear", url.Values{"csrf": {root.csrf}}, nil); resp.StatusCode != 303 {
		t.Errorf("clear: %d", resp.StatusCode)
	}
	if st, _ := e.admin.PasscodeStatus(ctx); st.Set {
		t.Error("the passcode is still set after clear")
	}
	if resp, body := root.do("POST", "/security/anonymous", url.Values{"csrf": {root.csrf}, "on": {"true"}, "from": {"10.20.0.0/16, nonsense"}}, nil); resp.StatusCode != 400 || !strings.Contains(body, "nonsense") {
		t.Errorf("anonymous from a bad network: %d, want 400 naming it", resp.StatusCode)
	}
	if resp, _ := root.do("POST", "/security/anonymous", url.Values{"csrf": {root.csrf}, "on": {"true"}, "from": {"10.20.0.0/16"}}, nil); resp.StatusCode != 303 {
		t.Errorf("anonymous from 10.20.0.0/16: %d", resp.StatusCode)
	}
	if sec, _ := e.admin.Security(ctx); !sec.Anonymous || strings.Join(sec.AnonymousFrom, ",") != "10.20.0.0/16" {
		t.Errorf("anonymous after the change: %v from %v", sec.Anonymous, sec.AnonymousFrom)
	}

	resp, body = root.do("POST", "/security/tokens", url.Values{"csrf": {root.csrf}, "name": {"ci-runner"}, "expires": {"24h"}}, nil)
	tm := secretRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || tm == nil {
		t.Fatalf("create token: %d, token shown: %v", resp.StatusCode, tm)
	}
	// The token works against the remote admin API.
	req, _ := http.NewRequest("GET", e.base+"/admin/v1/info", nil)
	req.Header.Set("Authorization", "Bearer "+tm[1])
	if r, err := root.c.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("the created token does not authenticate: %v %v", r, err)
	}
	_, list := root.do("GET", "/security/tokens", nil, nil)
	idm := regexp.MustCompile(`data-token="([^"]+)"`).FindStringSubmatch(list)
	if idm == nil || !strings.Contains(list, "ci-runner") || strings.Contains(list, tm[1]) {
		t.Fatalf("token list: has the token row %v, shows the secret again %v", idm != nil, strings.Contains(list, tm[1]))
	}
	if resp, _ := ops.do("POST", "/security/tokens/"+idm[1]+"/revoke", url.Values{"csrf": {ops.csrf}}, nil); resp.StatusCode != 403 {
		t.Errorf("operator revoking a token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := root.do("POST", "/security/tokens/"+idm[1]+"/revoke", url.Values{"csrf": {root.csrf}}, nil); resp.StatusCode != 303 {
		t.Errorf("revoke token: %d", resp.StatusCode)
	}
	if r, err := root.c.Do(req); err != nil || r.StatusCode != 401 {
		t.Errorf("revoked token still answers: %v %v", r, err)
	}
	if resp, _ := root.do("GET", "/security/sessions", nil, nil); resp.StatusCode != 200 {
		t.Errorf("sessions page: %d", resp.StatusCode)
	}
	for range 20 { // enough audit entries for two pages
		if resp, _ := root.do("POST", "/security/sessions/revoke", url.Values{"csrf": {root.csrf}, "all": {"1"}}, nil); resp.StatusCode != 303 {
			t.Fatalf("revoke all sessions: %d", resp.StatusCode)
		}
	}

	// Audit log: paged, and verified.
	resp, page := root.do("GET", "/security/audit", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "passcode.generate") || !strings.Contains(page, `rel="next"`) {
		t.Errorf("audit page 1: %d, has passcode.generate %v, has a next page %v", resp.StatusCode, strings.Contains(page, "passcode.generate"), strings.Contains(page, `rel="next"`))
	}
	if resp, _ := root.do("GET", "/security/audit?after=50", nil, nil); resp.StatusCode != 200 {
		t.Errorf("audit page 2: %d", resp.StatusCode)
	}
	resp, _ = root.do("POST", "/security/audit/verify", url.Values{"csrf": {root.csrf}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "hash+chain+intact") {
		t.Errorf("verify: %d %s", resp.StatusCode, loc)
	}

	events, _ := e.srv.Store().AuditEvents(ctx, 0, 0)
	want := map[string]bool{"console:root passcode.generate": false, "console:root passcode.rotate": false, "console:root passcode.clear": false,
		"console:root security.anonymous": false, "console:root admin.token.create": false, "console:root admin.token.revoke": false,
		"console:root session.revoke": false}
	for _, ev := range events {
		if _, ok := want[ev.Actor+" "+ev.Action]; ok {
			want[ev.Actor+" "+ev.Action] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit log has no %q event", k)
		}
	}
}

// TestCancelStopsTheAgent: after an operator cancels a real machine's
// run, neither its session nor a new session of the same machine may post
// events to it, so the run stays canceled.
func TestCancelStopsTheAgent(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	ctx := context.Background()
	const passcode = "Correct-Horse-Battery-42"
	if _, err := e.admin.SetPasscode(ctx, passcode); err != nil {
		t.Fatal(err)
	}
	const tsID = "5e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e60"
	doc := `{"id":"` + tsID + `","name":"Lab","architecture":"Any","versions":[{"id":"6e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e60","taskSequenceId":"` + tsID +
		`","versionNo":1,"status":"Active","steps":[{"id":"7e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e60","name":"Apply image","typeId":"` +
		stepdefs.TypeRunCommandLine + `","enabled":true,"settings":{"CommandLine":"true"}}]}]}`
	if _, _, err := e.admin.ImportTaskSequence(ctx, strings.NewReader(doc), client.ImportNew); err != nil {
		t.Fatal(err)
	}
	login := func() *client.Machine {
		t.Helper()
		m, err := client.NewMachine(e.base, mustRead(t, server.CACertPath(e.srv.DataDir())))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: passcode, Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000078"}})
		if err != nil {
			t.Fatal(err)
		}
		m.SetToken(tok.Token)
		return m
	}
	m := login()
	run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: tsID, VersionNo: 1, Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000078"}})
	if err != nil {
		t.Fatal(err)
	}
	step := client.AgentEvent{Type: "step-start", Time: time.Now().UTC(), StepID: "7e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e60", Path: "Apply image", Name: "Apply image"}
	if err := m.SendEvents(ctx, run.ID, []client.AgentEvent{step}); err != nil {
		t.Fatal(err)
	}
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.do("POST", "/runs/"+run.ID+"/cancel", url.Values{"csrf": {ops.csrf}}, nil); resp.StatusCode != 303 {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	if err := m.SendEvents(ctx, run.ID, []client.AgentEvent{step}); err == nil {
		t.Error("the canceled run's own session still posts events")
	}
	again := login() // the machine rebooted and logged in again
	err = again.SendEvents(ctx, run.ID, []client.AgentEvent{{Type: "run-end", Time: time.Now().UTC(), State: deploy.RunSucceeded}})
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("a new session posting to the canceled run: %v, want refused as canceled", err)
	}
	if got, _ := e.srv.Store().Run(ctx, run.ID); got.State != deploy.RunCanceled {
		t.Errorf("run state %s after the agent's posts, want canceled", got.State)
	}
}

// TestBootImagesPage: a built image under DIR/boot/images is listed with
// its kernel and size, a broken one says why, and an unknown one's ISO is
// a 404 page; a viewer may not ask for an ISO.
func TestBootImagesPage(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	dir := filepath.Join(server.BootImagesDir(e.srv.DataDir()), "x86_64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), make([]byte, 3<<20), 0o644)
	os.WriteFile(filepath.Join(dir, "initrd.img"), make([]byte, 5<<20), 0o644)
	k, i := sha256.Sum256(make([]byte, 3<<20)), sha256.Sum256(make([]byte, 5<<20))
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(fmt.Sprintf(`{"kernelVersion":"6.12.9-amd64","kernelSigned":true,"sha256":{"vmlinuz":"%x","initrd.img":"%x"}}`, k, i)), 0o644)
	os.MkdirAll(filepath.Join(filepath.Dir(dir), "arm64"), 0o755)

	ops := e.browser(t)
	ops.mustLogin("ops")
	_, body := ops.do("GET", "/bootimages", nil, nil)
	for _, want := range []string{"6.12.9-amd64", "8.0 MiB", "signed kernel only", `href="/bootimages/x86_64/iso"`, "arm64", "no readable manifest.json"} {
		if !strings.Contains(body, want) {
			t.Errorf("boot images page lacks %q", want)
		}
	}
	if resp, body := ops.do("GET", "/bootimages/riscv/iso", nil, nil); resp.StatusCode != 404 || !strings.Contains(body, "imprint bootimage build") {
		t.Errorf("ISO of a missing image: %d, want 404 saying how to build one", resp.StatusCode)
	}
	// The ISO, as `imprint bootimage iso` makes it (GRUB and xorriso
	// from the host: without them, the page names what to install).
	resp, body := ops.do("GET", "/bootimages/x86_64/iso", nil, nil)
	switch {
	case resp.StatusCode == 200:
		if resp.Header.Get("Content-Type") != "application/x-iso9660-image" || len(body) < 8<<20 || body[0x8001:0x8006] != "CD001" {
			t.Errorf("ISO download: %s, %d bytes, not an ISO 9660 image", resp.Header.Get("Content-Type"), len(body))
		}
	case resp.StatusCode == 503 && strings.Contains(body, "install"):
		t.Logf("no ISO tools on this host: %s", regexp.MustCompile(`build iso: [^<]*`).FindString(body))
	default:
		t.Errorf("ISO download: %d %s", resp.StatusCode, body)
	}
	eve := e.browser(t)
	eve.mustLogin("eve")
	if resp, _ := eve.do("GET", "/bootimages/x86_64/iso", nil, nil); resp.StatusCode != 403 {
		t.Errorf("viewer ISO download: %d, want 403", resp.StatusCode)
	}
}
