package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

func (s *Server) machineCreateRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess := sessionFrom(ctx)
	var req wire.CreateRunRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	tsID, err := deploy.ParseID("task sequence", req.TaskSequenceID)
	if err != nil {
		return err
	}
	// Another sequence than the bound one, an unknown one and a version
	// that is not Active all get the same answer (security.md TK-2).
	notFound := deploy.Errorf(deploy.KindNotFound, "task sequence %s version %d not found", tsID, req.VersionNo)
	if sess.TaskSequenceID != "" && sess.TaskSequenceID != tsID {
		return notFound
	}
	ts, err := s.store.TaskSequence(ctx, tsID)
	if deploy.IsNotFound(err) {
		return notFound
	} else if err != nil {
		return err
	}
	if v, ok := ts.Version(req.VersionNo); !ok || v.Status != deploy.StatusActive {
		return notFound
	}
	if err := s.use.startRun(sess, s.now()); err != nil {
		return err
	}
	if sess.TaskSequenceID == "" {
		if err := s.sessions.Bind(ctx, sess, ts.ID); err != nil {
			return err
		}
	}
	dev := sess.DeviceID
	if dev == "" {
		// A session that logged in without an identity names its device
		// here: checked like one at login (GN-6).
		d := req.Device.Device()
		if err := d.Normalize(); err != nil {
			return err
		}
		dev = deviceID(&d)
	}
	now := s.now()
	run := &deploy.Run{DeviceID: dev, TaskSequenceID: ts.ID, VersionNo: req.VersionNo, SessionID: sess.ID,
		State: deploy.RunRunning, Steps: []deploy.StepResult{}, StartedAt: now, UpdatedAt: now}
	if err := s.store.CreateRun(ctx, run); err != nil {
		return err
	}
	s.feed.publish(run.ID)
	s.log.Info("run started", "run", run.ID, "device", dev, "task_sequence", ts.Name, "version", req.VersionNo)
	s.record(ctx, &deploy.AuditEvent{Action: "run.start", Outcome: auth.OutcomeSuccess, Actor: sess.Subject, DeviceID: dev,
		Source: s.clientIP(r), Details: map[string]string{"run": run.ID, "taskSequence": ts.ID, "version": strconv.Itoa(req.VersionNo), "method": sess.Method}})
	writeJSON(w, http.StatusCreated, run)
	return nil
}

// ownRun loads {id} and checks it belongs to the caller's device.
func (s *Server) ownRun(r *http.Request) (*deploy.Run, error) {
	sess := sessionFrom(r.Context())
	id, err := pathID(r, "run")
	if err != nil {
		return nil, err
	}
	run, err := s.store.Run(r.Context(), id)
	if err != nil {
		return nil, err
	}
	// A run survives reboots, so a later session of the same device
	// (authenticated again after a reboot) may continue it.
	if run.SessionID != sess.ID && (run.DeviceID == "" || run.DeviceID != sess.DeviceID) {
		return nil, deploy.Errorf(deploy.KindNotFound, "run %s not found", id)
	}
	return run, nil
}

const maxOutputTail = 8 << 10

// decodeEvents reads the JSON array of events one at a time, refusing
// (413) an event larger than the quota, and more events than one request
// may carry, before reading further. The error names the event
// ("events[3]") so that a client can cut or drop that one.
func (s *Server) decodeEvents(w http.ResponseWriter, r *http.Request) (events []wire.Event, size int64, err error) {
	q := s.use.q
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDocumentBytes))
	bad := func(err error) error {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return deploy.Errorf(deploy.KindInvalid, "request body is empty")
		}
		return deploy.Errorf(deploy.KindInvalid, "request body is not valid JSON: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, 0, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, 0, deploy.Errorf(deploy.KindInvalid, "request body must be a JSON array of events")
	}
	for i := 0; dec.More(); i++ {
		if i == q.EventsPerRequest {
			return nil, 0, &deploy.Error{Kind: deploy.KindTooLarge,
				Message: fmt.Sprintf("more than %d events in one request; send them in batches of at most %d", q.EventsPerRequest, q.EventsPerRequest),
				Fields:  []deploy.FieldError{{Field: "events", Message: fmt.Sprintf("at most %d per request", q.EventsPerRequest)}}}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, 0, bad(err)
		}
		if len(raw) > q.EventBytes {
			field := fmt.Sprintf("events[%d]", i)
			return nil, 0, &deploy.Error{Kind: deploy.KindTooLarge,
				Message: fmt.Sprintf("%s is %s; one event may be at most %s", field, sizeText(int64(len(raw))), sizeText(int64(q.EventBytes))),
				Fields:  []deploy.FieldError{{Field: field, Message: fmt.Sprintf("at most %d bytes", q.EventBytes)}}}
		}
		var e wire.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, 0, deploy.Errorf(deploy.KindInvalid, "events[%d]: %v", i, err)
		}
		events = append(events, e)
		size += int64(len(raw))
	}
	if _, err := dec.Token(); err != nil {
		return nil, 0, bad(err)
	}
	if dec.More() {
		return nil, 0, deploy.Errorf(deploy.KindInvalid, "request body has data after the JSON document")
	}
	return events, size, nil
}

func (s *Server) machineRunEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.ownRun(r)
	if err != nil {
		return err
	}
	if err := run.AcceptsAgentReports(); err != nil {
		return err
	}
	events, size, err := s.decodeEvents(w, r)
	if err != nil {
		return err
	}
	if err := s.use.addEvents(sessionFrom(ctx), len(events), size, s.now()); err != nil {
		return err
	}
	for i, e := range events {
		if !wire.KnownEvent(e.Type) {
			return deploy.Errorf(deploy.KindInvalid, "events[%d].type: %q is not step-start, step-end, log, progress or run-end", i, e.Type)
		}
		if err := deploy.ValidateDownloads(e.Downloads); err != nil {
			return deploy.Errorf(deploy.KindInvalid, "events[%d].downloads: %s", i, deploy.ErrorMessage(err))
		}
	}
	stored := make([]*deploy.RunEvent, len(events))
	for i, e := range events {
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		if len(e.OutputTail) > maxOutputTail {
			e.OutputTail = e.OutputTail[len(e.OutputTail)-maxOutputTail:]
		}
		data, _ := json.Marshal(e)
		stored[i] = &deploy.RunEvent{RunID: run.ID, Time: e.Time, Type: e.Type, StepID: e.StepID, Message: e.Message, Data: data}
		applyEvent(run, e)
	}
	// The events and the run they change are one write, which the store
	// commits together with other machines' (group commit).
	if err := s.store.AppendRunEvents(ctx, run, stored); err != nil {
		return err
	}
	s.feed.publish(run.ID)
	s.metrics.stepEvents(run, events)
	if ended(events) && run.State.Terminal() {
		outcome := auth.OutcomeSuccess
		if run.State != deploy.RunSucceeded {
			outcome = auth.OutcomeFailure
		}
		s.record(ctx, &deploy.AuditEvent{Action: "run.end", Outcome: outcome, DeviceID: run.DeviceID, Source: s.clientIP(r),
			Details: map[string]string{"run": run.ID, "taskSequence": run.TaskSequenceID, "version": strconv.Itoa(run.VersionNo), "state": string(run.State)}})
		// The session has nothing left to do but upload the logs
		// (machineRunLogs revokes it then); it must not outlive the run
		// (security.md TK-4).
		if err := s.sessions.ExpireWithin(ctx, sessionFrom(ctx), runEndGrace); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// runEndGrace is how long a session lives after its run ended, for the
// agent to upload the run's logs.
const runEndGrace = 5 * time.Minute

func ended(events []wire.Event) bool {
	for _, e := range events {
		if e.Type == wire.EventRunEnd && e.State.Terminal() {
			return true
		}
	}
	return false
}

// revokeFinished revokes the sessions of a run that has ended: the one
// calling and the one that started the run (they differ after a reboot).
func (s *Server) revokeFinished(ctx context.Context, run *deploy.Run) error {
	ids := []string{sessionFrom(ctx).ID}
	if run.SessionID != "" && run.SessionID != ids[0] {
		ids = append(ids, run.SessionID)
	}
	for _, id := range ids {
		n, err := s.store.RevokeSessions(ctx, deploy.SessionFilter{ID: id}, s.now())
		if err != nil {
			return err
		}
		if n > 0 {
			s.record(ctx, &deploy.AuditEvent{Action: "session.revoke", Outcome: auth.OutcomeSuccess, Actor: "run:" + run.ID,
				DeviceID: run.DeviceID, Details: map[string]string{"session": id, "reason": "run " + string(run.State)}})
		}
	}
	return nil
}

// applyEvent folds one agent event into the run record.
func applyEvent(run *deploy.Run, e wire.Event) {
	find := func() *deploy.StepResult {
		key := e.Path
		if key == "" {
			key = e.StepID
		}
		for i := range run.Steps {
			if run.Steps[i].Path == key || (e.Path == "" && run.Steps[i].StepID == e.StepID) {
				return &run.Steps[i]
			}
		}
		run.Steps = append(run.Steps, deploy.StepResult{StepID: e.StepID, Name: e.Name, Path: key})
		return &run.Steps[len(run.Steps)-1]
	}
	switch e.Type {
	case wire.EventProgress:
		if e.BytesDone > 0 || e.BytesTotal > 0 {
			run.Progress = &deploy.RunProgress{Name: e.Name, Done: e.BytesDone, Total: e.BytesTotal, Time: e.Time}
		}
		return
	}
	if e.Type != wire.EventLog {
		run.Progress = nil // a step started or ended: the transfer is over
	}
	switch e.Type {
	case wire.EventStepStart:
		st := find()
		st.Outcome, st.StartedAt, st.ExitCode, st.Message = deploy.StepRunning, e.Time, nil, ""
		run.StepStarted(st.Path)
	case wire.EventStepEnd:
		st := find()
		st.Outcome, st.ExitCode, st.Message, st.OutputTail = e.Outcome, e.ExitCode, e.Message, e.OutputTail
		st.Downloads = e.Downloads
		if st.StartedAt.IsZero() {
			st.StartedAt = e.Time
		}
		st.Duration = e.DurationSeconds
	case wire.EventRunEnd:
		run.Finish(e.State, e.Time, e.Message)
	}
}

// machineRunLogs stores the agent's log bundle beside the database,
// within the run's quota of bundles and bytes.
func (s *Server) machineRunLogs(w http.ResponseWriter, r *http.Request) error {
	run, err := s.ownRun(r)
	if err != nil {
		return err
	}
	release, err := s.use.startUpload(w, run.ID)
	if err != nil {
		return err
	}
	defer release()
	sess := sessionFrom(r.Context())
	dir := filepath.Join(s.cfg.DataDir, "logs", run.ID)
	limit, err := s.logRoom(run.ID, dir, r.ContentLength, s.use.logRoom(sess, s.now()))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	name := s.now().UTC().Format("20060102_150405") + ".tar.gz"
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errLogRoom(limit, run.ID, s.use.q)
	}
	if err != nil {
		return err
	}
	s.use.addLogBytes(sess, n, s.now())
	if err := os.Rename(f.Name(), filepath.Join(dir, uniqueName(dir, name))); err != nil {
		return err
	}
	s.log.Info("run logs received", "run", run.ID, "bytes", n, "file", name)
	if run.State.Terminal() {
		// The logs are the last thing a finished run sends.
		if err := s.revokeFinished(r.Context(), run); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// logRoom is how many bytes the next log bundle of a run may have: at most
// one bundle's worth, what is left of the run's and what is left of the
// session's (sessionRoom). A run that has all its bundles gets 429; no
// bytes left, or an announced length that does not fit, 413.
func (s *Server) logRoom(runID, dir string, announced, sessionRoom int64) (int64, error) {
	q := s.use.q
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	count, used := 0, int64(0)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		count++
		if fi, err := e.Info(); err == nil {
			used += fi.Size()
		}
	}
	if count >= q.LogBundlesPerRun {
		return 0, deploy.Errorf(deploy.KindThrottled, "run %s already has %d log bundles, the most one run may upload", runID, count)
	}
	room := min(q.LogBundleBytes, q.LogBytesPerRun-used, sessionRoom)
	if room <= 0 || announced > room {
		return 0, errLogRoom(max(room, 0), runID, q)
	}
	return room, nil
}

func errLogRoom(room int64, runID string, q Quotas) error {
	return deploy.Errorf(deploy.KindTooLarge, "log bundle is larger than the %s run %s may still upload (one bundle: at most %s; one run: at most %s; one session: at most %s)",
		sizeText(room), runID, sizeText(q.LogBundleBytes), sizeText(q.LogBytesPerRun), sizeText(q.LogBytesPerSession))
}

// uniqueName is name, or name with a counter when dir already has it (two
// bundles in the same second).
func uniqueName(dir, name string) string {
	base := strings.TrimSuffix(name, ".tar.gz")
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s_%d.tar.gz", base, i)
	}
}

// Admin views of runs.

func (s *Server) adminListRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := deploy.RunFilter{State: deploy.RunState(q.Get("state")), Limit: 200}
	// The filters' ids are read like path ids: in any case or braces, and
	// a malformed one is refused rather than matching nothing.
	if v := q.Get("device"); v != "" {
		id, err := deploy.ParseDeviceID(v)
		if err != nil {
			return err
		}
		f.DeviceID = id
	}
	if v := q.Get("ts"); v != "" {
		id, err := deploy.ParseID("task sequence", v)
		if err != nil {
			return err
		}
		f.TaskSequenceID = id
	}
	runs, err := s.store.Runs(r.Context(), f)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []*deploy.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
	return nil
}

func (s *Server) adminGetRun(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "run")
	if err != nil {
		return err
	}
	run, err := s.store.Run(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// adminRunEvents sends the run's events with a seq above ?after=SEQ.
// ?wait=SECONDS (at most 60) makes it a long poll: with no event after
// SEQ yet it answers when the run changes (an event from any replica, its
// state) or the time is up, with what is there then, possibly nothing.
func (s *Server) adminRunEvents(w http.ResponseWriter, r *http.Request) error {
	var after int64
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return deploy.Errorf(deploy.KindInvalid, "wait: %q is not a number of seconds", v)
		}
		wait = min(time.Duration(n)*time.Second, maxEventsWait)
	}
	id, err := pathID(r, "run")
	if err != nil {
		return err
	}
	sub, unsub := s.feed.subscribe(id)
	defer unsub()
	if _, err := s.store.Run(r.Context(), id); err != nil {
		return err
	}
	ev, err := s.store.RunEvents(r.Context(), id, after)
	if err != nil {
		return err
	}
	if len(ev) == 0 && wait > 0 {
		s.feed.wait(r.Context(), sub, wait)
		if ev, err = s.store.RunEvents(r.Context(), id, after); err != nil {
			return err
		}
	}
	if ev == nil {
		ev = []*deploy.RunEvent{}
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

// adminRunLogs lists the run's log bundles, or sends one (?name=).
func (s *Server) adminRunLogs(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "run")
	if err != nil {
		return err
	}
	run, err := s.store.Run(r.Context(), id)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.cfg.DataDir, "logs", run.ID)
	if name := r.URL.Query().Get("name"); name != "" {
		if filepath.Base(name) != name || strings.HasPrefix(name, ".") {
			return deploy.Errorf(deploy.KindInvalid, "name: %q is not a log bundle name", name)
		}
		f, err := os.Open(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return deploy.Errorf(deploy.KindNotFound, "run %s has no log bundle %s", run.ID, name)
		} else if err != nil {
			return err
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/gzip")
		http.ServeContent(w, r, name, time.Time{}, f)
		return nil
	}
	names := []string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	writeJSON(w, http.StatusOK, names)
	return nil
}
