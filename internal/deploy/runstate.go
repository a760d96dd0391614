package deploy

import "time"

// The run state machine, in one place. A run is created running (pending
// is kept for records that predate it) and moves:
//
//	pending, running  --a step starts-->            running
//	any but canceled  --the agent reports its end--> the terminal state it reports
//	pending, running  --an administrator cancels-->  canceled
//	pending, running  --the agent falls silent-->    lost (the store's MarkLostRuns)
//
// A run that ended stays ended when a step starts (an agent replaying its
// outbox), and an agent that comes back after its run was marked lost may
// still report the end. Nothing moves a canceled run: its agent is told to
// stop (AcceptsAgentReports).

// AcceptsAgentReports reports whether the agent may still post events to
// the run: not once an administrator canceled it.
func (r *Run) AcceptsAgentReports() error {
	if r.State == RunCanceled {
		return Errorf(KindConflict, "run %s was canceled by an administrator: stop it", r.ID)
	}
	return nil
}

// StepStarted records that the agent started the step at path: the run
// is running unless it has already ended.
func (r *Run) StepStarted(path string) {
	r.CurrentStep = path
	if !r.State.Terminal() {
		r.State = RunRunning
	}
}

// Finish ends the run in state (which must be terminal; otherwise nothing
// changes and Finish returns false) at the time the agent gives, with its
// message. Steps still open (the groups around a final Reboot, or a step
// the agent was killed in) take the run's end.
func (r *Run) Finish(state RunState, at time.Time, message string) bool {
	if !state.Terminal() || r.State == RunCanceled {
		return false
	}
	r.State = state
	t := at
	r.EndedAt = &t
	r.Error = message
	r.CurrentStep = ""
	for i := range r.Steps {
		st := &r.Steps[i]
		if st.Outcome != StepRunning {
			continue
		}
		st.Outcome = StepFailed
		if state == RunSucceeded {
			st.Outcome = StepSucceeded
		}
		if !st.StartedAt.IsZero() {
			st.Duration = at.Sub(st.StartedAt).Seconds()
		}
	}
	return true
}

// Cancel ends a run that has not ended as canceled by an administrator;
// a run that has ended is a KindConflict error.
func (r *Run) Cancel(at time.Time, by string) error {
	if r.State.Terminal() {
		return Errorf(KindConflict, "run %s has already ended (%s)", r.ID, r.State)
	}
	t := at
	r.State, r.EndedAt, r.Error = RunCanceled, &t, "canceled by "+by
	return nil
}
