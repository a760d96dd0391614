package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// Building a boot image from the console: an admin's POST starts the
// server's build (Deps.BuildBootImage, the code `imprint bootimage build`
// runs) as a background job of the server process, not of the request:
// closing the page does not stop it. One job runs at a time; a second
// start while it runs is refused with 409. The job's state and log lines
// are kept in memory (the last maxBuildLines) and shown on the boot
// images page, which static/bootbuild.js polls through GET
// /bootimages/build while the job runs.

// maxBuildLines bounds the log lines a build job keeps (the oldest go);
// maxBuildLine bounds one line.
const (
	maxBuildLines = 2000
	maxBuildLine  = 4096
)

// Build job states.
const (
	jobRunning   = "running"
	jobSucceeded = "succeeded"
	jobFailed    = "failed"
)

// buildJob is the console's one boot-image build (the last one, or the
// running one).
type buildJob struct {
	mu      sync.Mutex
	state   string // "" before the first build
	by      string // the account that started it
	started time.Time
	ended   time.Time
	lines   []string
	dropped int    // lines dropped from the front
	partial []byte // a line not yet ended by '\n'
	err     string
}

// jobView is the job as GET /bootimages/build answers it and the page
// shows it.
type jobView struct {
	State   string    `json:"state"`
	By      string    `json:"by,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	Lines   []string  `json:"lines"`
	Dropped int       `json:"dropped,omitempty"`
	Error   string    `json:"error,omitempty"`
}

func (j *buildJob) view() jobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	lines := append([]string{}, j.lines...)
	if len(j.partial) > 0 {
		lines = append(lines, string(j.partial))
	}
	return jobView{State: j.state, By: j.by, Started: j.started, Ended: j.ended, Lines: lines, Dropped: j.dropped, Error: j.err}
}

// start claims the job for a new build, or reports that one runs.
func (j *buildJob) start(by string, now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state == jobRunning {
		return false
	}
	j.state, j.by, j.started, j.ended = jobRunning, by, now, time.Time{}
	j.lines, j.dropped, j.partial, j.err = nil, 0, nil, ""
	return true
}

func (j *buildJob) finish(err error, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.partial) > 0 {
		j.addLocked(string(j.partial))
		j.partial = nil
	}
	j.state, j.ended = jobSucceeded, now
	if err != nil {
		j.state, j.err = jobFailed, err.Error()
	}
}

// Write takes the build's log output, split into lines.
func (j *buildJob) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxBuildLine - len(j.partial)
			if len(p) > room {
				p = p[:max(room, 0)]
			}
			j.partial = append(j.partial, p...)
			break
		}
		line := append(j.partial, p[:i]...)
		j.partial = nil
		j.addLocked(string(line))
		p = p[i+1:]
	}
	return n, nil
}

func (j *buildJob) addLocked(line string) {
	line = strings.TrimRight(line, "\r")
	if len(line) > maxBuildLine {
		line = line[:maxBuildLine]
	}
	if len(j.lines) >= maxBuildLines {
		j.lines = j.lines[1:]
		j.dropped++
	}
	j.lines = append(j.lines, line)
}

// bootImageBuild starts the build job (admins only, CSRF checked by
// c.change).
func (c *Console) bootImageBuild(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	if c.d.BuildBootImage == nil {
		c.fail(w, r, http.StatusNotImplemented, errors.New("this server cannot build boot images: run imprint bootimage build on it"))
		return
	}
	if !c.build.start(s.user, c.d.Now()) {
		c.audit(r, s, "console.bootimage.build", auth.OutcomeFailure, map[string]string{"reason": "a build is already running"})
		c.fail(w, r, http.StatusConflict, errors.New("a boot image build is already running: wait for it to end (its log is on the boot images page)"))
		return
	}
	c.audit(r, s, "console.bootimage.build", auth.OutcomeStarted, nil)
	actor, source := actorName(s.user), c.d.ClientIP(r)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		defer cancel()
		go func() {
			select {
			case <-c.stop: // the server is shutting down
				cancel()
			case <-ctx.Done():
			}
		}()
		fmt.Fprintf(&c.build, "build started by %s\n", s.user)
		err := c.d.BuildBootImage(ctx, &c.build)
		if err != nil {
			fmt.Fprintf(&c.build, "error: %v\n", err)
		}
		// The outcome is audited before the job shows it ended, so whoever
		// sees it ended finds it in the audit log.
		e := &deploy.AuditEvent{Actor: actor, Action: "console.bootimage.build", Outcome: auth.OutcomeSuccess, Source: source,
			Details: map[string]string{"consoleSession": s.id}}
		if err != nil {
			e.Outcome, e.Details["error"] = auth.OutcomeFailure, err.Error()
		}
		if err := c.d.Record(context.WithoutCancel(ctx), e); err != nil {
			c.d.Log.Error("audit write failed", "action", e.Action, "err", err)
		}
		c.build.finish(err, c.d.Now())
	}()
	back(w, r, "/bootimages", "Boot image build started: its log follows below.")
}

// bootImageBuildState answers the job's state and log as JSON (for
// static/bootbuild.js).
func (c *Console) bootImageBuildState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(c.build.view())
}
