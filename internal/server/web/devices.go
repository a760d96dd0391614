package web

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Devices: every machine that logged in, what it said about itself, its
// runs and its next-boot default; boot images; canceling a run.

// nextBootChoices are the values of the next-boot form.
var nextBootChoices = []deploy.NextBoot{deploy.NextBootAuto, deploy.NextBootDeploy, deploy.NextBootLocal}

type deviceRow struct {
	wire.DeviceView
	Runs      int
	LastRun   *deploy.Run
	LastState deploy.RunState
}

func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request) {
	var list []wire.DeviceView
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/devices", nil, &list); err != nil {
		c.fail(w, r, code, err)
		return
	}
	runs, err := c.d.Store.Runs(r.Context(), deploy.RunFilter{Limit: 1000})
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	byDev := map[string][]*deploy.Run{}
	for _, run := range runs {
		byDev[run.DeviceID] = append(byDev[run.DeviceID], run)
	}
	rows := make([]deviceRow, 0, len(list))
	for _, d := range list {
		row := deviceRow{DeviceView: d}
		rs := byDev[d.ID]
		row.Runs = len(rs)
		for _, run := range rs {
			if row.LastRun == nil || run.StartedAt.After(row.LastRun.StartedAt) {
				row.LastRun = run
			}
		}
		rows = append(rows, row)
	}
	c.render(w, r, "devices", sessionOf(r), "Devices", map[string]any{"Devices": rows, "Choices": nextBootChoices})
}

func (c *Console) devicePage(w http.ResponseWriter, r *http.Request) {
	id, err := pathDeviceID(r)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	var d wire.DeviceView
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/devices/"+url.PathEscape(id), nil, &d); err != nil {
		c.fail(w, r, code, err)
		return
	}
	runs, err := c.d.Store.Runs(r.Context(), deploy.RunFilter{DeviceID: d.ID, Limit: 200})
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	slices.SortFunc(runs, func(a, b *deploy.Run) int { return b.StartedAt.Compare(a.StartedAt) })
	rows := make([]runRow, 0, len(runs))
	for _, run := range runs {
		ts, _ := c.d.Store.TaskSequence(r.Context(), run.TaskSequenceID)
		rows = append(rows, c.row(run, ts))
	}
	c.render(w, r, "device", sessionOf(r), "Device "+d.ID, map[string]any{"Device": d, "Runs": rows, "Choices": nextBootChoices})
}

func (c *Console) deviceNextBoot(w http.ResponseWriter, r *http.Request) {
	id, err := pathDeviceID(r)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	nb := deploy.NextBoot(r.PostFormValue("nextBoot"))
	if code, err := c.adminJSON(r, http.MethodPut, "/admin/v1/devices/"+url.PathEscape(id)+"/nextboot", wire.NextBootRequest{NextBoot: nb}, nil); err != nil {
		c.fail(w, r, code, fmt.Errorf("next boot: %w", err))
		return
	}
	to := "/devices"
	if r.PostFormValue("from") == "device" {
		to = "/devices/" + url.PathEscape(id)
	}
	back(w, r, to, fmt.Sprintf("%s will next boot: %s.", id, nb))
}

// runCancel ends a run as canceled (its agent is refused from then on).
func (c *Console) runCancel(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "run")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	if code, err := c.adminJSON(r, http.MethodPost, "/admin/v1/runs/"+url.PathEscape(id)+"/cancel", nil, nil); err != nil {
		c.fail(w, r, code, fmt.Errorf("cancel run: %w", err))
		return
	}
	back(w, r, "/runs/"+url.PathEscape(id), "Run canceled: its agent can report nothing more.")
}

// Boot images.

func (c *Console) bootImagesPage(w http.ResponseWriter, r *http.Request) {
	var list []wire.BootImage
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/bootimages", nil, &list); err != nil {
		c.fail(w, r, code, err)
		return
	}
	c.render(w, r, "bootimages", sessionOf(r), "Boot images", map[string]any{
		"Images": list, "Job": c.build.view(), "CanBuild": c.d.BuildBootImage != nil})
}

// bootImageISO streams the ISO the admin API builds for this server; an
// error from it is shown as a page.
func (c *Console) bootImageISO(w http.ResponseWriter, r *http.Request) {
	ctx := c.d.WithActor(r.Context(), actorName(sessionOf(r).user))
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/admin/v1/bootimages/"+url.PathEscape(r.PathValue("arch"))+"/iso", nil)
	req.RemoteAddr = r.RemoteAddr
	for _, h := range []string{"Range", "If-Range"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	ew := &errorCatcher{ResponseWriter: w}
	c.d.Admin.ServeHTTP(ew, req)
	if ew.status >= 300 {
		c.fail(w, r, ew.status, fmt.Errorf("boot image ISO: %s", apiMessage(ew.body.Bytes())))
	}
}

// errorCatcher passes a successful answer through and keeps an error's
// body instead (to show it as a page).
type errorCatcher struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (e *errorCatcher) WriteHeader(code int) {
	if e.status != 0 {
		return
	}
	e.status = code
	if code < 300 {
		e.ResponseWriter.WriteHeader(code)
	}
}

func (e *errorCatcher) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.WriteHeader(http.StatusOK)
	}
	if e.status >= 300 {
		return e.body.Write(b)
	}
	return e.ResponseWriter.Write(b)
}
