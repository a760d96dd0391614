package validate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// memResolver holds documents in maps, as the store would.
type memResolver struct {
	defs    map[string]*deploy.StepDefinition
	content map[string]*deploy.ContentItem
	ts      map[string]*deploy.TaskSequence
	fail    error // returned for every lookup when set
}

var _ validate.Resolver = (*memResolver)(nil)

func newResolver() *memResolver {
	return &memResolver{defs: map[string]*deploy.StepDefinition{}, content: map[string]*deploy.ContentItem{}, ts: map[string]*deploy.TaskSequence{}}
}

func get[T any](m map[string]*T, id string, fail error, what string) (*T, error) {
	if fail != nil {
		return nil, fail
	}
	if v, ok := m[strings.ToLower(id)]; ok {
		return v, nil
	}
	return nil, deploy.Errorf(deploy.KindNotFound, "%s %s not found", what, id)
}

func (r *memResolver) StepDefinition(_ context.Context, id string) (*deploy.StepDefinition, error) {
	return get(r.defs, id, r.fail, "step definition")
}
func (r *memResolver) ContentItem(_ context.Context, id string) (*deploy.ContentItem, error) {
	return get(r.content, id, r.fail, "content item")
}
func (r *memResolver) TaskSequence(_ context.Context, id string) (*deploy.TaskSequence, error) {
	return get(r.ts, id, r.fail, "task sequence")
}

const (
	customID  = "c0ffee00-0000-4000-8000-000000000001"
	brokenID  = "c0ffee00-0000-4000-8000-000000000002"
	appID     = "a0000000-0000-4000-8000-000000000001"
	osID      = "a0000000-0000-4000-8000-000000000002"
	otherID   = "a0000000-0000-4000-8000-000000000003"
	tsA       = "b0000000-0000-4000-8000-00000000000a"
	tsB       = "b0000000-0000-4000-8000-00000000000b"
	tsMissing = "b0000000-0000-4000-8000-0000000000ff"
)

func opt(typ, name string) deploy.Option {
	return deploy.Option{Name: name, DisplayName: name, Type: typ, ContentItemPurpose: deploy.StrPtr("Other")}
}

func customDef() *deploy.StepDefinition {
	name := opt(deploy.OptionText, "HostName")
	name.Required = true
	name.Validations = []deploy.Validation{{RegexRule: `^[a-z]+$`, ErrorMessage: "lower-case letters only"}}
	count := opt(deploy.OptionNumber, "Count")
	flag := opt(deploy.OptionBoolean, "Flag")
	mode := opt(deploy.OptionDropDownList, "Mode")
	mode.DropdownOptions = []deploy.DropdownOption{{DisplayName: "Fast", Value: "fast"}, {DisplayName: "Slow", Value: "slow"}}
	app := opt(deploy.OptionContent, "App")
	app.ContentItemPurpose = deploy.StrPtr("Application")
	app.Required = true
	any := opt(deploy.OptionContent, "Anything")
	list := opt(deploy.OptionContentList, "Apps")
	list.ContentItemPurpose = deploy.StrPtr("Application")
	withDefault := opt(deploy.OptionText, "Defaulted")
	withDefault.Required = true
	withDefault.DefaultValue = deploy.StrPtr("x")
	return &deploy.StepDefinition{ID: customID, Name: "Custom", Versions: []deploy.StepDefVersion{{
		ID: "c0ffee00-0000-4000-8000-0000000000f1", StepDefinitionID: customID, VersionNo: 1, Status: deploy.StatusActive,
		Options: []deploy.Option{name, count, flag, mode, app, any, list, withDefault},
	}}}
}

func brokenDef() *deploy.StepDefinition {
	o := opt(deploy.OptionText, "Value")
	o.Validations = []deploy.Validation{{RegexRule: `(`, ErrorMessage: "never"}}
	return &deploy.StepDefinition{ID: brokenID, Name: "Broken", Versions: []deploy.StepDefVersion{{VersionNo: 1, Status: deploy.StatusActive, Options: []deploy.Option{o}}}}
}

func item(id, name string, p deploy.Purpose) *deploy.ContentItem {
	return &deploy.ContentItem{ID: id, Name: name, Type: deploy.ContentFolder, Purpose: p,
		Versions: []deploy.ContentVersion{{ID: id[:35] + "9", ContentItemID: id, VersionNo: 1, Status: deploy.StatusActive}}}
}

func runTS(id, name, child string) *deploy.TaskSequence {
	return &deploy.TaskSequence{ID: id, Name: name, Versions: []deploy.TSVersion{{ID: id[:35] + "1", TaskSequenceID: id, VersionNo: 1, Status: deploy.StatusActive,
		Steps: []deploy.Step{runStep("s-"+name, child)}}}}
}

func runStep(id, child string) deploy.Step {
	return deploy.Step{ID: id, Name: "Run child", TypeID: deploy.StrPtr(stepdefs.TypeRunTaskSequence), Enabled: true,
		Settings: map[string]string{"childTaskSequenceId": child}, ContentItems: map[string]string{}}
}

func fixtures() *memResolver {
	r := newResolver()
	r.defs[customID] = customDef()
	r.defs[brokenID] = brokenDef()
	r.content[appID] = item(appID, "7-Zip", deploy.PurposeApplication)
	r.content[osID] = item(osID, "Windows 11", deploy.PurposeOperatingSystem)
	r.content[otherID] = item(otherID, "Scripts", deploy.PurposeOther)
	r.ts[tsB] = runTS(tsB, "B", tsA+":1")
	return r
}

// base is a valid task sequence: one group holding one custom step.
func base() *deploy.TaskSequence {
	one := 1
	return &deploy.TaskSequence{ID: tsA, Name: "A", Versions: []deploy.TSVersion{{
		ID: "v1", TaskSequenceID: tsA, VersionNo: 1, Status: deploy.StatusActive,
		Steps: []deploy.Step{{
			ID: "g1", Name: "Windows PE", IsGroup: true, Enabled: true,
			GroupMembers: []deploy.Step{{
				ID: "s1", Name: "Custom step", TypeID: deploy.StrPtr(customID), StepDefinitionVersionNo: &one, Enabled: true,
				GroupID:      deploy.StrPtr("g1"),
				Settings:     map[string]string{"HostName": "pc", "Count": "3", "Flag": "true", "Mode": "fast", "Defaulted": ""},
				ContentItems: map[string]string{"App": appID + ":1", "Anything": osID + ":1", "Apps": appID + ":1, " + appID + ":1"},
				Condition:    deploy.StrPtr(`{"operator":"and","items":[{"field":"IsVM","operator":"equals","value":"True"}]}`),
			}},
		}},
	}}}
}

// step returns the custom step of base.
func step(ts *deploy.TaskSequence) *deploy.Step { return &ts.Versions[0].Steps[0].GroupMembers[0] }

const path = "Windows PE/Custom step"

func fe(step, field, msg string) deploy.FieldError {
	return deploy.FieldError{Step: step, Field: field, Message: msg}
}

func TestTaskSequenceRules(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*deploy.TaskSequence, *memResolver)
		errs     []deploy.FieldError
		warnings []deploy.FieldError
	}{
		{name: "valid", edit: func(*deploy.TaskSequence, *memResolver) {}},
		{name: "empty id and name", edit: func(ts *deploy.TaskSequence, _ *memResolver) { ts.ID, ts.Name = "", " " },
			errs: []deploy.FieldError{fe("", "id", "is empty"), fe("", "name", "is empty")}},
		{name: "bad version status", edit: func(ts *deploy.TaskSequence, _ *memResolver) { ts.Versions[0].Status = "Live" },
			errs: []deploy.FieldError{fe("", "status", `version 1: status "Live" is not In_Development, Active or Deprecated`)}},
		{name: "duplicate step id", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ID = "g1" },
			errs: []deploy.FieldError{fe(path, "id", "step id g1 is used by another step")}},
		{name: "duplicate step id in another spelling", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ID = "{ G1 }" },
			errs: []deploy.FieldError{fe(path, "id", "step id { G1 } is used by another step")}},
		{name: "empty step name", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).Name = "" },
			errs: []deploy.FieldError{fe("Windows PE/", "name", "is empty")}},
		{name: "empty typeId", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).TypeID = nil },
			errs: []deploy.FieldError{fe(path, "typeId", "is empty")}},
		{name: "typeId not a GUID", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).TypeID = deploy.StrPtr("format") },
			errs: []deploy.FieldError{fe(path, "typeId", `"format" is not a GUID`)}},
		{name: "unknown built-in type", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			step(ts).TypeID = deploy.StrPtr("00000001-0000-0000-0000-0000000001ff")
		}, errs: []deploy.FieldError{fe(path, "typeId", "unknown step type 00000001-0000-0000-0000-0000000001ff")}},
		{name: "DeployR-range definition not on server", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			step(ts).TypeID = deploy.StrPtr("00000001-0000-0000-0000-000000000021")
		}, warnings: []deploy.FieldError{fe(path, "typeId", "DeployR built-in step type 00000001-0000-0000-0000-000000000021 (Customize - Configure Initial Variables) is not supported by this server yet")}},
		{name: "custom definition not on server", edit: func(_ *deploy.TaskSequence, r *memResolver) { delete(r.defs, customID) },
			warnings: []deploy.FieldError{fe(path, "typeId", "step definition "+customID+" is not on this server; the step cannot run until it is imported")}},
		{name: "definition version missing", edit: func(ts *deploy.TaskSequence, _ *memResolver) { two := 2; step(ts).StepDefinitionVersionNo = &two },
			errs: []deploy.FieldError{fe(path, "stepDefinitionVersionNo", `step definition "Custom" has no version 2`)}},
		{name: "required option missing", edit: func(ts *deploy.TaskSequence, _ *memResolver) { delete(step(ts).Settings, "HostName") },
			errs: []deploy.FieldError{fe(path, "HostName", "required option not set")}},
		{name: "required content option empty", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ContentItems["App"] = "" },
			warnings: []deploy.FieldError{fe(path, "App", "required content option is empty; the step fails when it runs unless it gets a value")}},
		{name: "required content option absent", edit: func(ts *deploy.TaskSequence, _ *memResolver) { delete(step(ts).ContentItems, "App") },
			errs: []deploy.FieldError{fe(path, "App", "required content option not set")}},
		{name: "required option filled by default", edit: func(ts *deploy.TaskSequence, _ *memResolver) { delete(step(ts).Settings, "Defaulted") }},
		{name: "keys match case-insensitively", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			s := step(ts)
			delete(s.Settings, "HostName")
			s.Settings["hostname"] = "pc"
		}},
		{name: "regex validation fails", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).Settings["HostName"] = "PC-1" },
			errs: []deploy.FieldError{fe(path, "HostName", `"PC-1": lower-case letters only`)}},
		{name: "variable reference skips static checks", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			step(ts).Settings["HostName"] = "%OSDComputerName%"
			step(ts).Settings["Count"] = "%N%"
		}},
		{name: "invalid regex in definition", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			s := step(ts)
			s.TypeID = deploy.StrPtr(brokenID)
			s.StepDefinitionVersionNo = nil
			s.Settings = map[string]string{"Value": "v"}
		}, errs: []deploy.FieldError{fe(path, "Value", "step definition \"Broken\" has an invalid validation regex \"(\": error parsing regexp: missing closing ): `(`")}},
		{name: "dropdown value not offered", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).Settings["Mode"] = "Fast" },
			errs: []deploy.FieldError{fe(path, "Mode", `"Fast" is not one of: fast, slow`)}},
		{name: "number", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).Settings["Count"] = "three" },
			errs: []deploy.FieldError{fe(path, "Count", `"three" is not a number`)}},
		{name: "boolean", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).Settings["Flag"] = "yes" },
			errs: []deploy.FieldError{fe(path, "Flag", `"yes" is not true or false`)}},
		{name: "content reference malformed", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ContentItems["App"] = appID },
			errs: []deploy.FieldError{fe(path, "App", `"`+appID+`" is not a content reference of the form guid:version`)}},
		{name: "content list element malformed", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ContentItems["Apps"] = appID + ":1;7zip" },
			errs: []deploy.FieldError{fe(path, "Apps", `"7zip" is not a content reference of the form guid:version`)}},
		{name: "content version missing", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ContentItems["App"] = appID + ":4" },
			errs: []deploy.FieldError{fe(path, "App", `content item "7-Zip" has no version 4`)}},
		{name: "content purpose mismatch", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ContentItems["App"] = osID + ":1" },
			errs: []deploy.FieldError{fe(path, "App", `content item "Windows 11" is OperatingSystem content; this option needs Application`)}},
		{name: "purpose Other accepts any", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).ContentItems["Anything"] = appID + ":1" }},
		{name: "content item not on server", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			step(ts).ContentItems["Anything"] = "00000000-0000-0000-0000-000000000002:1"
		}, warnings: []deploy.FieldError{fe(path, "Anything", "content item 00000000-0000-0000-0000-000000000002 is not on this server")}},
		{name: "condition does not parse", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			ts.Versions[0].Steps[0].Condition = deploy.StrPtr(`{"operator":"xor","items":[]}`)
		}, errs: []deploy.FieldError{fe("Windows PE", "condition", `condition group operator "xor" is not "and" or "or"`)}},
		{name: "PowerShell condition", edit: func(ts *deploy.TaskSequence, _ *memResolver) { step(ts).Condition = deploy.StrPtr("$true") },
			warnings: []deploy.FieldError{fe(path, "condition", "PowerShell condition needs pwsh on the machine at run time")}},
		{name: "runs itself", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			ts.Versions[0].Steps = append(ts.Versions[0].Steps, runStep("r1", tsA+":1"))
		}, errs: []deploy.FieldError{fe("Run child", "childTaskSequenceId", "task sequence cycle: A:1 → A:1")}},
		{name: "cycle through a child", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			ts.Versions[0].Steps = append(ts.Versions[0].Steps, runStep("r1", tsB+":1"))
		}, errs: []deploy.FieldError{fe("Run child", "childTaskSequenceId", "task sequence cycle: A:1 → B:1 → A:1")}},
		{name: "longer cycle not through the root", edit: func(ts *deploy.TaskSequence, r *memResolver) {
			c := "b0000000-0000-4000-8000-00000000000c"
			r.ts[tsB] = runTS(tsB, "B", c+":1")
			r.ts[c] = runTS(c, "C", tsB+":1")
			ts.Versions[0].Steps = append(ts.Versions[0].Steps, runStep("r1", tsB+":1"))
		}, errs: []deploy.FieldError{fe("Run child", "childTaskSequenceId", "task sequence cycle: A:1 → B:1 → C:1 → B:1")}},
		{name: "child not on server", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			ts.Versions[0].Steps = append(ts.Versions[0].Steps, runStep("r1", tsMissing+":1"))
		}, warnings: []deploy.FieldError{fe("Run child", "childTaskSequenceId", "child task sequence "+tsMissing+" is not on this server")}},
		{name: "child version missing", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			ts.Versions[0].Steps = append(ts.Versions[0].Steps, runStep("r1", tsB+":7"))
		}, errs: []deploy.FieldError{fe("Run child", "childTaskSequenceId", `task sequence "B" has no version 7`)}},
		{name: "child reference malformed", edit: func(ts *deploy.TaskSequence, _ *memResolver) {
			ts.Versions[0].Steps = append(ts.Versions[0].Steps, runStep("r1", "B"))
		}, errs: []deploy.FieldError{fe("Run child", "childTaskSequenceId", `"B": must be a task sequence reference of the form guid:version`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, r := base(), fixtures()
			tc.edit(ts, r)
			got, err := validate.TaskSequence(context.Background(), ts, r)
			if err != nil {
				t.Fatalf("TaskSequence: %v", err)
			}
			if d := cmp.Diff(tc.errs, got.Errors, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.warnings, got.Warnings, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("warnings (-want +got):\n%s", d)
			}
		})
	}
}

func TestResolverFailureIsReturned(t *testing.T) {
	r := fixtures()
	boom := errors.New("database is locked")
	r.fail = boom
	_, err := validate.TaskSequence(context.Background(), base(), r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
}

func TestResultErr(t *testing.T) {
	if err := (validate.Result{Warnings: []deploy.FieldError{fe("", "x", "w")}}).Err(); err != nil {
		t.Errorf("warnings only: Err() = %v", err)
	}
	err := validate.Result{Errors: []deploy.FieldError{fe("S", "f", "bad"), fe("", "g", "worse")}}.Err()
	var e *deploy.Error
	if !errors.As(err, &e) || e.Kind != deploy.KindInvalid || len(e.Fields) != 2 {
		t.Fatalf("Err() = %#v", err)
	}
	if want := `step "S": f: bad (and 1 more problems)`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
}
