package agent

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// Plan actions.
const (
	PlanRun      = "run"
	PlanSkip     = "skip"     // condition false
	PlanDisabled = "disabled" // the step or a group above it is disabled
	PlanUnknown  = "unknown"  // a PowerShell condition, not evaluated in a dry run
	// PlanCannotRun: the step would be reached but cannot run here: no
	// implementation for this platform or boot phase, its definition or
	// content is missing, or a required option is empty.
	PlanCannotRun = "cannot run"
)

// StepCheck says why a step that would be reached cannot run, or "" when
// it can. An error aborts the plan.
type StepCheck func(ctx context.Context, s *deploy.Step, vars *sequence.Vars) (reason string, err error)

// PlanStep is one line of a dry-run plan.
type PlanStep struct {
	Path      string
	Name      string
	Depth     int
	Group     bool
	Action    string
	Condition string // readable form of the step's own condition
	Reason    string
}

// Plan walks ts as the engine would and says of every step whether it
// would run, be skipped (its condition, with %VAR% expanded, is false) or
// is disabled, without running anything. Set variable steps that would run
// are applied to a copy of vars so later conditions see them. PowerShell
// conditions are not evaluated (action unknown; the walk goes on as if
// true). Run task sequence steps are expanded through loader when it is
// non-nil.
func Plan(ctx context.Context, ts *deploy.TSVersion, vars *sequence.Vars, loader sequence.Loader) ([]PlanStep, error) {
	return PlanWith(ctx, ts, vars, loader, nil)
}

// PlanWith is Plan that also asks check, for every step that would be
// reached, whether it can run; those that cannot are PlanCannotRun with
// check's reason. A child task sequence that cannot be loaded marks its
// Run task sequence step the same way.
func PlanWith(ctx context.Context, ts *deploy.TSVersion, vars *sequence.Vars, loader sequence.Loader, check StepCheck) ([]PlanStep, error) {
	p := &planner{vars: sequence.NewVars(), loader: loader, check: check}
	if vars != nil {
		p.vars.Restore(vars.Snapshot())
	}
	if err := p.walk(ctx, ts.Steps, nil); err != nil {
		return nil, err
	}
	return p.out, nil
}

type planner struct {
	vars   *sequence.Vars
	loader sequence.Loader
	check  StepCheck
	out    []PlanStep
	chain  []string
}

// walk plans steps, the members of parent (nil: the top level), and the
// children of their Run task sequence steps.
func (p *planner) walk(ctx context.Context, steps []deploy.Step, parent *deploy.StepAt) error {
	base := 0
	if parent != nil {
		base = parent.Depth + 1
	}
	// under[d] is what the group at depth base+d makes of its members:
	// PlanSkip or PlanDisabled when they are not reached, else "".
	var under []string
	for at := range deploy.Under(parent, steps) {
		s, path := at.Step, at.Path
		inherited := ""
		if at.Depth > base {
			inherited = under[at.Depth-base-1]
		}
		ps := PlanStep{Path: path, Name: s.Name, Depth: at.Depth, Group: s.IsGroup || isRunTS(s)}
		cond := ""
		if s.Condition != nil {
			cond = *s.Condition
		}
		c, err := sequence.ParseCondition(cond)
		if err != nil {
			return fmt.Errorf("step %s: condition: %w", path, err)
		}
		ps.Condition = ConditionString(c)
		action := PlanRun
		switch {
		case inherited != "":
			action, ps.Reason = inherited, "inside a group that is "+map[string]string{PlanSkip: "skipped", PlanDisabled: "disabled"}[inherited]
		case !s.Enabled:
			action, ps.Reason = PlanDisabled, "disabled"
		case c != nil && c.Query != nil:
			if !c.Query.Expand(p.vars).Eval(p.vars.Get) {
				action, ps.Reason = PlanSkip, "condition is false"
			}
		case c != nil:
			action, ps.Reason = PlanUnknown, "PowerShell condition is not evaluated in a dry run"
		}
		if (action == PlanRun || action == PlanUnknown) && !s.IsGroup && !isRunTS(s) && p.check != nil {
			reason, err := p.check(ctx, s, p.vars)
			if err != nil {
				return fmt.Errorf("step %s: %w", path, err)
			}
			if reason != "" {
				action, ps.Reason = PlanCannotRun, reason
			}
		}
		ps.Action = action
		p.out = append(p.out, ps)
		childInherited := ""
		if action == PlanSkip || action == PlanDisabled {
			childInherited = action
		}
		under = append(under[:at.Depth-base], childInherited)
		switch {
		case s.IsGroup:
			// Its members come next in the walk.
		case isRunTS(s) && p.loader != nil && childInherited == "":
			ref, err := deploy.ParseRef(p.vars.Expand(s.Settings["childTaskSequenceId"]))
			if err != nil {
				return fmt.Errorf("step %s: childTaskSequenceId: %w", path, err)
			}
			for _, c := range p.chain {
				if c == ref.ID {
					return fmt.Errorf("step %s: task sequence cycle through %s", path, ref)
				}
			}
			child, err := p.loader.TaskSequence(ctx, ref)
			if err != nil && p.check != nil {
				last := &p.out[len(p.out)-1]
				last.Action, last.Reason = PlanCannotRun, fmt.Sprintf("child task sequence %s: %s", ref, deploy.ErrorMessage(err))
				continue
			}
			if err != nil {
				return fmt.Errorf("step %s: load %s: %w", path, ref, err)
			}
			p.chain = append(p.chain, ref.ID)
			err = p.walk(ctx, child.Steps, &at)
			p.chain = p.chain[:len(p.chain)-1]
			if err != nil {
				return err
			}
		case childInherited == "" && s.TypeID != nil && strings.EqualFold(*s.TypeID, deploy.TypeSetVariable):
			name := strings.TrimSpace(p.vars.Expand(s.Settings["VariableName"]))
			if name != "" {
				p.vars.SetInternal(name, p.vars.Expand(s.Settings["VariableValue"]))
			}
		}
	}
	return nil
}

func isRunTS(s *deploy.Step) bool {
	return s.TypeID != nil && strings.EqualFold(*s.TypeID, deploy.TypeRunTaskSequence)
}

// ConditionString renders a condition readably (sequence.Condition.String).
func ConditionString(c *sequence.Condition) string { return c.String() }

// CannotRun counts the steps of plan that cannot run.
func CannotRun(plan []PlanStep) int {
	n := 0
	for _, s := range plan {
		if s.Action == PlanCannotRun {
			n++
		}
	}
	return n
}

// PrintPlan writes the plan, one step a line, indented by depth.
func PrintPlan(w io.Writer, plan []PlanStep) {
	for _, s := range plan {
		line := fmt.Sprintf("%-10s %s%s", strings.ToUpper(s.Action), strings.Repeat("  ", s.Depth), s.Path)
		if s.Group {
			line += "/"
		}
		if s.Condition != "" {
			line += "  [if " + s.Condition + "]"
		}
		if s.Reason != "" && s.Action != PlanRun {
			line += "  (" + s.Reason + ")"
		}
		fmt.Fprintln(w, line)
	}
}
