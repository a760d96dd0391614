package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// runRow is one line of the dashboard.
type runRow struct {
	ID, Device, Sequence string
	Model                string // make and model the agent gathered
	VersionNo            int
	State                deploy.RunState
	Current              string
	Done, Total          int    // leaf steps started (step n of m), leaf steps in the version
	Percent              int    // leaf steps finished, of Total
	Transfer             string // "Windows 11: 1.2 GiB of 4.0 GiB" while a download or image write runs
	TransferPercent      int    // -1: no transfer or unknown size
	Elapsed              string
	Failed               bool
	Error                string
	Started              time.Time
}

type dashboardData struct {
	Active, Recent []runRow
}

// dashboardData is what the dashboard and its live stream show: runs in
// progress, then the most recent finished ones.
func (c *Console) dashboardData(r *http.Request) (dashboardData, error) {
	ctx := r.Context()
	runs, err := c.d.Store.Runs(ctx, deploy.RunFilter{Limit: 200})
	if err != nil {
		return dashboardData{}, err
	}
	slices.SortFunc(runs, func(a, b *deploy.Run) int { return b.StartedAt.Compare(a.StartedAt) })
	seqs := map[string]*deploy.TaskSequence{}
	devs := map[string]*deploy.Device{}
	var d dashboardData
	for _, run := range runs {
		ts, ok := seqs[run.TaskSequenceID]
		if !ok {
			ts, _ = c.d.Store.TaskSequence(ctx, run.TaskSequenceID) // a deleted sequence: shown by ID
			seqs[run.TaskSequenceID] = ts
		}
		dev, ok := devs[run.DeviceID]
		if !ok && run.DeviceID != "" {
			dev, _ = c.d.Store.Device(ctx, run.DeviceID)
			devs[run.DeviceID] = dev
		}
		row := c.row(run, ts)
		if dev != nil {
			row.Model = strings.TrimSpace(dev.Make + " " + dev.Model)
		}
		if run.State.Terminal() {
			if len(d.Recent) < 20 {
				d.Recent = append(d.Recent, row)
			}
		} else {
			d.Active = append(d.Active, row)
		}
	}
	return d, nil
}

func (c *Console) row(run *deploy.Run, ts *deploy.TaskSequence) runRow {
	row := runRow{ID: run.ID, Device: run.DeviceID, Sequence: run.TaskSequenceID, VersionNo: run.VersionNo,
		State: run.State, Current: run.CurrentStep, Error: run.Error, Started: run.StartedAt,
		Failed: run.State == deploy.RunFailed || run.State == deploy.RunLost}
	row.TransferPercent = -1
	if p := run.Progress; p != nil && !run.State.Terminal() {
		row.Transfer = humanBytes(p.Done)
		if p.Total > 0 {
			row.Transfer += " of " + humanBytes(p.Total)
			row.TransferPercent = int(100 * p.Done / p.Total)
		}
		if p.Name != "" {
			row.Transfer = p.Name + ": " + row.Transfer
		}
	}
	end := c.d.Now()
	if run.EndedAt != nil {
		end = *run.EndedAt
	}
	row.Elapsed = end.Sub(run.StartedAt).Round(time.Second).String()
	leaves := map[string]bool{}
	if ts != nil {
		row.Sequence = ts.Name
		if v, ok := ts.Version(run.VersionNo); ok {
			leafPaths(v.Steps, leaves)
		}
	}
	row.Total = len(leaves)
	finished := 0
	for _, st := range run.Steps {
		if leaves[st.Path] {
			row.Done++
			if st.Outcome != deploy.StepRunning {
				finished++
			}
		}
		if st.Outcome == deploy.StepFailed {
			row.Failed = true
		}
	}
	if row.Total > 0 {
		row.Percent = 100 * finished / row.Total
		if run.State == deploy.RunSucceeded {
			row.Percent = 100
		}
	}
	return row
}

// leafPaths adds the path ("Group/Sub/Step", as the agent reports it) of
// every step that is not a group.
func leafPaths(steps []deploy.Step, out map[string]bool) {
	for at := range deploy.Steps(steps) {
		if !at.Step.IsGroup {
			out[at.Path] = true
		}
	}
}

type runData struct {
	Run  *deploy.Run
	Row  runRow
	Logs []string
	// Conditions are the readable conditions of the version's steps, by
	// path: the run page says why a step was skipped.
	Conditions map[string]string
}

// conditions maps each step path with a condition to its readable form.
func conditions(steps []deploy.Step, out map[string]string) {
	for at := range deploy.Steps(steps) {
		st, p := at.Step, at.Path
		if st.Condition != nil && strings.TrimSpace(*st.Condition) != "" {
			if c, err := sequence.ParseCondition(*st.Condition); err == nil && c != nil {
				out[p] = c.String()
			} else {
				out[p] = *st.Condition
			}
		}
	}
}

func (c *Console) runData(r *http.Request, id string) (runData, error) {
	run, err := c.d.Store.Run(r.Context(), id)
	if err != nil {
		return runData{}, err
	}
	ts, _ := c.d.Store.TaskSequence(r.Context(), run.TaskSequenceID)
	d := runData{Run: run, Row: c.row(run, ts), Conditions: map[string]string{}}
	if ts != nil {
		if v, ok := ts.Version(run.VersionNo); ok {
			conditions(v.Steps, d.Conditions)
		}
	}
	if _, err := c.adminJSON(r, http.MethodGet, "/admin/v1/runs/"+url.PathEscape(run.ID)+"/logs", nil, &d.Logs); err != nil {
		return runData{}, err
	}
	return d, nil
}

// Live updates: each stream renders a fragment every Poll, and at once
// when a run changes on any replica (Deps.Changes), and sends it as one
// SSE event when it changed, with a comment every 15 s to keep
// proxies from closing it. The store is the source, as for
// `imprint runs events --follow`.

func (c *Console) sseDashboard(w http.ResponseWriter, r *http.Request) {
	c.stream(w, r, "", func(ctx context.Context) ([]byte, error) {
		d, err := c.dashboardData(r)
		if err != nil {
			return nil, err
		}
		return c.fragment("dashboard", "runs", d)
	})
}

func (c *Console) sseRun(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "run")
	if err != nil {
		http.Error(w, deploy.ErrorMessage(err), http.StatusBadRequest)
		return
	}
	c.stream(w, r, id, func(ctx context.Context) ([]byte, error) {
		d, err := c.runData(r, id)
		if err != nil {
			return nil, err
		}
		return c.fragment("run", "steps", d)
	})
}

// fragment renders one named template of a page.
func (c *Console) fragment(page, name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, name, view{Data: data}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// liveGap is the least time between two renders a run change causes: a
// thousand machines each reporting every 2 s change some run 500 times a
// second, and a dashboard need not render that often.
const liveGap = 250 * time.Millisecond

// stream sends render's fragment when it changes; it renders every Poll,
// and on a change of run runID ("" any run; Deps.Changes) as soon as
// liveGap has passed since its last render.
func (c *Console) stream(w http.ResponseWriter, r *http.Request, runID string, render func(context.Context) ([]byte, error)) {
	var changed <-chan struct{} // nil: only the ticker wakes
	if c.d.Changes != nil {
		ch, unsub := c.d.Changes(runID)
		defer unsub()
		changed = ch
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	var last []byte
	tick := time.NewTicker(c.d.Poll)
	defer tick.Stop()
	keep := time.Now()
	for {
		rendered := time.Now()
		b, err := render(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.d.Log.Warn("console: live update", "path", r.URL.Path, "err", err)
			fmt.Fprintf(w, "event: failure\ndata: %s\n\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else if !bytes.Equal(b, last) {
			last = b
			var ev bytes.Buffer
			ev.WriteString("event: update\n")
			for _, line := range bytes.Split(b, []byte("\n")) {
				ev.WriteString("data: ")
				ev.Write(bytes.TrimRight(line, "\r"))
				ev.WriteByte('\n')
			}
			ev.WriteByte('\n')
			w.Write(ev.Bytes())
			keep = time.Now()
		} else if time.Since(keep) > 15*time.Second {
			w.Write([]byte(": keep-alive\n\n"))
			keep = time.Now()
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-tick.C:
		case <-changed:
			if wait := liveGap - time.Since(rendered); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-c.stop:
					return
				case <-time.After(wait):
				}
			}
		}
	}
}
