package sequence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Engine runs task sequences. Every field is optional except Registry (a
// nil Registry makes every non-group step fail as unknown).
type Engine struct {
	Registry *Registry
	// Loader resolves the child of a Run task sequence step.
	Loader Loader
	// Fetcher makes content options available locally.
	Fetcher ContentFetcher
	// Journal records progress; nil runs without resume support.
	Journal Journal
	// OnEvent is called, in order, when a step or group starts and ends
	// (and, with only an end event, when one is skipped or disabled).
	// Steps replayed from the journal on resume produce no events.
	OnEvent func(Event)
	// PowerShell evaluates a PowerShell-expression condition. Nil uses
	// pwsh from PATH, and fails the condition with a clear error when
	// pwsh is not installed.
	PowerShell func(ctx context.Context, expr string, vars *Vars) (bool, error)
	// SecretOption reports whether a step option holds a secret (a
	// Password option); its variable is then marked secret.
	SecretOption func(step *deploy.Step, option string) bool
	// Options, when set, returns the options of the step definition
	// version a step runs. A required option whose value (or default) is
	// still empty once variables are expanded fails the step before it
	// runs: DeployR exports such options as "" and leave them to run time.
	Options func(step *deploy.Step) []deploy.Option
	// StreamOption reports whether a step reads a content option itself as
	// a stream (an operating-system image written straight to a disk):
	// the engine then does not fetch it, puts the parsed reference in
	// Env.Refs and sets _CONTENT-<Option> to "id:version". Nil fetches
	// every content option.
	StreamOption func(step *deploy.Step, option string) bool
	// Stopping, when it returns true, stops the run at the next step
	// boundary (the running step finishes; Run returns an error wrapping
	// ErrStopped and the journal resumes at the next step). An operator's
	// first Ctrl-C uses it; cancelling ctx aborts the running step too.
	Stopping func() bool
	// Log receives the steps' logs, secrets redacted. Nil discards them.
	Log io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// EventType says whether an Event starts or ends a step.
type EventType string

const (
	EventStart EventType = "step-start"
	EventEnd   EventType = "step-end"
)

// Event reports a step or group starting or ending.
type Event struct {
	Type     EventType
	ID       string // id path, see Env.ID
	Path     string // name path, see Env.Path
	Name     string
	Group    bool // a group or a Run task sequence step
	Depth    int  // 0 for top-level steps
	Outcome  deploy.StepOutcome
	ExitCode int
	Output   string
	Message  string // why the step failed or was skipped
	Time     time.Time
	Started  time.Time // for EventEnd of a step that ran
	// Downloads is a step's Result.Downloads (EventEnd).
	Downloads []deploy.Download
}

// Outcome is how a call to Run ended.
type Outcome struct {
	// State is deploy.RunSucceeded or deploy.RunFailed, or
	// deploy.RunRunning when Reboot is set.
	State deploy.RunState `json:"state"`
	// Reboot asks the caller to restart the machine and call Run again
	// with the same journal to resume.
	Reboot bool `json:"reboot,omitempty"`
	// FailedStep and FailedPath name the step whose failure ended the run.
	FailedStep string `json:"failedStep,omitempty"`
	FailedPath string `json:"failedPath,omitempty"`
	Message    string `json:"message,omitempty"`
}

// Run walks ts depth-first with vars and returns how it ended.
//
// A failing step ends the run with State deploy.RunFailed; that is an
// outcome, not an error. Run returns an error only when the engine cannot
// go on: the journal cannot be read or written, or ctx is cancelled (the
// interrupted step is then re-run on resume).
//
// Rules, following DeployR (and ConfigMgr, whose semantics DeployR keeps):
//   - disabled steps and groups are skipped with outcome disabled; a false
//     condition skips the step or the whole group (outcome skipped);
//   - before a step runs, each content option with a value is fetched and
//     its local path set as _CONTENT-<Option>, and each setting (with
//     %VAR% expanded) is set as a variable named after the option; these
//     variables stay set after the step, as in DeployR;
//   - a step that fails without continueOnError fails its group, which
//     stops walking its remaining members; a group (or Run task sequence
//     step) with continueOnError absorbs the failure (outcome ignored) and
//     the walk goes on with its next sibling; a failure that reaches the
//     top ends the run;
//   - Run task sequence steps walk the child inline; a child already on
//     the chain of running sequences fails the step (cycle);
//   - a step returning ErrReboot or Result.RebootRequested is journaled as
//     complete and Run returns Outcome{Reboot: true}.
//
// With a journal from an earlier call for the same task-sequence version,
// Run restores the journaled variables (replacing those in vars), does not
// re-run steps recorded complete, re-enters groups it was inside without
// re-evaluating their conditions, and re-runs the step that was started
// but not completed (at-least-once for that one step). A journal for a
// finished run makes Run return the recorded outcome at once.
func (e *Engine) Run(ctx context.Context, ts *deploy.TSVersion, vars *Vars) (Outcome, error) {
	if ts == nil {
		return Outcome{}, deploy.Errorf(deploy.KindInvalid, "run task sequence: no task sequence given")
	}
	if vars == nil {
		vars = NewVars()
	}
	r := &runner{
		e:       e,
		vars:    vars,
		done:    make(map[string]CompletedStep),
		entered: make(map[string]bool),
		log:     RedactingWriter(e.Log, vars),
		chain:   []deploy.Ref{{ID: strings.ToLower(ts.TaskSequenceID), VersionNo: ts.VersionNo}},
	}
	st, err := e.load()
	if err != nil {
		return Outcome{}, err
	}
	if st != nil {
		if !deploy.SameID(st.TaskSequenceID, ts.TaskSequenceID) || st.VersionNo != ts.VersionNo {
			return Outcome{}, deploy.Errorf(deploy.KindConflict,
				"journal belongs to task sequence %s:%d, not %s:%d; remove it to start a new run",
				st.TaskSequenceID, st.VersionNo, ts.TaskSequenceID, ts.VersionNo)
		}
		vars.Restore(st.Vars)
		if st.Outcome != nil {
			return *st.Outcome, nil
		}
		for _, c := range st.Completed {
			r.done[c.ID] = c
		}
		for _, id := range st.Entered {
			r.entered[id] = true
		}
		r.resume = st.Running
	} else {
		st = &JournalState{Format: JournalFormat, TaskSequenceID: ts.TaskSequenceID, VersionNo: ts.VersionNo}
	}
	r.st = st

	res, err := r.walk(ctx, ts.Steps, nil)
	if err != nil {
		return Outcome{}, err
	}
	if res.reboot {
		return Outcome{State: deploy.RunRunning, Reboot: true}, nil
	}
	out := Outcome{State: deploy.RunSucceeded}
	if res.failed {
		out = Outcome{State: deploy.RunFailed, FailedStep: res.id, FailedPath: res.path, Message: res.msg}
	}
	r.st.Outcome = &out
	if err := r.save(); err != nil {
		return Outcome{}, err
	}
	return out, nil
}

func (e *Engine) load() (*JournalState, error) {
	if e.Journal == nil {
		return nil, nil
	}
	st, err := e.Journal.Load()
	if deploy.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load journal: %w", err)
	}
	if st == nil {
		return nil, nil
	}
	return st, nil
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// runner is the state of one call to Run.
type runner struct {
	e       *Engine
	vars    *Vars
	st      *JournalState
	done    map[string]CompletedStep
	entered map[string]bool
	resume  string // the step to re-run without evaluating its condition
	chain   []deploy.Ref
	log     io.Writer
}

// walkResult is how a list of steps (or one node) ended.
type walkResult struct {
	reboot bool
	failed bool
	// The innermost failed step.
	id, path, msg string
}

// walk runs steps, the members of parent (nil: the top level). It
// recurses itself rather than use deploy.Steps, as a failure stops a
// group's walk and a Run task sequence step's child is loaded on the way,
// but it names each step with deploy.At as every other walk does.
func (r *runner) walk(ctx context.Context, steps []deploy.Step, parent *deploy.StepAt) (walkResult, error) {
	for i := range steps {
		res, err := r.node(ctx, deploy.At(parent, i, &steps[i]))
		if err != nil || res.reboot || res.failed {
			return res, err
		}
	}
	return walkResult{}, nil
}

func isRunTS(s *deploy.Step) bool {
	return s.TypeID != nil && deploy.SameID(*s.TypeID, deploy.TypeRunTaskSequence)
}

func (r *runner) node(ctx context.Context, at deploy.StepAt) (walkResult, error) {
	s, id, path, depth := at.Step, at.ID, at.Path, at.Depth
	if c, ok := r.done[id]; ok {
		if c.Outcome == deploy.StepFailed {
			if c.Cause != nil {
				return walkResult{failed: true, id: c.Cause.ID, path: c.Cause.Path, msg: c.Cause.Message}, nil
			}
			return walkResult{failed: true, id: id, path: path, msg: c.Message}, nil
		}
		return walkResult{}, nil
	}
	if err := ctx.Err(); err != nil {
		return walkResult{}, fmt.Errorf("run stopped before %s: %w", path, err)
	}
	if r.e.Stopping != nil && r.e.Stopping() {
		return walkResult{}, fmt.Errorf("run stopped before %s: %w", path, ErrStopped)
	}
	if !s.Enabled {
		return walkResult{}, r.skip(at, deploy.StepDisabled, "disabled")
	}
	if !r.entered[id] && r.resume != id {
		ok, err := r.condition(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return walkResult{}, fmt.Errorf("run stopped at %s: %w", path, ctx.Err())
			}
			return r.finish(s, id, path, depth, time.Time{}, Result{}, fmt.Errorf("condition: %w", err), walkResult{})
		}
		if !ok {
			return walkResult{}, r.skip(at, deploy.StepSkipped, "condition is false")
		}
	}
	switch {
	case s.IsGroup:
		return r.group(ctx, at, s.GroupMembers, "")
	case isRunTS(s):
		return r.runTS(ctx, at)
	}
	return r.step(ctx, s, id, path, depth)
}

// condition evaluates a step's condition; %VAR% in query values is expanded.
func (r *runner) condition(ctx context.Context, s *deploy.Step) (bool, error) {
	if s.Condition == nil {
		return true, nil
	}
	c, err := ParseCondition(*s.Condition)
	if err != nil {
		return false, err
	}
	switch {
	case c == nil:
		return true, nil
	case c.Query != nil:
		return c.Query.Expand(r.vars).Eval(r.vars.Get), nil
	}
	ps := r.e.PowerShell
	if ps == nil {
		ps = PwshEvaluator
	}
	return ps(ctx, c.PowerShell, r.vars)
}

// Expand returns a copy of q with %VAR% references in its values expanded
// from v, as the engine does before evaluating a condition.
func (q *Query) Expand(v *Vars) *Query {
	out := &Query{Operator: q.Operator, Items: make([]QueryItem, len(q.Items))}
	for i, it := range q.Items {
		if it.Group != nil {
			it.Group = it.Group.Expand(v)
		} else {
			it.Value = v.Expand(it.Value)
		}
		out.Items[i] = it
	}
	return out
}

// skip records a skipped or disabled node and reports it and, for a group,
// every member below it.
func (r *runner) skip(at deploy.StepAt, outcome deploy.StepOutcome, why string) error {
	r.complete(at.ID, outcome, why, nil)
	if err := r.save(); err != nil {
		return err
	}
	emit := func(at deploy.StepAt) {
		s := at.Step
		r.emit(Event{Type: EventEnd, ID: at.ID, Path: at.Path, Name: s.Name, Group: s.IsGroup || isRunTS(s),
			Depth: at.Depth, Outcome: outcome, Message: why})
	}
	emit(at)
	if at.Step.IsGroup {
		for m := range deploy.Under(&at, at.Step.GroupMembers) {
			emit(m)
		}
	}
	return nil
}

func (r *runner) complete(id string, outcome deploy.StepOutcome, msg string, cause *Cause) {
	c := CompletedStep{ID: id, Outcome: outcome, Message: msg, Cause: cause}
	r.done[id] = c
	r.st.Completed = append(r.st.Completed, c)
}

func (r *runner) save() error {
	r.st.Vars = r.vars.Snapshot()
	r.st.Updated = r.e.now()
	if r.e.Journal == nil {
		return nil
	}
	if err := r.e.Journal.Save(r.st); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (r *runner) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = r.e.now()
	}
	ev.Message = r.vars.Redact(ev.Message)
	ev.Output = r.vars.Redact(ev.Output)
	if r.e.OnEvent != nil {
		r.e.OnEvent(ev)
	}
}

// finish records the end of a step or group that was started (or whose
// condition could not be evaluated) and decides whether its failure
// propagates. inner is the failure that came up from a group's members.
func (r *runner) finish(s *deploy.Step, id, path string, depth int, started time.Time, res Result, stepErr error, inner walkResult) (walkResult, error) {
	outcome, msg := deploy.StepSucceeded, ""
	if stepErr != nil {
		msg = r.vars.Redact(stepErr.Error())
		outcome = deploy.StepFailed
		if s.ContinueOnError {
			outcome = deploy.StepIgnored
		}
	}
	var cause *Cause
	if outcome == deploy.StepFailed && inner.failed {
		cause = &Cause{ID: inner.id, Path: inner.path, Message: inner.msg}
	}
	r.complete(id, outcome, msg, cause)
	if r.st.Running == id {
		r.st.Running = ""
	}
	if r.resume == id {
		r.resume = ""
	}
	r.leave(id)
	if err := r.save(); err != nil {
		return walkResult{}, err
	}
	r.emit(Event{Type: EventEnd, ID: id, Path: path, Name: s.Name, Group: s.IsGroup || isRunTS(s), Depth: depth,
		Outcome: outcome, ExitCode: res.ExitCode, Output: res.Output, Message: msg, Started: started, Downloads: res.Downloads})
	if outcome != deploy.StepFailed {
		return walkResult{}, nil
	}
	if inner.failed {
		return inner, nil
	}
	return walkResult{failed: true, id: id, path: path, msg: msg}, nil
}

func (r *runner) enter(id string) error {
	if r.entered[id] {
		return nil
	}
	r.entered[id] = true
	r.st.Entered = append(r.st.Entered, id)
	return r.save()
}

func (r *runner) leave(id string) {
	if !r.entered[id] {
		return
	}
	delete(r.entered, id)
	r.st.Entered = slices.DeleteFunc(r.st.Entered, func(s string) bool { return s == id })
	r.st.Stack = slices.DeleteFunc(r.st.Stack, func(f Frame) bool { return f.StepID == id })
}

// group walks members as the body of a group or a Run task sequence step.
func (r *runner) group(ctx context.Context, at deploy.StepAt, members []deploy.Step, childRef string) (walkResult, error) {
	s, id, path, depth := at.Step, at.ID, at.Path, at.Depth
	if !r.entered[id] && childRef != "" {
		r.st.Stack = append(r.st.Stack, Frame{StepID: id, Ref: childRef})
	}
	if err := r.enter(id); err != nil {
		return walkResult{}, err
	}
	started := r.e.now()
	r.emit(Event{Type: EventStart, ID: id, Path: path, Name: s.Name, Group: true, Depth: depth, Time: started})
	res, err := r.walk(ctx, members, &at)
	if err != nil || res.reboot {
		return res, err
	}
	var groupErr error
	if res.failed {
		groupErr = fmt.Errorf("step %s failed: %s", res.path, res.msg)
	}
	return r.finish(s, id, path, depth, started, Result{}, groupErr, res)
}

// prepare expands the step's settings, sets them as variables and fetches
// its content.
func (r *runner) prepare(ctx context.Context, s *deploy.Step, id, path string) (*Env, error) {
	env := &Env{
		Vars:     r.vars,
		Settings: make(map[string]string, len(s.Settings)),
		Content:  make(map[string]string),
		Refs:     make(map[string]deploy.Ref),
		Log:      r.log,
		Step:     s,
		ID:       id,
		Path:     path,
	}
	for _, k := range sortedKeys(s.Settings) {
		env.Settings[k] = r.vars.Expand(s.Settings[k])
	}
	for _, k := range sortedKeys(env.Settings) {
		if r.e.SecretOption != nil && r.e.SecretOption(s, k) {
			r.vars.SetInternalSecret(k, env.Settings[k])
		} else {
			r.vars.SetInternal(k, env.Settings[k])
		}
	}
	if err := r.checkRequired(s, env); err != nil {
		return env, err
	}
	for _, opt := range sortedKeys(s.ContentItems) {
		v := strings.TrimSpace(r.vars.Expand(s.ContentItems[opt]))
		list := deploy.ContentList(v)
		if len(list) != 1 {
			// Empty ("" or "[]"), or a list the step reads itself.
			continue
		}
		v = list[0]
		ref, err := deploy.ParseRef(v)
		if err != nil {
			return env, fmt.Errorf("content option %q: %w", opt, err)
		}
		if r.e.StreamOption != nil && r.e.StreamOption(s, opt) {
			env.Refs[opt] = ref
			r.vars.SetInternal("_CONTENT-"+opt, ref.String())
			continue
		}
		if r.e.Fetcher == nil {
			return env, fmt.Errorf("content option %q needs content %s, but no content fetcher is configured", opt, ref)
		}
		p, err := r.e.Fetcher.Fetch(ctx, ref)
		if err != nil {
			return env, fmt.Errorf("fetch content %s for option %q: %w", ref, opt, err)
		}
		env.Content[opt] = p
		r.vars.SetInternal("_CONTENT-"+opt, p)
	}
	return env, nil
}

// checkRequired fails when a required option of the step's definition has
// no value after expansion, its default included.
func (r *runner) checkRequired(s *deploy.Step, env *Env) error {
	if r.e.Options == nil {
		return nil
	}
	for _, o := range r.e.Options(s) {
		if !o.Required {
			continue
		}
		val, ok := "", false
		if o.IsContent() {
			for k, v := range s.ContentItems {
				if strings.EqualFold(k, o.Name) {
					val, ok = r.vars.Expand(v), true
				}
			}
		} else {
			for k, v := range env.Settings {
				if strings.EqualFold(k, o.Name) {
					val, ok = v, true
				}
			}
		}
		empty := func(v string) bool {
			return strings.TrimSpace(v) == "" || (o.IsContent() && len(deploy.ContentList(v)) == 0)
		}
		if !ok || empty(val) {
			val = r.vars.Expand(deploy.Str(o.DefaultValue))
		}
		if empty(val) {
			return fmt.Errorf("required option %q is empty", o.Name)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r *runner) step(ctx context.Context, s *deploy.Step, id, path string, depth int) (walkResult, error) {
	// Journal the start before the settings are exposed: a resumed step
	// then expands its settings against the same variables as the first
	// attempt did.
	r.st.Running = id
	if err := r.save(); err != nil {
		return walkResult{}, err
	}
	started := r.e.now()
	r.emit(Event{Type: EventStart, ID: id, Path: path, Name: s.Name, Depth: depth, Time: started})
	env, err := r.prepare(ctx, s, id, path)
	if err != nil {
		if ctx.Err() != nil {
			return walkResult{}, fmt.Errorf("run stopped at %s: %w", path, ctx.Err())
		}
		return r.finish(s, id, path, depth, started, Result{}, err, walkResult{})
	}
	res, err := r.call(ctx, s, env)
	if err != nil && ctx.Err() != nil {
		// Interrupted: the journal still names the step as running, so a
		// resume runs it again.
		return walkResult{}, fmt.Errorf("run stopped at %s: %w", path, err)
	}
	reboot := false
	if errors.Is(err, ErrReboot) {
		err, reboot = nil, true
	}
	if err == nil && res.RebootRequested {
		reboot = true
	}
	out, ferr := r.finish(s, id, path, depth, started, res, err, walkResult{})
	if ferr != nil || out.failed {
		return out, ferr
	}
	out.reboot = reboot && err == nil
	return out, nil
}

// call runs the registered step, turning a panic into a failure.
func (r *runner) call(ctx context.Context, s *deploy.Step, env *Env) (res Result, err error) {
	typeID := ""
	if s.TypeID != nil {
		typeID = *s.TypeID
	}
	impl, ok := r.e.Registry.Lookup(typeID)
	if !ok {
		if typeID == "" {
			return Result{}, fmt.Errorf("step %q has no type id", s.Name)
		}
		return Result{}, fmt.Errorf("no step is registered for type %s (step %q)", typeID, s.Name)
	}
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("step panicked: %v", p)
		}
	}()
	return impl.Run(ctx, env)
}

// runTS walks the child sequence of a Run task sequence step inline. On
// resume inside the child, the reference recorded on the journal's stack
// is used and the step's settings are not exposed again (the variables
// already hold what the child's steps made of them).
func (r *runner) runTS(ctx context.Context, at deploy.StepAt) (walkResult, error) {
	s, id, path, depth := at.Step, at.ID, at.Path, at.Depth
	fail := func(err error) (walkResult, error) {
		if ctx.Err() != nil {
			return walkResult{}, fmt.Errorf("run stopped at %s: %w", path, ctx.Err())
		}
		return r.finish(s, id, path, depth, time.Time{}, Result{}, err, walkResult{})
	}
	var ref deploy.Ref
	if r.entered[id] {
		i := slices.IndexFunc(r.st.Stack, func(f Frame) bool { return f.StepID == id })
		if i < 0 {
			return walkResult{}, deploy.Errorf(deploy.KindInvalid, "journal: Run task sequence step %s was entered but is not on the stack", id)
		}
		var err error
		if ref, err = deploy.ParseRef(r.st.Stack[i].Ref); err != nil {
			return walkResult{}, fmt.Errorf("journal: stack frame of %s: %w", id, err)
		}
	} else {
		env, err := r.prepare(ctx, s, id, path)
		if err != nil {
			return fail(err)
		}
		if ref, err = deploy.ParseRef(env.Setting("childTaskSequenceId")); err != nil {
			return fail(fmt.Errorf("setting childTaskSequenceId: %w", err))
		}
	}
	if slices.ContainsFunc(r.chain, func(c deploy.Ref) bool { return c.ID == ref.ID }) {
		names := make([]string, 0, len(r.chain)+1)
		for _, c := range r.chain {
			names = append(names, c.String())
		}
		names = append(names, ref.String())
		return fail(fmt.Errorf("task sequence cycle: %s", strings.Join(names, " -> ")))
	}
	if r.e.Loader == nil {
		return fail(fmt.Errorf("cannot run task sequence %s: no loader is configured", ref))
	}
	child, err := r.e.Loader.TaskSequence(ctx, ref)
	if err != nil {
		return fail(fmt.Errorf("load task sequence %s: %w", ref, err))
	}
	r.chain = append(r.chain, ref)
	defer func() { r.chain = r.chain[:len(r.chain)-1] }()
	return r.group(ctx, at, child.Steps, ref.String())
}
