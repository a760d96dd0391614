package deploy_test

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func leaf(id, name string) deploy.Step {
	return deploy.Step{ID: id, Name: name, Enabled: true}
}

func group(id, name string, members ...deploy.Step) deploy.Step {
	return deploy.Step{ID: id, Name: name, Enabled: true, IsGroup: true, GroupMembers: members}
}

func off(s deploy.Step) deploy.Step {
	s.Enabled = false
	return s
}

// visit renders each step a walk yields as "id|path|depth|index|parent
// id|disabled" (parent "-" at the top level).
func visit(seq iter.Seq[deploy.StepAt]) []string {
	var out []string
	for at := range seq {
		parent := "-"
		if at.Parent != nil {
			parent = at.Parent.ID
			if at.Parent.Step.GroupMembers == nil || &at.Parent.Step.GroupMembers[at.Index] != at.Step {
				parent += "(wrong step)"
			}
		}
		out = append(out, fmt.Sprintf("%s|%s|%d|%d|%s|%v", at.ID, at.Path, at.Depth, at.Index, parent, at.Disabled))
	}
	return out
}

// deep nests n groups, each holding the next, the innermost a step.
func deep(n int) []deploy.Step {
	s := leaf("s", "S")
	for i := n; i >= 1; i-- {
		s = group(fmt.Sprintf("g%d", i), fmt.Sprintf("G%d", i), s)
	}
	return []deploy.Step{s}
}

func TestSteps(t *testing.T) {
	stepWithMembers := leaf("x", "X")
	stepWithMembers.GroupMembers = []deploy.Step{leaf("hidden", "Hidden")}
	tests := []struct {
		name  string
		steps []deploy.Step
		want  []string // Steps
		all   []string // AllSteps; nil: as want
	}{
		{"nothing", nil, nil, nil},
		{"flat, in order", []deploy.Step{leaf("a", "A"), leaf("b", "B")},
			[]string{"a|A|0|0|-|false", "b|B|0|1|-|false"}, nil},
		{"group then its members then the next sibling",
			[]deploy.Step{group("g", "G", leaf("a", "A"), group("h", "H", leaf("b", "B"))), leaf("c", "C")},
			[]string{"g|G|0|0|-|false", "g/a|G/A|1|0|g|false", "g/h|G/H|1|1|g|false", "g/h/b|G/H/B|2|0|g/h|false", "c|C|0|1|-|false"}, nil},
		{"empty groups", []deploy.Step{group("g", "G"), group("h", "H", group("i", "I"))},
			[]string{"g|G|0|0|-|false", "h|H|0|1|-|false", "h/i|H/I|1|0|h|false"}, nil},
		{"steps without id are numbered among their siblings",
			[]deploy.Step{leaf("", "A"), group("", "G", leaf("b", "B"), leaf("", "C"))},
			[]string{"#1|A|0|0|-|false", "#2|G|0|1|-|false", "#2/b|G/B|1|0|#2|false", "#2/#2|G/C|1|1|#2|false"}, nil},
		{"a disabled group disables its members, not its siblings",
			[]deploy.Step{off(group("g", "G", leaf("a", "A"), group("h", "H", leaf("b", "B")))), off(leaf("c", "C")), leaf("d", "D")},
			[]string{"g|G|0|0|-|true", "g/a|G/A|1|0|g|true", "g/h|G/H|1|1|g|true", "g/h/b|G/H/B|2|0|g/h|true", "c|C|0|1|-|true", "d|D|0|2|-|false"}, nil},
		{"a disabled member does not disable the group", []deploy.Step{group("g", "G", off(leaf("a", "A")), leaf("b", "B"))},
			[]string{"g|G|0|0|-|false", "g/a|G/A|1|0|g|true", "g/b|G/B|1|1|g|false"}, nil},
		{"members of a step that is not a group only in AllSteps", []deploy.Step{stepWithMembers, leaf("y", "Y")},
			[]string{"x|X|0|0|-|false", "y|Y|0|1|-|false"},
			[]string{"x|X|0|0|-|false", "x/hidden|X/Hidden|1|0|x|false", "y|Y|0|1|-|false"}},
		{"names with slashes are joined as they are", []deploy.Step{group("g", "A/B", leaf("s", "C"))},
			[]string{"g|A/B|0|0|-|false", "g/s|A/B/C|1|0|g|false"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := visit(deploy.Steps(tt.steps)); !slices.Equal(got, tt.want) {
				t.Errorf("Steps:\n got %q\nwant %q", got, tt.want)
			}
			all := tt.all
			if all == nil {
				all = tt.want
			}
			if got := visit(deploy.AllSteps(tt.steps)); !slices.Equal(got, all) {
				t.Errorf("AllSteps:\n got %q\nwant %q", got, all)
			}
		})
	}
}

func TestStepsDeepNesting(t *testing.T) {
	const n = 200
	got := visit(deploy.Steps(deep(n)))
	if len(got) != n+1 {
		t.Fatalf("visited %d steps, want %d", len(got), n+1)
	}
	ids, names := make([]string, 0, n+1), make([]string, 0, n+1)
	for i := 1; i <= n; i++ {
		ids, names = append(ids, fmt.Sprintf("g%d", i)), append(names, fmt.Sprintf("G%d", i))
	}
	ids, names = append(ids, "s"), append(names, "S")
	want := fmt.Sprintf("%s|%s|%d|0|%s|false", strings.Join(ids, "/"), strings.Join(names, "/"), n, strings.Join(ids[:n], "/"))
	if got[n] != want {
		t.Errorf("innermost step:\n got %s\nwant %s", got[n], want)
	}
}

// TestStepsStop checks that a walk stops when the loop breaks, inside a
// group too.
func TestStepsStop(t *testing.T) {
	steps := []deploy.Step{group("g", "G", leaf("a", "A"), leaf("b", "B")), leaf("c", "C")}
	for _, stop := range []string{"g", "g/a", "g/b", "c"} {
		var seen []string
		for at := range deploy.Steps(steps) {
			seen = append(seen, at.ID)
			if at.ID == stop {
				break
			}
		}
		if seen[len(seen)-1] != stop {
			t.Errorf("break at %s: walk went on to %v", stop, seen)
		}
	}
}

// TestUnder checks that a walk under a step (the child of a Run task
// sequence step) names its steps below that step.
func TestUnder(t *testing.T) {
	parent := deploy.At(nil, 2, &deploy.Step{Name: "Run child", Enabled: true})
	child := []deploy.Step{group("g", "G", leaf("a", "A"))}
	want := []string{"#3/g|Run child/G|1|0|#3|false", "#3/g/a|Run child/G/A|2|0|#3/g|false"}
	var got []string
	for at := range deploy.Under(&parent, child) {
		got = append(got, fmt.Sprintf("%s|%s|%d|%d|%s|%v", at.ID, at.Path, at.Depth, at.Index, at.Parent.ID, at.Disabled))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Under:\n got %q\nwant %q", got, want)
	}
}

// TestStepsReadMembersAfterTheBody checks that a walk descends into the
// members the loop body left on a step, as a copy or a filter relies on.
func TestStepsReadMembersAfterTheBody(t *testing.T) {
	for _, walk := range []struct {
		name string
		seq  func([]deploy.Step) iter.Seq[deploy.StepAt]
	}{{"Steps", deploy.Steps}, {"AllSteps", deploy.AllSteps}} {
		t.Run(walk.name, func(t *testing.T) {
			orig := []deploy.Step{group("g", "G", leaf("a", "A"), leaf("drop", "Drop"), group("h", "H", leaf("drop", "Drop"), leaf("b", "B")))}
			steps := slices.Clone(orig)
			var seen []string
			for at := range walk.seq(steps) {
				seen = append(seen, at.ID)
				at.Step.GroupMembers = slices.DeleteFunc(slices.Clone(at.Step.GroupMembers), func(s deploy.Step) bool { return s.ID == "drop" })
				at.Step.Name += "'"
			}
			if want := []string{"g", "g/a", "g/h", "g/h/b"}; !slices.Equal(seen, want) {
				t.Errorf("walked %v, want %v", seen, want)
			}
			if got := steps[0].GroupMembers[1].GroupMembers[0].Name; got != "B'" {
				t.Errorf("the walk did not go into the copy: its step is %q", got)
			}
			if got := visit(deploy.AllSteps(orig)); len(got) != 6 || orig[0].GroupMembers[1].Name != "Drop" || orig[0].GroupMembers[2].GroupMembers[1].Name != "B" {
				t.Errorf("the original changed: %q", got)
			}
		})
	}
}
