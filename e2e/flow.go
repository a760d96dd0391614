//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Console patterns of the boot image's agent and of the deployed test OS.
var (
	rePasscode  = regexp.MustCompile(`Passcode: `)
	reWrong     = regexp.MustCompile(`Wrong passcode\.`)
	rePicker    = regexp.MustCompile(`(?s)Task sequences:\r?\n(.*?)Choose 1-\d+: `)
	reSucceeded = regexp.MustCompile(`IMPRINT-RUN-SUCCEEDED`)
	reFailed    = regexp.MustCompile(`IMPRINT-RUN-FAILED:[^\r\n]*\r?\n`)
	rePanic     = regexp.MustCompile(`Kernel panic[^\r\n]*\r?\n|No bootable device\.`)
	reDeployed  = regexp.MustCompile(`IMPRINT-DEPLOYED-OK hostname=(\S+) marker=(\S+)\r?\n`)
	reOSFailed  = regexp.MustCompile(`IMPRINT-DEPLOYED-FAILED:[^\r\n]*\r?\n`)
)

// setPasscode sets the enrolment passcode over the admin API.
func (e *Env) setPasscode(ctx context.Context, pc string) {
	e.t.Helper()
	if err := e.adminDo(ctx, "PUT", "/admin/v1/passcode", map[string]string{"passcode": pc}, nil); err != nil {
		e.t.Fatal(err)
	}
}

// newTaskSequence creates a task sequence from template with the CLI,
// sets the Image content option of every step that has one to
// "imageID:1", applies settings (option name -> value, on every step that
// has that option), removes the steps named in drop and makes the version
// Active, so agents see it.
func (e *Env) newTaskSequence(ctx context.Context, template, name, imageID string, settings map[string]string, drop ...string) *deploy.TaskSequence {
	e.t.Helper()
	return e.newTaskSequenceEdit(ctx, template, name, imageID, settings, nil, drop...)
}

// newTaskSequenceEdit is newTaskSequence with edit, when not nil, called on
// the version's top-level steps last (to add steps).
func (e *Env) newTaskSequenceEdit(ctx context.Context, template, name, imageID string, settings map[string]string,
	edit func([]deploy.Step) []deploy.Step, drop ...string) *deploy.TaskSequence {
	t := e.t
	t.Helper()
	out, err := e.imprint(ctx, "", "--json", "ts", "new", "--template", template, "--name", name)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		TaskSequence *deploy.TaskSequence `json:"taskSequence"`
	}
	if err := jsonUnmarshal(out, &saved); err != nil || saved.TaskSequence == nil {
		t.Fatalf("ts new: cannot read %q: %v", out, err)
	}
	var ts deploy.TaskSequence
	if err := e.adminDo(ctx, "GET", "/admin/v1/tasksequences/"+saved.TaskSequence.ID, nil, &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts.Versions) == 0 {
		t.Fatalf("task sequence %s has no versions", ts.ID)
	}
	v := &ts.Versions[len(ts.Versions)-1]
	found := false
	var walk func(steps []deploy.Step) []deploy.Step
	walk = func(steps []deploy.Step) []deploy.Step {
		kept := steps[:0]
		for _, s := range steps {
			if slices.Contains(drop, s.Name) {
				continue
			}
			if _, ok := s.ContentItems["Image"]; ok {
				s.ContentItems["Image"] = imageID + ":1"
				found = true
			}
			for k, val := range settings {
				if _, ok := s.Settings[k]; ok {
					s.Settings[k] = val
				}
			}
			s.GroupMembers = walk(s.GroupMembers)
			kept = append(kept, s)
		}
		return kept
	}
	v.Steps = walk(v.Steps)
	if edit != nil {
		v.Steps = edit(v.Steps)
	}
	if !found {
		t.Fatalf("template %s has no step with an Image option", template)
	}
	v.Status = deploy.StatusActive
	var put struct {
		TaskSequence *deploy.TaskSequence `json:"taskSequence"`
		Warnings     []deploy.FieldError  `json:"warnings"`
	}
	if err := e.adminDo(ctx, "PUT", "/admin/v1/tasksequences/"+ts.ID, &ts, &put); err != nil {
		t.Fatal(err)
	}
	for _, w := range put.Warnings {
		t.Logf("task sequence warning: %+v", w)
	}
	return &ts
}

// authenticate answers the agent's passcode prompt: a wrong passcode
// first, which must be refused, then the right one.
func authenticate(ctx context.Context, c *Console, passcode string) error {
	if _, err := expectOrFail(ctx, c, rePasscode); err != nil {
		return err
	}
	if err := c.Send("wrong-" + passcode + "\r"); err != nil {
		return err
	}
	if _, err := expectOrFail(ctx, c, reWrong); err != nil {
		return fmt.Errorf("wrong passcode not refused: %w", err)
	}
	if _, err := expectOrFail(ctx, c, rePasscode); err != nil {
		return err
	}
	return c.Send(passcode + "\r")
}

// awaitRun waits for the run's end marker, choosing tsName when the agent
// shows its task-sequence picker.
func awaitRun(ctx context.Context, c *Console, tsName string) error {
	for {
		i, m, err := c.ExpectFirst(ctx, reSucceeded, reFailed, rePanic, rePicker, rePasscode)
		if err != nil {
			return err
		}
		switch i {
		case 0:
			return nil
		case 1, 2:
			return fmt.Errorf("guest: %s", strings.TrimSpace(m))
		case 3:
			n, err := pickerChoice(m, tsName)
			if err != nil {
				return err
			}
			if err := c.Send(n + "\r"); err != nil {
				return err
			}
		case 4:
			return fmt.Errorf("agent asked for the passcode again: the right passcode was refused")
		}
	}
}

// pickerChoice finds name's number in the agent's picker listing.
func pickerChoice(listing, name string) (string, error) {
	re := regexp.MustCompile(`(?m)^\s*(\d+)\. ` + regexp.QuoteMeta(name) + ` \(version`)
	m := re.FindStringSubmatch(listing)
	if m == nil {
		return "", fmt.Errorf("task sequence %q not offered by the agent; it offered:\n%s", name, listing)
	}
	return m[1], nil
}

// expectOrFail waits for re and fails early on a kernel panic or a
// failed run.
func expectOrFail(ctx context.Context, c *Console, re *regexp.Regexp) (string, error) {
	i, m, err := c.ExpectFirst(ctx, re, reFailed, rePanic)
	if err != nil {
		return "", err
	}
	if i != 0 {
		return "", fmt.Errorf("guest: %s (while waiting for /%s/)", strings.TrimSpace(m), re)
	}
	return m, nil
}

// lastRun returns the server's record of the only run of ts, waiting a
// little for the agent's final report to land.
func (e *Env) lastRun(ctx context.Context, tsID string) (*deploy.Run, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var runs []*deploy.Run
		if err := e.adminDo(ctx, "GET", "/admin/v1/runs?ts="+tsID, nil, &runs); err != nil {
			return nil, err
		}
		if len(runs) == 1 && runs[0].State.Terminal() {
			var run deploy.Run
			if err := e.adminDo(ctx, "GET", "/admin/v1/runs/"+runs[0].ID, nil, &run); err != nil {
				return nil, err
			}
			return &run, nil
		}
		if len(runs) > 1 || time.Now().After(deadline) {
			return nil, fmt.Errorf("want one finished run of task sequence %s, have %d: %+v", tsID, len(runs), runs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkRun wants the run succeeded with every step succeeded and the
// given step names, in order.
func checkRun(run *deploy.Run, wantSteps []string) error {
	var problems []string
	if run.State != deploy.RunSucceeded {
		problems = append(problems, fmt.Sprintf("run state %s (error %q), want succeeded", run.State, run.Error))
	}
	var names []string
	for _, s := range run.Steps {
		names = append(names, s.Name)
		if s.Outcome != deploy.StepSucceeded {
			problems = append(problems, fmt.Sprintf("step %s: %s (%s)", s.Path, s.Outcome, s.Message))
		}
	}
	if strings.Join(names, "|") != strings.Join(wantSteps, "|") {
		problems = append(problems, fmt.Sprintf("steps %q, want %q", names, wantSteps))
	}
	if len(problems) > 0 {
		return fmt.Errorf("run %s: %s", run.ID, strings.Join(problems, "; "))
	}
	return nil
}
