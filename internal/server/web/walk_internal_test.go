package web

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// The console reads the step tree through deploy's walk. These tests hold
// each reader to the tree below: nesting two deep, an empty group, and a
// step that is not a group but has members stored under it (DeployR
// documents can hold them; nothing runs them).

func wStep(id string, members ...deploy.Step) deploy.Step {
	return deploy.Step{ID: id, Name: strings.ToUpper(id), Enabled: true, GroupMembers: members}
}

func wGroup(id string, members ...deploy.Step) deploy.Step {
	s := wStep(id, members...)
	s.IsGroup = true
	return s
}

// walkTree is g[a h[b] x{hidden}] e[] c, x a step with a member.
func walkTree() *deploy.TSVersion {
	return &deploy.TSVersion{VersionNo: 3, Steps: []deploy.Step{
		wGroup("g", wStep("a"), wGroup("h", wStep("b")), wStep("x", wStep("hidden"))),
		wGroup("e"),
		wStep("c"),
	}}
}

// drawn renders nodes as "PATH:flags[children]", flags F first, L last,
// I can indent, G in a group.
func drawn(nodes []*stepNode) string {
	var parts []string
	for _, n := range nodes {
		p := n.Path + ":"
		for _, f := range []struct {
			on bool
			c  string
		}{{n.First, "F"}, {n.Last, "L"}, {n.CanIndent, "I"}, {n.InGroup, "G"}} {
			if f.on {
				p += f.c
			}
		}
		if n.Step.IsGroup {
			p += "[" + drawn(n.Children) + "]"
		} else if len(n.Children) > 0 {
			p += "{" + drawn(n.Children) + "}"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func TestStepTree(t *testing.T) {
	v := walkTree()
	var filled []string
	nodes := stepTree(v, func(n *stepNode) { filled = append(filled, n.Step.ID) })
	want := "G:F[G/A:FG G/H:G[G/H/B:FLG] G/X:LIG] E:I[] C:LI"
	if got := drawn(nodes); got != want {
		t.Errorf("tree:\n got %s\nwant %s", got, want)
	}
	if want := []string{"g", "a", "h", "b", "x", "e", "c"}; !slices.Equal(filled, want) {
		t.Errorf("fill called for %v, want %v", filled, want)
	}
	if &v.Steps[0].GroupMembers[1].GroupMembers[0] != nodes[0].Children[1].Children[0].Step {
		t.Error("a node does not point at the stored step it draws")
	}
	if got := stepTree(&deploy.TSVersion{}, func(*stepNode) {}); len(got) != 0 {
		t.Errorf("empty version drawn as %d nodes", len(got))
	}
}

func TestLocate(t *testing.T) {
	tests := []struct {
		id                  string
		parent, grand, list string // names; "-" for none
		index, outerIndex   int
	}{
		{"g", "-", "-", "G E C", 0, 0},
		{"C", "-", "-", "G E C", 2, 0}, // ids match without case
		{"a", "G", "-", "A H X", 0, 0},
		{"x", "G", "-", "A H X", 2, 0},
		{"b", "H", "G", "B", 0, 1},
	}
	names := func(l []deploy.Step) string {
		var out []string
		for _, s := range l {
			out = append(out, s.Name)
		}
		return strings.Join(out, " ")
	}
	name := func(s *deploy.Step) string {
		if s == nil {
			return "-"
		}
		return s.Name
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			v := walkTree()
			p, err := locate(v, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.EqualFold(p.step().ID, tt.id) || names(*p.list) != tt.list || p.index != tt.index ||
				name(p.parent) != tt.parent || name(p.grand) != tt.grand {
				t.Errorf("place: step %s in [%s] at %d, parent %s, grand %s; want %s in [%s] at %d, parent %s, grand %s",
					p.step().ID, names(*p.list), p.index, name(p.parent), name(p.grand), tt.id, tt.list, tt.index, tt.parent, tt.grand)
			}
			if p.parent != nil && &(*p.outer)[p.outerIndex] != p.parent {
				t.Errorf("outer[%d] is %s, not the parent %s", p.outerIndex, (*p.outer)[p.outerIndex].Name, p.parent.Name)
			}
			// The place is the stored tree's: an edit through it shows.
			p.step().Name = "moved"
			if q, err := locate(v, tt.id); err != nil || q.step().Name != "moved" {
				t.Error("the place is a copy, not the stored step")
			}
		})
	}
	// A member of a step that is not a group is not in the drawn tree, so
	// the editor cannot act on it.
	for _, id := range []string{"hidden", "nope", ""} {
		if _, err := locate(walkTree(), id); err == nil {
			t.Errorf("locate %q: found", id)
		}
	}
}

// TestTreeOpOutOfNestedGroup moves a step two deep out of its group: it
// lands after that group, in the group around it, linked to it.
func TestTreeOpOutOfNestedGroup(t *testing.T) {
	v := walkTree()
	if _, err := treeOp(v, "b", "out"); err != nil {
		t.Fatal(err)
	}
	g := v.Steps[0]
	var got []string
	for _, s := range g.GroupMembers {
		got = append(got, fmt.Sprintf("%s(%d)", s.Name, len(s.GroupMembers)))
	}
	if want := []string{"A(0)", "H(0)", "B(0)", "X(1)"}; !slices.Equal(got, want) {
		t.Errorf("G holds %v, want %v", got, want)
	}
	if b := g.GroupMembers[2]; deploy.Str(b.GroupID) != "g" {
		t.Errorf("B's groupId = %q, want g", deploy.Str(b.GroupID))
	}
}

func TestCountSteps(t *testing.T) {
	// Removing g removes everything stored under it, the member of x too.
	if got := countSteps(walkTree().Steps[0].GroupMembers); got != 5 {
		t.Errorf("countSteps = %d, want 5 (a h b x hidden)", got)
	}
	if got := countSteps(nil); got != 0 {
		t.Errorf("countSteps(nil) = %d", got)
	}
}

func TestRunPagePaths(t *testing.T) {
	v := walkTree()
	cond := func(s *deploy.Step, c string) { s.Condition = &c }
	cond(&v.Steps[0].GroupMembers[1].GroupMembers[0], `$Model -eq "X"`)
	cond(&v.Steps[1], "{ not json")
	cond(&v.Steps[0].GroupMembers[2].GroupMembers[0], `$A -eq "1"`) // hidden: never runs
	leaves := map[string]bool{}
	leafPaths(v.Steps, leaves)
	if got, want := slices.Sorted(maps.Keys(leaves)), []string{"C", "G/A", "G/H/B", "G/X"}; !slices.Equal(got, want) {
		t.Errorf("leafPaths = %v, want %v", got, want)
	}
	conds := map[string]string{}
	conditions(v.Steps, conds)
	if got, want := slices.Sorted(maps.Keys(conds)), []string{"E", "G/H/B"}; !slices.Equal(got, want) {
		t.Errorf("conditions on %v, want %v (%v)", got, want, conds)
	}
	if conds["E"] != "{ not json" || conds["G/H/B"] == "" {
		t.Errorf("conditions = %v", conds)
	}
}

func TestUsedBy(t *testing.T) {
	const item = "0a0a0a0a-0000-0000-0000-000000000001"
	ref := func(v *deploy.TSVersion, s *deploy.Step, val string) *deploy.TSVersion {
		s.ContentItems = map[string]string{"Image": val}
		return v
	}
	nested, hidden, top, none := walkTree(), walkTree(), walkTree(), walkTree()
	ref(nested, &nested.Steps[0].GroupMembers[1].GroupMembers[0], strings.ToUpper(item)+":2")
	ref(hidden, &hidden.Steps[0].GroupMembers[2].GroupMembers[0], item)
	ref(top, &top.Steps[2], item+"0:1") // another id that starts the same
	seq := func(name string, vs ...*deploy.TSVersion) *deploy.TaskSequence {
		ts := &deploy.TaskSequence{Name: name}
		for i, v := range vs {
			v.VersionNo = i + 1
			ts.Versions = append(ts.Versions, *v)
		}
		return ts
	}
	got := usedBy([]*deploy.TaskSequence{seq("One", none, nested), seq("Two", hidden, top)}, item)
	if want := []string{"One v2", "Two v1"}; !slices.Equal(got, want) {
		t.Errorf("usedBy = %v, want %v", got, want)
	}
}
