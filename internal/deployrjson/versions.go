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
	out.Versions = slices.Clone(dst.Versions)
	next, used := nextVersion(len(dst.Versions), func(i int) (int, string) { return dst.Versions[i].VersionNo, dst.Versions[i].ID })
	add := slices.Clone(src.Versions)
	sort.SliceStable(add, func(i, j int) bool { return add[i].VersionNo < add[j].VersionNo })
	for _, v := range add {
		v.VersionNo = next
		next++
		if v.ID == "" || used[strings.ToLower(v.ID)] {
			v.ID = uuid.NewString()
		}
		used[strings.ToLower(v.ID)] = true
		v.TaskSequenceID = dst.ID
		v.Steps = slices.Clone(v.Steps)
		for i := range v.Steps {
			if v.Steps[i].TaskSequenceVersionID != nil {
				v.Steps[i].TaskSequenceVersionID = deploy.StrPtr(v.ID)
			}
		}
		out.Versions = append(out.Versions, v)
	}
	return &out
}

// AppendStepDefinitionVersions is AppendTaskSequenceVersions for step
// definitions.
func AppendStepDefinitionVersions(dst, src *deploy.StepDefinition) *deploy.StepDefinition {
	out := *dst
	out.Versions = slices.Clone(dst.Versions)
	next, used := nextVersion(len(dst.Versions), func(i int) (int, string) { return dst.Versions[i].VersionNo, dst.Versions[i].ID })
	add := slices.Clone(src.Versions)
	sort.SliceStable(add, func(i, j int) bool { return add[i].VersionNo < add[j].VersionNo })
	for _, v := range add {
		v.VersionNo = next
		next++
		if v.ID == "" || used[strings.ToLower(v.ID)] {
			v.ID = uuid.NewString()
		}
		used[strings.ToLower(v.ID)] = true
		v.StepDefinitionID = dst.ID
		out.Versions = append(out.Versions, v)
	}
	return &out
}

func nextVersion(n int, at func(int) (int, string)) (int, map[string]bool) {
	next, used := 1, map[string]bool{}
	for i := 0; i < n; i++ {
		no, id := at(i)
		if no >= next {
			next = no + 1
		}
		used[strings.ToLower(id)] = true
	}
	return next, used
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
