package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/server"
)

// buildJobState is GET /bootimages/build's answer.
type buildJobState struct {
	State   string    `json:"state"`
	By      string    `json:"by"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Lines   []string  `json:"lines"`
	Error   string    `json:"error"`
}

func (b *browser) buildState() buildJobState {
	b.t.Helper()
	resp, body := b.do("GET", "/bootimages/build", nil, nil)
	var st buildJobState
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &st) != nil {
		b.t.Fatalf("GET /bootimages/build: %d %s", resp.StatusCode, body)
	}
	return st
}

// waitBuild polls the job until it is no longer running.
func (b *browser) waitBuild() buildJobState {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := b.buildState()
		if st.State != "running" || time.Now().After(deadline) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBootImageBuildJob: the console's boot image build is a background
// job of the server, for admins only, one at a time, with its state and
// log on the boot images page, and audited under the account.
//
// The build function is the test's (Config.BuildBootImage): it writes log
// lines and the image's files and waits until the test lets it end. It
// tests the console's job mechanics only; the real build
// (bootimage.BuildDebian, what the server wires) is tested in
// internal/bootimage and by `imprint bootimage build`'s tests.
func TestBootImageBuildJob(t *testing.T) {
	release := make(chan error)
	started := make(chan struct{}, 4)
	var out string
	e := startWith(t, func(c *server.Config) {
		out = filepath.Join(server.BootImagesDir(c.DataDir), "x86_64")
		c.BuildBootImage = func(ctx context.Context, log io.Writer) error {
			started <- struct{}{}
			fmt.Fprintf(log, "fetching linux-image-amd64\npartial line, ")
			fmt.Fprintf(log, "ended later\n")
			select {
			case err := <-release:
				if err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			fmt.Fprintln(log, "initramfs written")
			return os.WriteFile(filepath.Join(out, "vmlinuz"), []byte("kernel"), 0o644)
		}
	})
	srv := e.srv
	e.addUser(t, "root", "admin")
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	ops, eve, root := e.browser(t), e.browser(t), e.browser(t)
	ops.mustLogin("ops")
	eve.mustLogin("eve")
	root.mustLogin("root")

	// Refused: operators, viewers, and an admin without the CSRF token or
	// with a wrong one. None of them starts a build.
	for _, c := range []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"operator", ops, url.Values{"csrf": {ops.csrf}}},
		{"viewer", eve, url.Values{"csrf": {eve.csrf}}},
		{"admin without CSRF token", root, url.Values{}},
		{"admin with a wrong CSRF token", root, url.Values{"csrf": {"x" + root.csrf}}},
	} {
		if resp, _ := c.b.do("POST", "/bootimages/build", c.form, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: POST /bootimages/build = %d, want 403", c.name, resp.StatusCode)
		}
	}
	if st := root.buildState(); st.State != "" {
		t.Fatalf("a refused request started a build: %+v", st)
	}
	if _, page := ops.do("GET", "/bootimages", nil, nil); strings.Contains(page, `action="/bootimages/build"`) {
		t.Error("an operator is offered the build button")
	}

	// The admin starts it; it runs on after the request has ended.
	resp, _ := root.do("POST", "/bootimages/build", url.Values{"csrf": {root.csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin POST /bootimages/build = %d, want 303", resp.StatusCode)
	}
	<-started
	// A second build while it runs: 409, and the first goes on.
	if resp, body := root.do("POST", "/bootimages/build", url.Values{"csrf": {root.csrf}}, nil); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already running") {
		t.Errorf("second build while one runs: %d, want 409 saying one is running", resp.StatusCode)
	}
	st := eve.buildState() // viewers may watch
	if st.State != "running" || st.By != "root" || st.Started.IsZero() || !st.Ended.IsZero() {
		t.Errorf("job while running: %+v", st)
	}
	if !strings.Contains(strings.Join(st.Lines, "\n"), "fetching linux-image-amd64\npartial line, ended later") {
		t.Errorf("log while running: %q", st.Lines)
	}
	_, page := eve.do("GET", "/bootimages", nil, nil)
	for _, want := range []string{`data-state="running"`, "fetching linux-image-amd64", `src="/static/bootbuild.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("boot images page while building lacks %q", want)
		}
	}

	release <- nil
	st = root.waitBuild()
	if st.State != "succeeded" || st.Ended.Before(st.Started) || st.Error != "" || !strings.Contains(strings.Join(st.Lines, "\n"), "initramfs written") {
		t.Errorf("job after success: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(out, "vmlinuz")); err != nil {
		t.Errorf("the build's files: %v", err)
	}
	_, page = root.do("GET", "/bootimages", nil, nil)
	if !strings.Contains(page, `data-state="succeeded"`) || !strings.Contains(page, "initramfs written") {
		t.Error("boot images page does not show the finished build and its log")
	}

	// A failing build: state failed, the error shown; then another may
	// start.
	if resp, _ := root.do("POST", "/bootimages/build", url.Values{"csrf": {root.csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("build after the first ended: %d, want 303", resp.StatusCode)
	}
	<-started
	release <- errors.New("apt-get download linux-image-amd64: exit status 100")
	st = root.waitBuild()
	if st.State != "failed" || !strings.Contains(st.Error, "exit status 100") {
		t.Errorf("job after failure: %+v", st)
	}
	_, page = root.do("GET", "/bootimages", nil, nil)
	if !strings.Contains(page, `data-state="failed"`) || !strings.Contains(page, "exit status 100") {
		t.Error("boot images page does not show the failed build's error")
	}

	// Audited under the account: started, then the outcome of each build;
	// the refusals too.
	events, err := srv.Store().AuditEvents(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events {
		if ev.Action == "console.bootimage.build" {
			got = append(got, ev.Actor+" "+ev.Outcome)
		}
	}
	want := "console:root started,console:root failure,console:root success,console:root started,console:root failure"
	// The 409 is the first failure; the job outcomes come in order.
	if strings.Join(got, ",") != want {
		t.Errorf("audit of console.bootimage.build: %q, want %q", got, want)
	}
	refused := 0
	for _, ev := range events {
		if ev.Action == "console.refused" && ev.Details["path"] == "/bootimages/build" {
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d refusals of POST /bootimages/build audited, want 4", refused)
	}
}
