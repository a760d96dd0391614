package deploy_test

import (
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// TestRunStateMachine walks every transition from every state.
func TestRunStateMachine(t *testing.T) {
	at := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	all := []deploy.RunState{deploy.RunPending, deploy.RunRunning, deploy.RunSucceeded, deploy.RunFailed, deploy.RunLost, deploy.RunCanceled}
	tests := []struct {
		name string
		do   func(r *deploy.Run) error
		// want is the state after, by state before; missing: unchanged.
		want    map[deploy.RunState]deploy.RunState
		refused map[deploy.RunState]bool // the call returns an error
	}{
		{"step starts", func(r *deploy.Run) error { r.StepStarted("Format"); return nil },
			map[deploy.RunState]deploy.RunState{deploy.RunPending: deploy.RunRunning}, nil},
		{"agent reports failure", func(r *deploy.Run) error { r.Finish(deploy.RunFailed, at, "disk"); return nil },
			map[deploy.RunState]deploy.RunState{deploy.RunPending: deploy.RunFailed, deploy.RunRunning: deploy.RunFailed,
				deploy.RunSucceeded: deploy.RunFailed, deploy.RunLost: deploy.RunFailed}, nil},
		{"agent reports a state that is not an end", func(r *deploy.Run) error { r.Finish(deploy.RunRunning, at, ""); return nil },
			nil, nil},
		{"administrator cancels", func(r *deploy.Run) error { return r.Cancel(at, "admin") },
			map[deploy.RunState]deploy.RunState{deploy.RunPending: deploy.RunCanceled, deploy.RunRunning: deploy.RunCanceled},
			map[deploy.RunState]bool{deploy.RunSucceeded: true, deploy.RunFailed: true, deploy.RunLost: true, deploy.RunCanceled: true}},
		{"agent reports at all", func(r *deploy.Run) error { return r.AcceptsAgentReports() },
			nil, map[deploy.RunState]bool{deploy.RunCanceled: true}},
	}
	for _, tt := range tests {
		for _, from := range all {
			t.Run(tt.name+" from "+string(from), func(t *testing.T) {
				r := &deploy.Run{ID: "r1", State: from, Steps: []deploy.StepResult{{Path: "Group/Reboot", Outcome: deploy.StepRunning, StartedAt: at.Add(-time.Minute)}}}
				err := tt.do(r)
				if (err != nil) != tt.refused[from] {
					t.Fatalf("error = %v, want refused %v", err, tt.refused[from])
				}
				if err != nil && deploy.ErrorKind(err) != deploy.KindConflict {
					t.Errorf("refusal %v is %s, want conflict", err, deploy.ErrorKind(err))
				}
				want, ok := tt.want[from]
				if !ok {
					want = from
				}
				if r.State != want {
					t.Errorf("state %s, want %s", r.State, want)
				}
				if want.Terminal() && want != from && (r.EndedAt == nil || !r.EndedAt.Equal(at)) {
					t.Errorf("ended at %v, want %v", r.EndedAt, at)
				}
			})
		}
	}
}

// TestFinishClosesOpenSteps: steps still running when the run ends take
// the run's outcome and their duration up to the end.
func TestFinishClosesOpenSteps(t *testing.T) {
	at := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		state deploy.RunState
		want  deploy.StepOutcome
	}{{deploy.RunSucceeded, deploy.StepSucceeded}, {deploy.RunFailed, deploy.StepFailed}, {deploy.RunLost, deploy.StepFailed}} {
		r := &deploy.Run{State: deploy.RunRunning, CurrentStep: "Group/Reboot", Steps: []deploy.StepResult{
			{Path: "Format", Outcome: deploy.StepSucceeded, Duration: 3},
			{Path: "Group/Reboot", Outcome: deploy.StepRunning, StartedAt: at.Add(-90 * time.Second)},
		}}
		if !r.Finish(tt.state, at, "done") {
			t.Fatalf("Finish(%s) refused", tt.state)
		}
		if r.Steps[0].Outcome != deploy.StepSucceeded || r.Steps[0].Duration != 3 {
			t.Errorf("%s: a closed step changed: %+v", tt.state, r.Steps[0])
		}
		if st := r.Steps[1]; st.Outcome != tt.want || st.Duration != 90 {
			t.Errorf("%s: open step %+v, want %s after 90 s", tt.state, st, tt.want)
		}
		if r.CurrentStep != "" || r.Error != "done" {
			t.Errorf("%s: current step %q, error %q", tt.state, r.CurrentStep, r.Error)
		}
	}
}
