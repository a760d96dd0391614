package deployrjson

import (
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// AppendTaskSequenceVersions returns dst with the versions of src appended
// as its next versions, in src's order of version numbers: numbered after
// dst's highest, owned by dst's id, keeping their version ids unless dst
// already uses them. dst's own versions and metadata are kept; neither
// argument is modified.
func AppendTaskSequenceVersions(dst, src *deploy.TaskSequence) *deploy.TaskSequence {
	out := *dst
	out.Versions = appendRenumbered(dst.Versions, src.Versions, func(v *deploy.TSVersion) (*int, *string) { return &v.VersionNo, &v.ID })
	for i := len(dst.Versions); i < len(out.Versions); i++ {
		v := &out.Versions[i]
		v.TaskSequenceID = dst.ID
		v.Steps = slices.Clone(v.Steps)
		for j := range v.Steps {
			if v.Steps[j].TaskSequenceVersionID != nil {
				v.Steps[j].TaskSequenceVersionID = deploy.StrPtr(v.ID)
			}
		}
	}
	return &out
}

// AppendStepDefinitionVersions is AppendTaskSequenceVersions for step
// definitions.
func AppendStepDefinitionVersions(dst, src *deploy.StepDefinition) *deploy.StepDefinition {
	out := *dst
	out.Versions = appendRenumbered(dst.Versions, src.Versions, func(v *deploy.StepDefVersion) (*int, *string) { return &v.VersionNo, &v.ID })
	for i := len(dst.Versions); i < len(out.Versions); i++ {
		out.Versions[i].StepDefinitionID = dst.ID
	}
	return &out
}

// appendRenumbered returns a new slice of have followed by copies of add,
// in add's version order, numbered after have's highest version, keeping
// their ids unless empty or already used. key points at a version's number
// and id.
func appendRenumbered[V any](have, add []V, key func(*V) (*int, *string)) []V {
	out := slices.Clone(have)
	next, used := 1, map[string]bool{}
	for i := range out {
		no, id := key(&out[i])
		if *no >= next {
			next = *no + 1
		}
		used[strings.ToLower(*id)] = true
	}
	add = slices.Clone(add)
	sort.SliceStable(add, func(i, j int) bool {
		a, _ := key(&add[i])
		b, _ := key(&add[j])
		return *a < *b
	})
	for i := range add {
		no, id := key(&add[i])
		*no = next
		next++
		if *id == "" || used[strings.ToLower(*id)] {
			*id = uuid.NewString()
		}
		used[strings.ToLower(*id)] = true
		out = append(out, add[i])
	}
	return out
}

// CloneStepDefinition returns a copy of d with new ids for the definition
// and each version (stepDefinitionId follows), as an import with --clone
// does. Names, options, dates and unknown fields are kept.
func CloneStepDefinition(d *deploy.StepDefinition) *deploy.StepDefinition {
	out := *d
	out.ID = uuid.NewString()
	out.Doc = cloneDoc(d.Doc)
	out.Versions = slices.Clone(d.Versions)
	for i := range out.Versions {
		out.Versions[i].ID = uuid.NewString()
		out.Versions[i].StepDefinitionID = out.ID
		out.Versions[i].Options = slices.Clone(d.Versions[i].Options)
	}
	return &out
}

// CloneContentItem returns a copy of c with new ids for the item and each
// version (contentItemId follows).
func CloneContentItem(c *deploy.ContentItem) *deploy.ContentItem {
	out := *c
	out.ID = uuid.NewString()
	out.Doc = cloneDoc(c.Doc)
	out.Versions = slices.Clone(c.Versions)
	for i := range out.Versions {
		out.Versions[i].ID = uuid.NewString()
		out.Versions[i].ContentItemID = out.ID
	}
	return &out
}
