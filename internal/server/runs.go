package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// maxLogBundle bounds one uploaded log bundle.
const maxLogBundle = 256 << 20

type createRunRequest struct {
	TaskSequenceID string        `json:"taskSequenceId"`
	VersionNo      int           `json:"versionNo"`
	Device         deploy.Device `json:"device"`
}

func (s *Server) machineCreateRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess := sessionFrom(ctx)
	var req createRunRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	tsID := strings.ToLower(req.TaskSequenceID)
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
	if sess.TaskSequenceID == "" {
		if err := s.sessions.Bind(ctx, sess, ts.ID); err != nil {
			return err
		}
	}
	dev := sess.DeviceID
	if dev == "" {
		dev = deviceID(&req.Device)
	}
	now := s.now()
	run := &deploy.Run{DeviceID: dev, TaskSequenceID: ts.ID, VersionNo: req.VersionNo, SessionID: sess.ID,
		State: deploy.RunRunning, Steps: []deploy.StepResult{}, StartedAt: now, UpdatedAt: now}
	if err := s.store.CreateRun(ctx, run); err != nil {
		return err
	}
	s.log.Info("run started", "run", run.ID, "device", dev, "task_sequence", ts.Name, "version", req.VersionNo)
	s.record(ctx, &deploy.AuditEvent{Action: "run.start", Outcome: auth.OutcomeSuccess, Actor: sess.Subject, DeviceID: dev,
		Source: s.clientIP(r), Details: map[string]string{"run": run.ID, "taskSequence": ts.ID, "version": strconv.Itoa(req.VersionNo), "method": sess.Method}})
	writeJSON(w, http.StatusCreated, run)
	return nil
}

// ownRun loads {id} and checks it belongs to the caller's device.
func (s *Server) ownRun(r *http.Request) (*deploy.Run, error) {
	sess := sessionFrom(r.Context())
	run, err := s.store.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	// A run survives reboots, so a later session of the same device
	// (authenticated again after a reboot) may continue it.
	if run.SessionID != sess.ID && (run.DeviceID == "" || run.DeviceID != sess.DeviceID) {
		return nil, deploy.Errorf(deploy.KindNotFound, "run %s not found", r.PathValue("id"))
	}
	return run, nil
}

// agentEvent is what the agent sends; see docs/api.md.
type agentEvent struct {
	Type       string             `json:"type"`
	Time       time.Time          `json:"time"`
	StepID     string             `json:"stepId"`
	Path       string             `json:"path"`
	Name       string             `json:"name"`
	Outcome    deploy.StepOutcome `json:"outcome"`
	ExitCode   *int               `json:"exitCode"`
	Message    string             `json:"message"`
	OutputTail string             `json:"outputTail"`
	Duration   float64            `json:"durationSeconds"`
	State      deploy.RunState    `json:"state"`
	// BytesDone and BytesTotal are a progress event's transfer count.
	BytesDone  int64 `json:"bytesDone,omitempty"`
	BytesTotal int64 `json:"bytesTotal,omitempty"`
}

const maxOutputTail = 8 << 10

func (s *Server) machineRunEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.ownRun(r)
	if err != nil {
		return err
	}
	var events []agentEvent
	if err := decodeJSON(w, r, &events); err != nil {
		return err
	}
	for i, e := range events {
		switch e.Type {
		case "step-start", "step-end", "log", "progress", "run-end":
		default:
			return deploy.Errorf(deploy.KindInvalid, "events[%d].type: %q is not step-start, step-end, log, progress or run-end", i, e.Type)
		}
	}
	for _, e := range events {
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		if len(e.OutputTail) > maxOutputTail {
			e.OutputTail = e.OutputTail[len(e.OutputTail)-maxOutputTail:]
		}
		data, _ := json.Marshal(e)
		if err := s.store.AppendRunEvent(ctx, &deploy.RunEvent{RunID: run.ID, Time: e.Time, Type: e.Type,
			StepID: e.StepID, Message: e.Message, Data: data}); err != nil {
			return err
		}
		applyEvent(run, e)
	}
	run.UpdatedAt = s.now()
	if err := s.store.UpdateRun(ctx, run); err != nil {
		return err
	}
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

func ended(events []agentEvent) bool {
	for _, e := range events {
		if e.Type == "run-end" && e.State.Terminal() {
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
func applyEvent(run *deploy.Run, e agentEvent) {
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
	case "progress":
		if e.BytesDone > 0 || e.BytesTotal > 0 {
			run.Progress = &deploy.RunProgress{Name: e.Name, Done: e.BytesDone, Total: e.BytesTotal, Time: e.Time}
		}
		return
	}
	if e.Type != "log" {
		run.Progress = nil // a step started or ended: the transfer is over
	}
	switch e.Type {
	case "step-start":
		st := find()
		st.Outcome, st.StartedAt, st.ExitCode, st.Message = deploy.StepRunning, e.Time, nil, ""
		run.CurrentStep = st.Path
		if run.State.Terminal() {
			return
		}
		run.State = deploy.RunRunning
	case "step-end":
		st := find()
		st.Outcome, st.ExitCode, st.Message, st.OutputTail = e.Outcome, e.ExitCode, e.Message, e.OutputTail
		if st.StartedAt.IsZero() {
			st.StartedAt = e.Time
		}
		st.Duration = e.Duration
	case "run-end":
		if e.State.Terminal() {
			run.State = e.State
			t := e.Time
			run.EndedAt = &t
			run.Error = e.Message
			run.CurrentStep = ""
			// Steps still open when the run ends (the groups around a final
			// Reboot, or a step the agent was killed in) take the run's end.
			for i := range run.Steps {
				st := &run.Steps[i]
				if st.Outcome != deploy.StepRunning {
					continue
				}
				st.Outcome = deploy.StepFailed
				if e.State == deploy.RunSucceeded {
					st.Outcome = deploy.StepSucceeded
				}
				if !st.StartedAt.IsZero() {
					st.Duration = e.Time.Sub(st.StartedAt).Seconds()
				}
			}
		}
	}
}

// machineRunLogs stores the agent's log bundle beside the database.
func (s *Server) machineRunLogs(w http.ResponseWriter, r *http.Request) error {
	run, err := s.ownRun(r)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.cfg.DataDir, "logs", run.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	name := s.now().UTC().Format("20060102_150405") + ".tar.gz"
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, maxLogBundle))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
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

// Admin views of runs.

func (s *Server) adminListRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := deploy.RunFilter{DeviceID: q.Get("device"), TaskSequenceID: q.Get("ts"), State: deploy.RunState(q.Get("state")), Limit: 200}
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
	run, err := s.store.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) adminRunEvents(w http.ResponseWriter, r *http.Request) error {
	var after int64
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	if _, err := s.store.Run(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	ev, err := s.store.RunEvents(r.Context(), r.PathValue("id"), after)
	if err != nil {
		return err
	}
	if ev == nil {
		ev = []*deploy.RunEvent{}
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

// adminRunLogs lists the run's log bundles, or sends one (?name=).
func (s *Server) adminRunLogs(w http.ResponseWriter, r *http.Request) error {
	run, err := s.store.Run(r.Context(), r.PathValue("id"))
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
