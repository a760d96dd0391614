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
		nv.Steps = cloneSteps(v.Steps, nv.ID, nil)
		out.Versions[i] = nv
	}
	return &out
}

// cloneSteps copies steps with new ids. Top-level steps (parent nil) that
// had a taskSequenceVersionId get verID; members get their new parent's id
// as groupId.
func cloneSteps(steps []deploy.Step, verID string, parent *string) []deploy.Step {
	if steps == nil {
		return nil
	}
	out := make([]deploy.Step, len(steps))
	for i, s := range steps {
		n := s
		n.ID = uuid.NewString()
		n.Description = dup(s.Description)
		n.TypeID = dup(s.TypeID)
		n.StepDefinitionVersionID = dup(s.StepDefinitionVersionID)
		n.StepDefinitionVersionNo = dup(s.StepDefinitionVersionNo)
		n.Condition = dup(s.Condition)
		n.Settings = maps.Clone(s.Settings)
		n.ContentItems = maps.Clone(s.ContentItems)
		n.Doc = cloneDoc(s.Doc)
		n.TaskSequenceVersionID = dup(s.TaskSequenceVersionID)
		if s.TaskSequenceVersionID != nil {
			n.TaskSequenceVersionID = deploy.StrPtr(verID)
		}
		n.GroupID = dup(s.GroupID)
		if parent != nil && s.GroupID != nil {
			n.GroupID = dup(parent)
		}
		id := n.ID
		n.GroupMembers = cloneSteps(s.GroupMembers, verID, &id)
		out[i] = n
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
