package validate

import (
	"fmt"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// maxNesting bounds how deep Run task sequence chains are followed.
const maxNesting = 32

// tsNode is one task-sequence version in a Run task sequence chain.
type tsNode struct {
	id   string // lower case
	ver  int
	name string
}

func (n tsNode) same(o tsNode) bool { return n.id == o.id && n.ver == o.ver }

// child checks a Run task sequence step: the child must exist (else a
// warning) with the pinned version, and following children from there must
// never come back to a task sequence already on the chain.
func (c *checker) child(path string, s *deploy.Step) error {
	val, _ := lookup(s.Settings, "childTaskSequenceId")
	ref, err := parseRef(val)
	if err != nil || varRefRE.MatchString(val) {
		return nil // reported as an option problem
	}
	start := tsNode{id: deploy.CanonicalID(c.ts.ID), ver: c.ver, name: c.ts.Name}
	child, steps, err := c.resolveTS(ref)
	if err != nil {
		return err
	}
	if child.id == start.id && child.ver == start.ver {
		c.errorf(path, "childTaskSequenceId", "task sequence cycle: %s", chainString([]tsNode{start, start}))
		return nil
	}
	if steps == nil {
		if child.name == "" {
			c.warnf(path, "childTaskSequenceId", "child task sequence %s is not on this server", ref.ID)
			c.cannot(path, "child task sequence %s is not on this server", ref.ID)
		} else {
			c.errorf(path, "childTaskSequenceId", "task sequence %q has no version %d", child.name, ref.VersionNo)
		}
		return nil
	}
	done := map[tsNode]bool{}
	cycle, err := c.findCycle([]tsNode{start, child}, *steps, done)
	if err != nil {
		return err
	}
	if cycle != nil {
		c.errorf(path, "childTaskSequenceId", "task sequence cycle: %s", chainString(cycle))
	}
	return nil
}

// resolveTS finds the version ref points at. steps is nil when the task
// sequence is not on the server (node name empty) or lacks the version
// (node name set).
func (c *checker) resolveTS(ref deploy.Ref) (tsNode, *[]deploy.Step, error) {
	n := tsNode{id: deploy.CanonicalID(ref.ID), ver: ref.VersionNo}
	ts := c.ts
	if !deploy.SameID(ref.ID, c.ts.ID) {
		var err error
		ts, err = c.r.TaskSequence(c.ctx, n.id)
		if deploy.IsNotFound(err) {
			return n, nil, nil
		}
		if err != nil {
			return n, nil, fmt.Errorf("resolve task sequence %s: %w", ref.ID, err)
		}
	}
	n.name = ts.Name
	if n.name == "" {
		n.name = ts.ID
	}
	v, ok := ts.Version(ref.VersionNo)
	if !ok {
		return n, nil, nil
	}
	return n, &v.Steps, nil
}

// findCycle walks the Run task sequence steps of the last node of chain
// depth-first and returns the first chain that repeats a node. Children not
// on the server end the walk quietly (their own validation reports them).
func (c *checker) findCycle(chain []tsNode, steps []deploy.Step, done map[tsNode]bool) ([]tsNode, error) {
	last := chain[len(chain)-1]
	if done[last] || len(chain) > maxNesting {
		return nil, nil
	}
	var refs []deploy.Ref
	collectChildren(steps, &refs)
	for _, ref := range refs {
		next, sub, err := c.resolveTS(ref)
		if err != nil {
			return nil, err
		}
		for _, n := range chain {
			if n.same(next) {
				return append(append([]tsNode(nil), chain...), next), nil
			}
		}
		if sub == nil {
			continue
		}
		cycle, err := c.findCycle(append(chain[:len(chain):len(chain)], next), *sub, done)
		if err != nil || cycle != nil {
			return cycle, err
		}
	}
	done[last] = true
	return nil, nil
}

func collectChildren(steps []deploy.Step, refs *[]deploy.Ref) {
	for at := range deploy.Steps(steps) {
		s := at.Step
		if s.IsGroup {
			continue
		}
		if !deploy.SameID(deploy.Str(s.TypeID), stepdefs.TypeRunTaskSequence) {
			continue
		}
		val, _ := lookup(s.Settings, "childTaskSequenceId")
		if ref, err := parseRef(val); err == nil {
			*refs = append(*refs, ref)
		}
	}
}

func chainString(chain []tsNode) string {
	names := make([]string, len(chain))
	for i, n := range chain {
		names[i] = fmt.Sprintf("%s:%d", n.name, n.ver)
	}
	return strings.Join(names, " → ")
}
