package deploy

import (
	"iter"
	"strconv"
)

// StepAt is a step together with where it sits in a step tree. Every
// part of Imprint that names a step in a run — the engine's events and
// journal, the agent's dry-run plan and progress, the server's run page
// and the console's editor — takes the name from here, so that they agree.
type StepAt struct {
	Step *Step
	// ID is the id path: the ids of the enclosing groups (or Run task
	// sequence steps) and of the step, joined by "/". A step with no id
	// stands as "#n", n its 1-based position among its siblings.
	ID string
	// Path is the name path, "Group/Sub/Step".
	Path string
	// Depth is 0 for a top-level step.
	Depth int
	// Index is the step's 0-based position among its siblings.
	Index int
	// Parent is where the enclosing group (or Run task sequence step)
	// sits; nil at the top level.
	Parent *StepAt
	// Disabled is set when the step or an enclosing group is disabled:
	// it does not run, whatever its own Enabled says.
	Disabled bool
}

// At returns where s, the i-th (0-based) of the steps directly under
// parent, sits; parent nil means the top level. Walks use it, and so does
// the engine, whose recursion also descends into the children of Run task
// sequence steps.
func At(parent *StepAt, i int, s *Step) StepAt {
	id := s.ID
	if id == "" {
		id = "#" + strconv.Itoa(i+1)
	}
	at := StepAt{Step: s, ID: id, Path: s.Name, Index: i, Parent: parent, Disabled: !s.Enabled}
	if parent != nil {
		at.ID = parent.ID + "/" + id
		at.Path = parent.Path + "/" + s.Name
		at.Depth = parent.Depth + 1
		at.Disabled = at.Disabled || parent.Disabled
	}
	return at
}

// Steps walks a step tree depth first in run order: each step, then, for
// a group, its members. Members stored under a step that is not a group
// are not visited: nothing runs them (AllSteps visits them). A Run task
// sequence step's child is not part of the tree; Under walks it.
//
// A step's members are read when the loop body has had the step, so the
// body may replace them (with a copy, or with some left out) and the walk
// goes on into what it put there.
func Steps(steps []Step) iter.Seq[StepAt] {
	return Under(nil, steps)
}

// Under walks steps as the members of parent (nil: the top level), as
// Steps does.
func Under(parent *StepAt, steps []Step) iter.Seq[StepAt] {
	return func(yield func(StepAt) bool) { walk(parent, steps, false, yield) }
}

// AllSteps walks every step stored in the tree, in the order of Steps,
// including members stored under a step that is not a group. It is for
// what concerns the stored document rather than the run: what the
// document references and what must be removed before it is sent.
func AllSteps(steps []Step) iter.Seq[StepAt] {
	return func(yield func(StepAt) bool) { walk(nil, steps, true, yield) }
}

func walk(parent *StepAt, steps []Step, all bool, yield func(StepAt) bool) bool {
	for i := range steps {
		at := At(parent, i, &steps[i])
		if !yield(at) {
			return false
		}
		if (all || at.Step.IsGroup) && !walk(&at, at.Step.GroupMembers, all, yield) {
			return false
		}
	}
	return true
}
