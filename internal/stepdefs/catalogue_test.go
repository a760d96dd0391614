package stepdefs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

var compatDir = filepath.Join("..", "..", "..", "shared", "compat", "deployr")

var optionTypes = map[string]bool{
	deploy.OptionText: true, deploy.OptionLargeText: true, deploy.OptionMultiLineText: true,
	deploy.OptionNumber: true, deploy.OptionBoolean: true, deploy.OptionDropDownList: true,
	deploy.OptionContent: true, deploy.OptionContentList: true, deploy.OptionScript: true,
	deploy.OptionPassword: true,
}

func TestCatalogueIsWellFormed(t *testing.T) {
	all := stepdefs.Builtins()
	if len(all) != 24 {
		t.Errorf("len(Builtins()) = %d, want 24", len(all))
	}
	ids, names := map[string]bool{}, map[string]bool{}
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, d := range all {
		if !stepdefs.IsDeployRID(d.ID) && !stepdefs.IsImprintID(d.ID) {
			t.Errorf("%s: id %s outside the built-in blocks", d.Name, d.ID)
		}
		if names[d.Name] {
			t.Errorf("duplicate name %q", d.Name)
		}
		names[d.Name] = true
		if !d.ReadOnly || len(d.Versions) != 1 {
			t.Errorf("%s: readOnly=%v versions=%d, want read-only with one version", d.Name, d.ReadOnly, len(d.Versions))
			continue
		}
		v := d.Versions[0]
		for _, id := range []string{d.ID, v.ID} {
			if !guid.MatchString(id) {
				t.Errorf("%s: %q is not a lower-case GUID", d.Name, id)
			}
			if ids[id] {
				t.Errorf("%s: id %s used twice", d.Name, id)
			}
			ids[id] = true
		}
		if v.VersionNo != 1 || v.Status != deploy.StatusActive || v.StepDefinitionID != d.ID {
			t.Errorf("%s: version = %d %s %s", d.Name, v.VersionNo, v.Status, v.StepDefinitionID)
		}
		optNames := map[string]bool{}
		for _, o := range v.Options {
			where := d.Name + "/" + o.Name
			if optNames[strings.ToLower(o.Name)] {
				t.Errorf("%s: duplicate option", where)
			}
			optNames[strings.ToLower(o.Name)] = true
			if !optionTypes[o.Type] {
				t.Errorf("%s: type %q unknown", where, o.Type)
			}
			p := deploy.Purpose(deploy.Str(o.ContentItemPurpose))
			if !p.Valid() {
				t.Errorf("%s: contentItemPurpose %q invalid", where, p)
			}
			if (o.Type == deploy.OptionDropDownList) != (len(o.DropdownOptions) > 0) {
				t.Errorf("%s: dropdownOptions %v do not fit type %s", where, o.DropdownOptions, o.Type)
			}
			def := deploy.Str(o.DefaultValue)
			if def == "" {
				continue
			}
			for _, val := range o.Validations {
				re, err := regexp.Compile(val.RegexRule)
				if err != nil {
					t.Errorf("%s: regex: %v", where, err)
				} else if !strings.Contains(def, "%") && !re.MatchString(def) {
					t.Errorf("%s: default %q fails %s", where, def, val.RegexRule)
				}
			}
			if o.Type == deploy.OptionDropDownList {
				found := false
				for _, c := range o.DropdownOptions {
					found = found || c.Value == def
				}
				if !found {
					t.Errorf("%s: default %q not among the choices", where, def)
				}
			}
		}
	}
}

func TestBuiltinsAreFreshCopies(t *testing.T) {
	a := stepdefs.Builtins()
	a[0].Name = "changed"
	a[0].Versions[0].Options[0].Name = "changed"
	b := stepdefs.Builtins()
	if b[0].Name == "changed" || b[0].Versions[0].Options[0].Name == "changed" {
		t.Fatal("Builtins shares state between calls")
	}
	var order []string
	for _, d := range b {
		order = append(order, d.ID)
	}
	var again []string
	for _, d := range stepdefs.Builtins() {
		again = append(again, d.ID)
	}
	if d := cmp.Diff(order, again); d != "" {
		t.Errorf("order not stable:\n%s", d)
	}
	d, ok := stepdefs.Builtin(strings.ToUpper(stepdefs.TypeFormatDisk))
	if !ok || d.Name != "Format disk" {
		t.Fatalf("Builtin(upper-case Format disk id) = %v, %v", d, ok)
	}
	if _, ok := stepdefs.Builtin("00000001-0000-0000-0000-000000000021"); ok {
		t.Error("Builtin found an id that is not in the catalogue")
	}
}

// DeployR's built-ins as listed in spec/deployr.md §5.2: type id -> version id.
var deployrBuiltins = map[string]string{
	stepdefs.TypeSetVariable:            "ba5a045d-2392-4ad1-f8ba-08dc9ff6a5e9",
	stepdefs.TypeRunPowerShell:          "5f666533-9e61-407c-f8bb-08dc9ff6a5e9",
	stepdefs.TypeConfigureOS:            "239c25a5-4760-4c97-bb85-575293799830",
	stepdefs.TypePrepareOS:              "bf2ba180-b81f-493d-9394-22552bc0900a",
	stepdefs.TypeReboot:                 "df9e5075-5038-4462-87ae-e46b12907570",
	stepdefs.TypeApplyOSFromCloud:       "c7080de9-f4c3-465f-88c0-96b550217dc5",
	stepdefs.TypeInjectDriversFromCloud: "dd5b9182-e7b6-4245-a94f-b93f4d2be22e",
	stepdefs.TypeInstallApplication:     "ce516c5d-c3f5-43cd-90f4-d8610ac7fff3",
	stepdefs.TypeRunTaskSequence:        "3fb5489a-856e-468e-89df-b64643868e22",
	stepdefs.TypeFormatDisk:             "1b0e136e-9ef2-4702-84b4-36aa68a32dff",
	stepdefs.TypeInstallUpdates:         "55afbc35-7df4-465c-8b72-8e8261a55c00",
	stepdefs.TypeEnableBranchCache:      "24300018-79bf-41fb-a57a-1f4dfbbc6cc6",
}

func TestDeployRIDsKept(t *testing.T) {
	for typeID, verID := range deployrBuiltins {
		d, ok := stepdefs.Builtin(typeID)
		if !ok {
			t.Errorf("%s missing", typeID)
			continue
		}
		if d.Versions[0].ID != verID {
			t.Errorf("%s: version id %s, want %s", d.Name, d.Versions[0].ID, verID)
		}
	}
}

// TestCompatStepsUseKnownOptions checks every compat step that instantiates
// one of our built-ins (same type and version id): the built-in exists and
// has an option for every settings and contentItems key the export uses.
func TestCompatStepsUseKnownOptions(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(compatDir, "tasksequences", "*.json"))
	if len(files) == 0 {
		t.Fatalf("no compat task sequences under %s", compatDir)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ts deploy.TaskSequence
		if err := json.Unmarshal(b, &ts); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range ts.Versions {
			walk(v.Steps, func(s *deploy.Step) {
				typeID := deploy.Str(s.TypeID)
				want, builtin := deployrBuiltins[typeID]
				if !builtin {
					return // a custom definition
				}
				seen[typeID] = true
				if got := deploy.Str(s.StepDefinitionVersionID); got != want {
					t.Errorf("%s: step %q pins version %s, want %s", filepath.Base(f), s.Name, got, want)
				}
				d, ok := stepdefs.Builtin(typeID)
				if !ok {
					t.Errorf("%s: step %q: built-in %s missing", filepath.Base(f), s.Name, typeID)
					return
				}
				opts := map[string]deploy.Option{}
				for _, o := range d.Versions[0].Options {
					opts[strings.ToLower(o.Name)] = o
				}
				check := func(key string, content bool) {
					o, ok := opts[strings.ToLower(key)]
					if !ok {
						t.Errorf("%s: step %q uses %q, which %s lacks", filepath.Base(f), s.Name, key, d.Name)
					} else if o.IsContent() != content {
						t.Errorf("%s: step %q: %q content=%v in the export but option type is %s", filepath.Base(f), s.Name, key, content, o.Type)
					}
				}
				for k := range s.Settings {
					check(k, false)
				}
				for k := range s.ContentItems {
					check(k, true)
				}
			})
		}
	}
	for id := range deployrBuiltins {
		if !seen[id] {
			t.Logf("built-in %s not exercised by the compat corpus", id)
		}
	}
}

func walk(steps []deploy.Step, fn func(*deploy.Step)) {
	for i := range steps {
		if steps[i].IsGroup {
			walk(steps[i].GroupMembers, fn)
			continue
		}
		fn(&steps[i])
	}
}
