package stepdefs

import (
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// def is the compact literal form of a built-in; full() expands it into
// DeployR's document shape.
type def struct {
	id, versionID, name, typeName, description string
	options                                    []opt
}

func (d def) full() *deploy.StepDefinition {
	opts := make([]deploy.Option, len(d.options))
	for i, o := range d.options {
		opts[i] = deploy.Option(o)
	}
	return &deploy.StepDefinition{
		ID:            d.id,
		Name:          d.name,
		Description:   deploy.StrPtr(d.description),
		TypeName:      deploy.StrPtr(d.typeName),
		VersionsCount: 1,
		ReadOnly:      true,
		Versions: []deploy.StepDefVersion{{
			ID:               d.versionID,
			StepDefinitionID: d.id,
			VersionNo:        1,
			Status:           deploy.StatusActive,
			Description:      deploy.StrPtr(""),
			Options:          opts,
		}},
	}
}

// ourVersion returns the version id of one of Imprint's own built-ins: the
// type id with its fourth group set to 0001.
func ourVersion(typeID string) string {
	return strings.Replace(typeID, "-0000-0000-0000-", "-0000-0000-0001-", 1)
}

// opt is an option builder; each helper returns a fresh value.
type opt deploy.Option

func option(typ, name, display, desc string) opt {
	return opt{
		Name:               name,
		DisplayName:        display,
		Description:        deploy.StrPtr(desc),
		Type:               typ,
		ContentItemPurpose: deploy.StrPtr(string(deploy.PurposeOther)),
	}
}

func text(name, display, desc string) opt { return option(deploy.OptionText, name, display, desc) }
func number(name, display, desc string) opt {
	return option(deploy.OptionNumber, name, display, desc)
}
func boolean(name, display, desc string, def bool) opt {
	o := option(deploy.OptionBoolean, name, display, desc)
	if def {
		return o.withDefault("true")
	}
	return o.withDefault("false")
}
func script(name, display, desc string) opt { return option(deploy.OptionScript, name, display, desc) }
func password(name, display, desc string) opt {
	return option(deploy.OptionPassword, name, display, desc)
}

func content(name, display, desc string, p deploy.Purpose) opt {
	o := option(deploy.OptionContent, name, display, desc)
	o.ContentItemPurpose = deploy.StrPtr(string(p))
	return o
}

func contentList(name, display, desc string, p deploy.Purpose) opt {
	o := option(deploy.OptionContentList, name, display, desc)
	o.ContentItemPurpose = deploy.StrPtr(string(p))
	return o
}

// dropdown builds a DropDownList; choices are value, displayName pairs.
func dropdown(name, display, desc string, choices ...string) opt {
	o := option(deploy.OptionDropDownList, name, display, desc)
	for i := 0; i+1 < len(choices); i += 2 {
		o.DropdownOptions = append(o.DropdownOptions, deploy.DropdownOption{Value: choices[i], DisplayName: choices[i+1]})
	}
	return o
}

func (o opt) withDefault(v string) opt { o.DefaultValue = deploy.StrPtr(v); return o }
func (o opt) required() opt            { o.Required = true; return o }
func (o opt) hidden() opt              { o.Hidden = true; return o }
func (o opt) validate(rule, msg string) opt {
	o.Validations = append(o.Validations, deploy.Validation{RegexRule: rule, ErrorMessage: msg})
	return o
}

// DeployR's hidden pair on its script-backed built-ins: the script file and
// the built-in "DeployR Windows content" item holding it.
func scriptName(file string) opt {
	return script("ScriptName", "Script name", "Script run from the step's content").withDefault(file).required().hidden()
}

func deployrContent() opt {
	return content("Content", "Content", "Content item holding the step's scripts", deploy.PurposeOther).
		withDefault(ContentDeployRWindows).required().hidden()
}
