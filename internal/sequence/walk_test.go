package sequence_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func named(n string) opt { return func(s *deploy.Step) { s.Name = n } }

// TestEventsNameStepsAsDeployWalk runs a nested sequence and checks that
// the id path, name path and depth of every step the engine reports are
// those deploy's walk gives it: the server's run page, the console and the
// agent's dry run name steps with the walk, so they must agree.
func TestEventsNameStepsAsDeployWalk(t *testing.T) {
	hidden := st("under-a-step", named("Stored under a step"))
	holder := st("holder", named("Holds members"))
	holder.GroupMembers = []deploy.Step{hidden}
	child := tsv("child", 1, steps(
		grp("cg", steps(st("", named("Child unnamed")), st("cx", named("Child X"))), named("Child group")),
	))
	ts := tsv("parent", 1, steps(
		st("", named("No id")),
		grp("g1", steps(
			st("a", named("Format")),
			grp("", steps(st("b", named("Inner")), grp("empty", nil, named("Empty group"))), named("Unnamed group")),
			st("", named("Last")),
		), named("Prepare disk")),
		grp("off", steps(grp("deep", steps(st("c", named("Never")))), holder), disabled(), named("Disabled group")),
		grp("no", steps(st("d", named("Skipped too"))), cond(q("Mode", "exists", "")), named("False condition")),
		runTS("run", "child:1", named("Run child")),
	))
	h := newHarness(t, nil)
	h.e.Loader = loader{"child:1": child}
	if out := h.run(t, ts, nil); out.State != deploy.RunSucceeded {
		t.Fatalf("outcome = %+v", out)
	}

	var want []string
	for at := range deploy.Steps(ts.Steps) {
		want = append(want, fmt.Sprintf("%s|%s|%d", at.ID, at.Path, at.Depth))
		if at.Step.ID == "run" {
			for c := range deploy.Under(&at, child.Steps) {
				want = append(want, fmt.Sprintf("%s|%s|%d", c.ID, c.Path, c.Depth))
			}
		}
	}
	var got []string
	for _, ev := range h.events {
		if ev.Type == "step-end" {
			got = append(got, fmt.Sprintf("%s|%s|%d", ev.ID, ev.Path, ev.Depth))
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) != 17 {
		t.Fatalf("the walk gave %d steps, want 17: %q", len(want), want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps the engine reported (-walk +engine):\n%s", diff)
	}
}
