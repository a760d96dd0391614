package validate

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

var optionTypes = map[string]bool{
	deploy.OptionText: true, deploy.OptionLargeText: true, deploy.OptionMultiLineText: true,
	deploy.OptionNumber: true, deploy.OptionBoolean: true, deploy.OptionDropDownList: true,
	deploy.OptionContent: true, deploy.OptionContentList: true, deploy.OptionScript: true,
	deploy.OptionPassword: true,
}

// StepDefinition validates a custom step definition: a GUID id outside the
// built-ins, a name, valid version statuses and numbers, and per option a
// unique (case-insensitive) name, a known type, valid purpose, compiling
// regexes, and a default that passes its own rules (type, dropdown
// choices, validations). Field is the option name (or "id", "name",
// "status", …); messages start with the version they concern.
func StepDefinition(d *deploy.StepDefinition) Result {
	var res Result
	add := func(field, format string, args ...any) {
		res.Errors = append(res.Errors, deploy.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case strings.TrimSpace(d.ID) == "":
		add("id", "is empty")
	case !isGUID(d.ID):
		add("id", "%q is not a GUID", d.ID)
	case stepdefs.IsImprintID(d.ID):
		add("id", "%s is in Imprint's reserved built-in range", d.ID)
	default:
		if b, ok := stepdefs.Builtin(d.ID); ok {
			add("id", "%s is the built-in step definition %q", d.ID, b.Name)
		}
	}
	if strings.TrimSpace(d.Name) == "" {
		add("name", "is empty")
	}
	if len(d.Versions) == 0 {
		add("versions", "a step definition needs at least one version")
	}
	cache := map[string]*regexp.Regexp{}
	seenVer := map[int]bool{}
	for _, v := range d.Versions {
		pre := fmt.Sprintf("version %d: ", v.VersionNo)
		if v.VersionNo < 1 {
			add("versionNo", "%sversion numbers start at 1", pre)
		}
		if seenVer[v.VersionNo] {
			add("versionNo", "%sappears twice", pre)
		}
		seenVer[v.VersionNo] = true
		if !v.Status.Valid() {
			add("status", "%sstatus %q is not In_Development, Active or Deprecated", pre, v.Status)
		}
		names := map[string]bool{}
		for i := range v.Options {
			o := &v.Options[i]
			field := o.Name
			if strings.TrimSpace(o.Name) == "" {
				add(fmt.Sprintf("options[%d]", i), "%soption name is empty", pre)
				continue
			}
			if names[strings.ToLower(o.Name)] {
				add(field, "%sanother option has the same name (names are case-insensitive)", pre)
			}
			names[strings.ToLower(o.Name)] = true
			if !optionTypes[o.Type] {
				add(field, "%stype %q is not one of Text, LargeText, MultiLineText, Number, Boolean, DropDownList, Content, ContentList, Script, Password", pre, o.Type)
				continue
			}
			if p := deploy.Str(o.ContentItemPurpose); p != "" && !deploy.Purpose(p).Valid() {
				add(field, "%scontentItemPurpose %q is not Application, DriverPack, OperatingSystem, BootImage or Other", pre, p)
			}
			if o.Type == deploy.OptionDropDownList && len(o.DropdownOptions) == 0 {
				add(field, "%sa DropDownList needs dropdownOptions", pre)
			}
			for _, val := range o.Validations {
				if _, err := compile(val.RegexRule, cache); err != nil {
					add(field, "%svalidation regex %q does not compile: %v", pre, val.RegexRule, err)
				}
			}
			def := deploy.Str(o.DefaultValue)
			if strings.TrimSpace(def) == "" {
				continue
			}
			for _, p := range checkValue(d, o, def, cache) {
				if strings.Contains(p, "invalid validation regex") {
					continue // reported above
				}
				add(field, "%sdefault %s", pre, p)
			}
		}
	}
	return res
}
