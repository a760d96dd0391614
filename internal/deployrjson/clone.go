package deployrjson

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CloneTaskSequence returns a deep copy of ts with new GUIDs for the task
// sequence, every version and every step, and the links between them
// (taskSequenceId, taskSequenceVersionId, groupId) pointing at the new ids,
// as DeployR's Import-DeployRTaskSequence -Clone does. Names, dates and
// unknown fields are kept.
func CloneTaskSequence(ts *deploy.TaskSequence) *deploy.TaskSequence {
	out := *ts
	out.ID = uuid.NewString()
	out.Description = dup(ts.Description)
	out.Tags = slices.Clone(ts.Tags)
	out.Doc = cloneDoc(ts.Doc)
	out.Versions = make([]deploy.TSVersion, len(ts.Versions))
	if ts.Versions == nil {
		out.Versions = nil
	}
	for i, v := range ts.Versions {
		nv := v
		nv.ID = uuid.NewString()
		nv.TaskSequenceID = out.ID
		nv.Description = dup(v.Description)
		nv.Tags = slices.Clone(v.Tags)
		nv.Doc = cloneDoc(v.Doc)
		nv.Steps = cloneSteps(v.Steps, nv.ID)
		out.Versions[i] = nv
	}
	return &out
}

// cloneSteps copies steps, and every step stored under them, with new
// ids. Steps that had a taskSequenceVersionId get verID; members get
// their new parent's id as groupId. Each step's members are replaced by a
// copy before the walk goes into them, so it fills in the copy.
func cloneSteps(steps []deploy.Step, verID string) []deploy.Step {
	out := slices.Clone(steps)
	for at := range deploy.AllSteps(out) {
		n := at.Step // a copy of the original step, sharing its pointers and maps
		n.ID = uuid.NewString()
		n.Description = dup(n.Description)
		n.TypeID = dup(n.TypeID)
		n.StepDefinitionVersionID = dup(n.StepDefinitionVersionID)
		n.StepDefinitionVersionNo = dup(n.StepDefinitionVersionNo)
		n.Condition = dup(n.Condition)
		n.Settings = maps.Clone(n.Settings)
		n.ContentItems = maps.Clone(n.ContentItems)
		n.Doc = cloneDoc(n.Doc)
		if n.TaskSequenceVersionID != nil {
			n.TaskSequenceVersionID = deploy.StrPtr(verID)
		}
		n.GroupID = dup(n.GroupID)
		if at.Parent != nil && n.GroupID != nil {
			n.GroupID = deploy.StrPtr(at.Parent.Step.ID)
		}
		n.GroupMembers = slices.Clone(n.GroupMembers)
	}
	return out
}

func dup[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneDoc(d deploy.Doc) deploy.Doc {
	out := deploy.Doc{Omitted: slices.Clone(d.Omitted), Source: d.Source}
	if d.Extra != nil {
		out.Extra = make(map[string]json.RawMessage, len(d.Extra))
		for k, v := range d.Extra {
			out.Extra[k] = slices.Clone(v)
		}
	}
	return out
}
