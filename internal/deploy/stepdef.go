package deploy

import "strings"

// Option types of step-definition options as DeployR names them.
const (
	OptionText          = "Text"
	OptionLargeText     = "LargeText"
	OptionMultiLineText = "MultiLineText"
	OptionNumber        = "Number"
	OptionBoolean       = "Boolean"
	OptionDropDownList  = "DropDownList"
	OptionContent       = "Content"
	OptionContentList   = "ContentList"
	OptionScript        = "Script"
	OptionPassword      = "Password"
)

// StepDefinition describes a kind of step: its options, per version.
// Built-ins have ids 00000001-0000-0000-0000-0000000000XX and are read-only.
type StepDefinition struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      *string          `json:"description"`
	TypeName         *string          `json:"typeName"`
	Versions         []StepDefVersion `json:"versions"`
	VersionsCount    int              `json:"versionsCount"`
	CreatedDate      int64            `json:"createdDate"`
	LastModifiedDate int64            `json:"lastModifiedDate"`
	ReadOnly         bool             `json:"readOnly"`
	Tags             []string         `json:"tags"`
	Doc
}

// Version returns the version numbered no.
func (d *StepDefinition) Version(no int) (*StepDefVersion, bool) {
	for i := range d.Versions {
		if d.Versions[i].VersionNo == no {
			return &d.Versions[i], true
		}
	}
	return nil, false
}

// Latest returns the highest-numbered version, or nil.
func (d *StepDefinition) Latest() *StepDefVersion {
	var best *StepDefVersion
	for i := range d.Versions {
		if best == nil || d.Versions[i].VersionNo > best.VersionNo {
			best = &d.Versions[i]
		}
	}
	return best
}

// StepDefVersion is one version of a step definition.
type StepDefVersion struct {
	ID               string   `json:"id"`
	StepDefinitionID string   `json:"stepDefinitionId"`
	VersionNo        int      `json:"versionNo"`
	Status           Status   `json:"status"`
	Description      *string  `json:"description"`
	Options          []Option `json:"options"`
	CreatedDate      int64    `json:"createdDate"`
	LastModifiedDate int64    `json:"lastModifiedDate"`
	Doc
}

// Option is one setting of a step definition. Its Name is the key in a
// step's settings (or contentItems, for Content options) and the name of the
// variable the step sees at run time.
type Option struct {
	Name               string           `json:"name"`
	DisplayName        string           `json:"displayName"`
	Description        *string          `json:"description"`
	Required           bool             `json:"required"`
	DefaultValue       *string          `json:"defaultValue"`
	Type               string           `json:"type"`
	ContentItemPurpose *string          `json:"contentItemPurpose"`
	Hidden             bool             `json:"hidden"`
	Validations        []Validation     `json:"validations"`
	DropdownOptions    []DropdownOption `json:"dropdownOptions"`
	Doc
}

// IsContent reports whether the option's value lives in a step's contentItems.
func (o *Option) IsContent() bool { return o.Type == OptionContent || o.Type == OptionContentList }

// Validation is a regular expression an option's value must match.
type Validation struct {
	RegexRule    string `json:"regexRule"`
	ErrorMessage string `json:"errorMessage"`
	Doc
}

// DropdownOption is one choice of a DropDownList option.
type DropdownOption struct {
	DisplayName string `json:"displayName"`
	Value       string `json:"value"`
	Doc
}

// ResolveVersion finds the version a step names: by version id first, then
// by number. DeployR's own exports can disagree on the number (a step says
// version 2 of a definition whose only version, with that very id, is
// numbered 1), so a matching id settles it. With neither given it returns
// the latest version.
func (d *StepDefinition) ResolveVersion(versionID string, no *int) (*StepDefVersion, bool) {
	if versionID != "" {
		for i := range d.Versions {
			if strings.EqualFold(d.Versions[i].ID, versionID) {
				return &d.Versions[i], true
			}
		}
	}
	if no != nil {
		return d.Version(*no)
	}
	v := d.Latest()
	return v, v != nil
}
