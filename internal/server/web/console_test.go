package web_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
	"github.com/imprint-osd/imprint/internal/server/web"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

const pw = "violet-harbour-71-lamp"

// env is a real server with three accounts.
type env struct {
	srv   *server.Server
	admin *client.Admin
	base  string
	ca    *x509.CertPool
	build *gatedBuild // the console's boot image build, when the test set one
}

func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, nil)
}

// startWith is start with the server's configuration edited first.
func startWith(t *testing.T, edit func(*server.Config)) *env {
	t.Helper()
	srv := servertest.Start(t, edit)
	pem, err := os.ReadFile(server.CACertPath(srv.DataDir()))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e := &env{srv: srv, admin: client.NewAdmin(srv.Socket()), base: "https://" + srv.APIAddr().String(), ca: pool}
	return e
}

func (e *env) addUser(t *testing.T, name, role string) {
	t.Helper()
	if _, err := e.admin.AddUser(context.Background(), name, role, pw); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each answer can be inspected.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	jar  *cookiejar.Jar
	csrf string
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, jar: jar, c: &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request and returns the answer with its body read.
func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	bs, _ := io.ReadAll(resp.Body)
	return resp, string(bs)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formToken is the CSRF token of the page at path.
func (b *browser) formToken(path string) string {
	b.t.Helper()
	resp, body := b.do("GET", path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("GET %s: no CSRF field in the page", path)
	}
	return m[1]
}

// login signs in and returns the answer to the POST.
func (b *browser) login(name, password string) *http.Response {
	b.t.Helper()
	tok := b.formToken("/login")
	resp, _ := b.do("POST", "/login", url.Values{"csrf": {tok}, "name": {name}, "password": {password}}, nil)
	if resp.StatusCode == http.StatusSeeOther {
		b.csrf = b.formToken("/")
	}
	return resp
}

func (b *browser) mustLogin(name string) {
	b.t.Helper()
	if resp := b.login(name, pw); resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("login %s: %d, want 303", name, resp.StatusCode)
	}
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-imprint_session" {
			return c
		}
	}
	return nil
}

func TestFirstStartSaysHowToCreateAdmin(t *testing.T) {
	e := start(t)
	b := e.browser(t)
	_, body := b.do("GET", "/login", nil, nil)
	if !strings.Contains(body, "imprint user add NAME --role admin") {
		t.Fatalf("login page with no account does not say how to create the first admin:\n%s", body)
	}
	if resp, _ := b.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without a session: %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.addUser(t, "root", "admin")
	if _, body := b.do("GET", "/login", nil, nil); strings.Contains(body, "imprint user add") {
		t.Error("login page still shows the first-start hint once an account exists")
	}
}

func TestSessionCookieFlagsAndFixation(t *testing.T) {
	e := start(t)
	e.addUser(t, "root", "admin")
	e.addUser(t, "ops", "operator")
	b := e.browser(t)
	// A token planted before login (fixation) is never adopted.
	u, _ := url.Parse(e.base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-imprint_session", Value: "planted-by-attacker", Path: "/", Secure: true}})
	resp := b.login("root", pw)
	ck := sessionCookie(resp)
	if ck == nil || ck.Value == "planted-by-attacker" {
		t.Fatalf("login set no new __Host-imprint_session cookie: %v", ck)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/ and no Domain", ck)
	}
	first := ck.Value

	// A second login from the same browser (or with a planted cookie)
	// gets a new token, and the old one stops working.
	resp = b.login("ops", pw)
	ck = sessionCookie(resp)
	if ck == nil || ck.Value == first {
		t.Fatalf("second login kept the session token (fixation): %v", ck)
	}
	old := e.browser(t)
	old.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-imprint_session", Value: first, Path: "/", Secure: true}})
	if resp, _ := old.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the replaced session token still opens the dashboard: %d", resp.StatusCode)
	}
	if resp, body := b.do("GET", "/", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, "ops (operator)") {
		t.Errorf("the new session is not ops's: %d", resp.StatusCode)
	}

	// Logout ends the session on the server.
	if resp, _ := b.do("POST", "/logout", url.Values{"csrf": {b.csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout GET / = %d, want 303 to /login", resp.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	e := start(t)
	e.addUser(t, "root", "admin")
	b := e.browser(t)
	b.mustLogin("root")
	tests := []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"missing", url.Values{"on": {"true"}}, nil, 403},
		{"wrong", url.Values{"on": {"true"}, "csrf": {"x" + b.csrf[1:]}}, nil, 403},
		{"right token, other origin", url.Values{"on": {"true"}, "csrf": {b.csrf}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"right token, cross-site fetch", url.Values{"on": {"true"}, "csrf": {b.csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"right token in header", url.Values{"on": {"false"}}, map[string]string{"X-CSRF-Token": b.csrf, "Origin": e.base, "Sec-Fetch-Site": "same-origin"}, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := b.do("POST", "/security/anonymous", tt.form, tt.hdr)
			if resp.StatusCode != tt.want {
				t.Errorf("POST /security/anonymous: %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	sec, err := e.admin.Security(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sec.Anonymous {
		t.Error("a refused request turned anonymous on")
	}

	// The login form has its own token.
	resp, _ := e.browser(t).do("POST", "/login", url.Values{"name": {"root"}, "password": {pw}}, nil)
	if resp.StatusCode != 403 || sessionCookie(resp) != nil {
		t.Errorf("login without the form's token: %d, want 403 and no session", resp.StatusCode)
	}
}

func TestRolesEnforcedByServer(t *testing.T) {
	e := start(t)
	e.addUser(t, "root", "admin")
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	ctx := context.Background()
	const tsID = "6a1c2f8e-0d7b-4a39-9d55-3f2e4c1b7a01"
	if _, _, err := e.admin.ImportTaskSequence(ctx, strings.NewReader(`{"id":"`+tsID+`","name":"Lab","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"`+tsID+`","versionNo":1,"status":"In_Development","steps":[]}]}`), client.ImportNew); err != nil {
		t.Fatal(err)
	}
	status := func() deploy.Status {
		ts, err := e.srv.Store().TaskSequence(ctx, tsID)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Versions[0].Status
	}

	viewer := e.browser(t)
	viewer.mustLogin("eve")
	for _, p := range []string{"/", "/ts", "/content", "/security"} {
		if resp, _ := viewer.do("GET", p, nil, nil); resp.StatusCode != 200 {
			t.Errorf("viewer GET %s: %d, want 200", p, resp.StatusCode)
		}
	}
	resp, body := viewer.do("POST", "/ts/"+tsID+"/versions/1/status", url.Values{"csrf": {viewer.csrf}, "status": {"Active"}}, nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "Refused by the server") {
		t.Errorf("viewer status change: %d, want 403 with the reason", resp.StatusCode)
	}
	if st := status(); st != deploy.StatusInDevelopment {
		t.Fatalf("the viewer's refused change happened: status %s", st)
	}

	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.do("POST", "/ts/"+tsID+"/versions/1/status", url.Values{"csrf": {ops.csrf}, "status": {"Active"}}, nil); resp.StatusCode != 303 {
		t.Fatalf("operator status change: %d, want 303", resp.StatusCode)
	}
	if st := status(); st != deploy.StatusActive {
		t.Fatalf("status after the operator's change = %s, want Active", st)
	}
	if resp, _ := ops.do("POST", "/security/anonymous", url.Values{"csrf": {ops.csrf}, "on": {"true"}}, nil); resp.StatusCode != 403 {
		t.Errorf("operator changing security: %d, want 403", resp.StatusCode)
	}
	if _, body := ops.do("GET", "/security", nil, nil); strings.Contains(body, `action="/security/anonymous"`) {
		t.Error("the security page offers the operator a control only admins have")
	}

	admin := e.browser(t)
	admin.mustLogin("root")
	if resp, _ := admin.do("POST", "/security/anonymous", url.Values{"csrf": {admin.csrf}, "on": {"true"}}, nil); resp.StatusCode != 303 {
		t.Fatalf("admin turning anonymous on: %d", resp.StatusCode)
	}
	if sec, _ := e.admin.Security(ctx); !sec.Anonymous {
		t.Error("the admin's change did not happen")
	}

	// Every change and refusal is in the audit log under the account.
	events, err := e.srv.Store().AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"console:eve console.refused": false, "console:ops admin.request": false,
		"console:ops console.refused": false, "console:root security.anonymous": false}
	for _, ev := range events {
		k := ev.Actor + " " + ev.Action
		if _, ok := want[k]; ok {
			want[k] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit log has no %q event", k)
		}
	}
}

func TestLoginThrottled(t *testing.T) {
	e := start(t)
	e.addUser(t, "root", "admin")
	b := e.browser(t)
	var last *http.Response
	for range 7 {
		last = b.login("root", "wrong-password-123")
		if last.StatusCode == http.StatusTooManyRequests {
			break
		}
		if last.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d, want 401", last.StatusCode)
		}
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("after repeated wrong passwords: %d (Retry-After %q), want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
	// Even the right password waits out the backoff.
	if resp := b.login("root", pw); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password during the backoff: %d, want 429", resp.StatusCode)
	}
}

func TestHeadersOnEveryPage(t *testing.T) {
	e := start(t)
	e.addUser(t, "root", "admin")
	b := e.browser(t)
	check := func(path string, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("%s: CSP %q, want %q", path, got, web.CSP)
		}
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
			if !strings.Contains(resp.Header.Get("Content-Security-Policy"), d) {
				t.Errorf("%s: CSP lacks %s", path, d)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
	for _, p := range []string{"/login", "/static/console.js", "/static/console.css"} {
		resp, _ := b.do("GET", p, nil, nil)
		check(p, resp)
	}
	b.mustLogin("root")
	for _, p := range []string{"/", "/ts", "/content", "/security", "/runs/nope"} {
		resp, _ := b.do("GET", p, nil, nil)
		check(p, resp)
	}
}

func TestDashboardFailuresAndStream(t *testing.T) {
	e := start(t)
	e.addUser(t, "eve", "viewer")
	ctx := context.Background()
	st := e.srv.Store()
	now := time.Now().UTC()
	failed := &deploy.Run{DeviceID: "dev-failed", TaskSequenceID: "nope", VersionNo: 1, State: deploy.RunFailed,
		Steps:     []deploy.StepResult{{StepID: "s1", Name: "Apply", Path: "Apply", Outcome: deploy.StepFailed, StartedAt: now}},
		StartedAt: now.Add(-time.Minute), UpdatedAt: now, EndedAt: &now, Error: "disk not found"}
	ok := &deploy.Run{DeviceID: "dev-ok", TaskSequenceID: "nope", VersionNo: 1, State: deploy.RunRunning,
		Steps: []deploy.StepResult{}, StartedAt: now, UpdatedAt: now, CurrentStep: "Partition disk"}
	for _, r := range []*deploy.Run{failed, ok} {
		if err := st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	if resp, _ := b.do("GET", "/events/dashboard", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("live stream without a session: %d, want 401", resp.StatusCode)
	}
	b.mustLogin("eve")
	_, body := b.do("GET", "/", nil, nil)
	rowRE := regexp.MustCompile(`<tr class="run( failed)?" data-run="([^"]+)"`)
	classes := map[string]bool{}
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		classes[m[2]] = m[1] != ""
	}
	if len(classes) != 2 || !classes[failed.ID] || classes[ok.ID] {
		t.Errorf("dashboard rows failed-marked = %v, want only %s", classes, failed.ID)
	}
	if !strings.Contains(body, "disk not found") || !strings.Contains(body, "Partition disk") {
		t.Error("dashboard lacks the failure message or the current step")
	}

	// The live stream sends the same fragment as an SSE update event.
	req, _ := http.NewRequest("GET", e.base+"/events/dashboard", nil)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := b.c.Do(req.WithContext(sctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream Content-Type %q", ct)
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "\n\n") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream: %v after %q", err, got.String())
		}
	}
	ev := got.String()
	if !strings.HasPrefix(ev, "event: update\ndata: ") || !strings.Contains(ev, `data-run="`+ok.ID+`"`) {
		t.Errorf("first stream event is not an update with the running run:\n%s", ev)
	}
	for _, line := range strings.Split(strings.TrimSpace(ev), "\n") {
		if !strings.HasPrefix(line, "data:") && !strings.HasPrefix(line, "event: ") {
			t.Errorf("stream line %q is neither event: nor data: (an HTML newline broke the framing)", line)
		}
	}

	// A changed password ends the account's console sessions.
	if _, err := e.admin.SetUserPassword(ctx, "eve", "new-Orchard-Lantern-5"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := b.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after a password change the old session still opens the dashboard: %d", resp.StatusCode)
	}
}

// TestDashboardShowsTransferBytes posts events through the machine API as
// an agent does: a progress event's byte counts show under the current
// step until the step ends.
func TestDashboardShowsTransferBytes(t *testing.T) {
	e := start(t)
	e.addUser(t, "eve", "viewer")
	ctx := context.Background()
	const passcode = "Correct-Horse-Battery-42"
	if _, err := e.admin.SetPasscode(ctx, passcode); err != nil {
		t.Fatal(err)
	}
	const tsID = "5e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
	doc := `{"id":"` + tsID + `","name":"Lab","architecture":"Any","versions":[{"id":"6e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f","taskSequenceId":"` + tsID +
		`","versionNo":1,"status":"Active","steps":[{"id":"7e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f","name":"Apply image","typeId":"` +
		stepdefs.TypeRunCommandLine + `","enabled":true,"settings":{"CommandLine":"true"}}]}]}`
	if _, _, err := e.admin.ImportTaskSequence(ctx, strings.NewReader(doc), client.ImportNew); err != nil {
		t.Fatal(err)
	}
	m, err := client.NewMachine(e.base, mustRead(t, server.CACertPath(e.srv.DataDir())))
	if err != nil {
		t.Fatal(err)
	}
	dev := client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000077"}
	tok, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: passcode, Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken(tok.Token)
	run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: tsID, VersionNo: 1, Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	send := func(evs ...client.AgentEvent) {
		t.Helper()
		if err := m.SendEvents(ctx, run.ID, evs); err != nil {
			t.Fatal(err)
		}
	}
	send(client.AgentEvent{Type: "step-start", Time: now, StepID: "7e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f", Path: "Apply image", Name: "Apply image"},
		client.AgentEvent{Type: "progress", Time: now, Name: "Windows 11", BytesDone: 3 << 29, BytesTotal: 4 << 30},
		client.AgentEvent{Type: "log", Time: now, Message: "still writing"})

	b := e.browser(t)
	b.mustLogin("eve")
	_, body := b.do("GET", "/", nil, nil)
	if !strings.Contains(body, "Windows 11: 1.5 GiB of 4.0 GiB") || !strings.Contains(body, `value="37"`) {
		t.Errorf("dashboard does not show the transfer (1.5 of 4.0 GiB, 37%%):\n%s", body)
	}
	_, body = b.do("GET", "/runs/"+run.ID, nil, nil)
	if !strings.Contains(body, "Windows 11: 1.5 GiB of 4.0 GiB (37%)") {
		t.Errorf("run page does not show the transfer")
	}
	send(client.AgentEvent{Type: "step-end", Time: now, StepID: "7e2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f", Path: "Apply image", Name: "Apply image", Outcome: "succeeded",
		Downloads: []deploy.Download{{Content: "c:1", Name: "Windows 11", Bytes: 4096, Server: 96, Peers: 4000, Refused: 1}}})
	if _, body = b.do("GET", "/", nil, nil); strings.Contains(body, "Windows 11:") {
		t.Error("the transfer is still shown after its step ended")
	}
	// Where the step's bytes came from.
	if _, body = b.do("GET", "/runs/"+run.ID, nil, nil); !strings.Contains(body, "Windows 11 (c:1): 4096 bytes — server 96, peers 4000; 1 chunks from peers refused") {
		t.Errorf("run page does not say where the download came from:\n%s", body)
	}
	// The uploaded log bundle downloads whole and by range.
	bundle := []byte("\x1f\x8b pretend gzip bundle")
	if err := m.UploadLogs(ctx, run.ID, strings.NewReader(string(bundle))); err != nil {
		t.Fatal(err)
	}
	_, body = b.do("GET", "/runs/"+run.ID, nil, nil)
	mm := regexp.MustCompile(`/runs/` + run.ID + `/logs/([^"/]+)"`).FindStringSubmatch(body)
	if mm == nil {
		t.Fatalf("run page has no log link:\n%s", body)
	}
	resp, got := b.do("GET", "/runs/"+run.ID+"/logs/"+mm[1], nil, nil)
	if resp.StatusCode != 200 || got != string(bundle) || !strings.Contains(resp.Header.Get("Content-Disposition"), mm[1]) {
		t.Errorf("log download: %d %q (%s)", resp.StatusCode, got, resp.Header.Get("Content-Disposition"))
	}
	resp, got = b.do("GET", "/runs/"+run.ID+"/logs/"+mm[1], nil, map[string]string{"Range": "bytes=3-9"})
	if resp.StatusCode != http.StatusPartialContent || got != string(bundle[3:10]) {
		t.Errorf("log range download: %d %q", resp.StatusCode, got)
	}
	if resp, _ := b.do("GET", "/runs/"+run.ID+"/logs/..%2Fimprint.db", nil, nil); resp.StatusCode < 400 {
		t.Errorf("a log name with a path got %d", resp.StatusCode)
	}
}

func TestImportExport(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	const tsID = "4f2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
	doc := `{"id":"` + tsID + `","name":"Imported lab","architecture":"Any","versions":[{"id":"3f2d3e4f-1a2b-4c3d-8e9f-0a1b2c3d4e5f","taskSequenceId":"` + tsID + `","versionNo":1,"status":"In_Development","steps":[]}]}`
	upload := func(b *browser, content string) (*http.Response, string) {
		t.Helper()
		var buf strings.Builder
		mw := multipart.NewWriter(&buf)
		mw.WriteField("csrf", b.csrf)
		fw, _ := mw.CreateFormFile("file", "lab.json")
		io.WriteString(fw, content)
		mw.Close()
		req, _ := http.NewRequest("POST", e.base+"/ts/import", strings.NewReader(buf.String()))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	viewer := e.browser(t)
	viewer.mustLogin("eve")
	if resp, _ := upload(viewer, doc); resp.StatusCode != 403 {
		t.Errorf("viewer import: %d, want 403", resp.StatusCode)
	}
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, body := upload(ops, `{"id":"x","versions":"no"}`); resp.StatusCode != 400 || !strings.Contains(body, "import:") {
		t.Errorf("importing a broken document: %d, want 400 with the reason:\n%s", resp.StatusCode, body)
	}
	resp, _ := upload(ops, doc)
	if resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "Imported+lab") {
		t.Fatalf("operator import: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := e.srv.Store().TaskSequence(context.Background(), tsID); err != nil {
		t.Fatalf("the imported sequence is not stored: %v", err)
	}
	resp, body := viewer.do("GET", "/ts/"+tsID+"/export", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"name": "Imported lab"`) && !strings.Contains(body, `"name":"Imported lab"`) {
		t.Errorf("export: %d\n%s", resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, tsID+".json") {
		t.Errorf("export Content-Disposition %q", cd)
	}
	// New from a template: refused to a viewer, done for an operator.
	form := func(b *browser) url.Values {
		return url.Values{"csrf": {b.csrf}, "template": {"linux-bare-metal"}, "name": {"Linux lab"}}
	}
	if resp, _ := viewer.do("POST", "/ts/new", form(viewer), nil); resp.StatusCode != 403 {
		t.Errorf("viewer new from template: %d, want 403", resp.StatusCode)
	}
	if resp, _ := ops.do("POST", "/ts/new", url.Values{"csrf": {ops.csrf}, "template": {"nope"}, "name": {"x"}}, nil); resp.StatusCode != 400 {
		t.Errorf("unknown template: %d, want 400", resp.StatusCode)
	}
	if resp, _ := ops.do("POST", "/ts/new", form(ops), nil); resp.StatusCode != 303 {
		t.Fatalf("operator new from template: %d", resp.StatusCode)
	}
	all, err := e.srv.Store().TaskSequences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ts := range all {
		names = append(names, ts.Name)
	}
	if !slices.Contains(names, "Linux lab") {
		t.Errorf("sequences after new from template: %v", names)
	}
	if _, body := ops.do("GET", "/ts", nil, nil); !strings.Contains(body, `value="linux-bare-metal"`) {
		t.Error("the task-sequence page does not offer the templates")
	}
}
