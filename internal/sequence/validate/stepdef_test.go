package validate_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

func TestStepDefinitionRules(t *testing.T) {
	opts := func(d *deploy.StepDefinition) *[]deploy.Option { return &d.Versions[0].Options }
	tests := []struct {
		name string
		edit func(*deploy.StepDefinition)
		want []deploy.FieldError
	}{
		{name: "valid", edit: func(*deploy.StepDefinition) {}},
		{name: "empty id", edit: func(d *deploy.StepDefinition) { d.ID = "" }, want: []deploy.FieldError{fe("", "id", "is empty")}},
		{name: "id not a GUID", edit: func(d *deploy.StepDefinition) { d.ID = "custom-1" },
			want: []deploy.FieldError{fe("", "id", `"custom-1" is not a GUID`)}},
		{name: "id in Imprint's block", edit: func(d *deploy.StepDefinition) { d.ID = "00000001-0000-0000-0000-0000000001f0" },
			want: []deploy.FieldError{fe("", "id", "00000001-0000-0000-0000-0000000001f0 is in Imprint's reserved built-in range")}},
		{name: "id of a built-in", edit: func(d *deploy.StepDefinition) { d.ID = stepdefs.TypeReboot },
			want: []deploy.FieldError{fe("", "id", stepdefs.TypeReboot+` is the built-in step definition "Reboot"`)}},
		{name: "empty name", edit: func(d *deploy.StepDefinition) { d.Name = "" }, want: []deploy.FieldError{fe("", "name", "is empty")}},
		{name: "no versions", edit: func(d *deploy.StepDefinition) { d.Versions = nil },
			want: []deploy.FieldError{fe("", "versions", "a step definition needs at least one version")}},
		{name: "bad status", edit: func(d *deploy.StepDefinition) { d.Versions[0].Status = "Done" },
			want: []deploy.FieldError{fe("", "status", `version 1: status "Done" is not In_Development, Active or Deprecated`)}},
		{name: "duplicate option names ignoring case", edit: func(d *deploy.StepDefinition) {
			*opts(d) = append(*opts(d), opt(deploy.OptionText, "hostname"))
		}, want: []deploy.FieldError{fe("", "hostname", "version 1: another option has the same name (names are case-insensitive)")}},
		{name: "unknown type", edit: func(d *deploy.StepDefinition) { (*opts(d))[1].Type = "Integer" },
			want: []deploy.FieldError{fe("", "Count", `version 1: type "Integer" is not one of Text, LargeText, MultiLineText, Number, Boolean, DropDownList, Content, ContentList, Script, Password`)}},
		{name: "regex does not compile", edit: func(d *deploy.StepDefinition) { (*opts(d))[0].Validations[0].RegexRule = "[a-" },
			want: []deploy.FieldError{fe("", "HostName", "version 1: validation regex \"[a-\" does not compile: error parsing regexp: missing closing ]: `[a-`")}},
		{name: "default fails validation", edit: func(d *deploy.StepDefinition) { (*opts(d))[0].DefaultValue = deploy.StrPtr("PC") },
			want: []deploy.FieldError{fe("", "HostName", `version 1: default "PC": lower-case letters only`)}},
		{name: "dropdown default not offered", edit: func(d *deploy.StepDefinition) { (*opts(d))[3].DefaultValue = deploy.StrPtr("medium") },
			want: []deploy.FieldError{fe("", "Mode", `version 1: default "medium" is not one of: fast, slow`)}},
		{name: "number default", edit: func(d *deploy.StepDefinition) { (*opts(d))[1].DefaultValue = deploy.StrPtr("many") },
			want: []deploy.FieldError{fe("", "Count", `version 1: default "many" is not a number`)}},
		{name: "dropdown without choices", edit: func(d *deploy.StepDefinition) { (*opts(d))[3].DropdownOptions = nil },
			want: []deploy.FieldError{fe("", "Mode", "version 1: a DropDownList needs dropdownOptions")}},
		{name: "bad purpose", edit: func(d *deploy.StepDefinition) { (*opts(d))[4].ContentItemPurpose = deploy.StrPtr("Apps") },
			want: []deploy.FieldError{fe("", "App", `version 1: contentItemPurpose "Apps" is not Application, DriverPack, OperatingSystem, BootImage or Other`)}},
		{name: "empty option name", edit: func(d *deploy.StepDefinition) { (*opts(d))[2].Name = "" },
			want: []deploy.FieldError{fe("", "options[2]", "version 1: option name is empty")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := customDef()
			tc.edit(d)
			got := validate.StepDefinition(d)
			if d := cmp.Diff(tc.want, got.Errors, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}
