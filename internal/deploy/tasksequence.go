package deploy

// TaskSequence is DeployR's task sequence: metadata plus numbered versions,
// each a tree of steps and groups.
type TaskSequence struct {
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	Description      *string     `json:"description"`
	Architecture     string      `json:"architecture"`
	Tags             []string    `json:"tags"`
	Versions         []TSVersion `json:"versions"`
	VersionsCount    int         `json:"versionsCount"`
	CreatedDate      int64       `json:"createdDate"`
	LastModifiedDate int64       `json:"lastModifiedDate"`
	Doc
}

// Version returns the version numbered no.
func (t *TaskSequence) Version(no int) (*TSVersion, bool) {
	for i := range t.Versions {
		if t.Versions[i].VersionNo == no {
			return &t.Versions[i], true
		}
	}
	return nil, false
}

// Latest returns the highest-numbered version, or nil.
func (t *TaskSequence) Latest() *TSVersion {
	var best *TSVersion
	for i := range t.Versions {
		if best == nil || t.Versions[i].VersionNo > best.VersionNo {
			best = &t.Versions[i]
		}
	}
	return best
}

// TSVersion is one version of a task sequence.
type TSVersion struct {
	ID               string   `json:"id"`
	TaskSequenceID   string   `json:"taskSequenceId"`
	VersionNo        int      `json:"versionNo"`
	Status           Status   `json:"status"`
	Description      *string  `json:"description"`
	Tags             []string `json:"tags"`
	Steps            []Step   `json:"steps"`
	CreatedDate      int64    `json:"createdDate"`
	LastModifiedDate int64    `json:"lastModifiedDate"`
	Doc
}

// Step is a step or (IsGroup) a group of steps. Settings hold every
// non-content option as a string; ContentItems map content options to
// "guid:version" (or "" when unset). Condition is nil, "", a JSON query
// ({"operator":"and","items":[…]}) or a PowerShell expression.
type Step struct {
	ID                      string            `json:"id"`
	TaskSequenceVersionID   *string           `json:"taskSequenceVersionId"`
	Name                    string            `json:"name"`
	Description             *string           `json:"description"`
	IsGroup                 bool              `json:"isGroup"`
	GroupID                 *string           `json:"groupId"`
	GroupMembers            []Step            `json:"groupMembers"`
	TypeID                  *string           `json:"typeId"`
	StepDefinitionVersionID *string           `json:"stepDefinitionVersionId"`
	StepDefinitionVersionNo *int              `json:"stepDefinitionVersionNo"`
	Settings                map[string]string `json:"settings"`
	ContentItems            map[string]string `json:"contentItems"`
	Enabled                 bool              `json:"enabled"`
	ContinueOnError         bool              `json:"continueOnError"`
	Condition               *string           `json:"condition"`
	CreatedDate             int64             `json:"createdDate"`
	LastModifiedDate        int64             `json:"lastModifiedDate"`
	Doc
}

// Built-in step-definition type ids (DeployR's where known, ours otherwise;
// see internal/stepdefs for the full catalogue).
const (
	TypeSetVariable     = "00000001-0000-0000-0000-000000000001"
	TypeRunPowerShell   = "00000001-0000-0000-0000-000000000002"
	TypeRunTaskSequence = "00000001-0000-0000-0000-00000000000d"
)
