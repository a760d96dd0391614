package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// roundTrip decodes b into a fresh T, encodes it again and compares both
// as generic JSON values.
func roundTrip[T any](t *testing.T, b []byte) {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	out, err := json.Marshal(&v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var want, got any
	json.Unmarshal(b, &want)
	json.Unmarshal(out, &got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("round trip changed the document (-want +got):\n%s", d)
	}
}

func TestRoundTripCompatCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "compat", "deployr")
	cases := map[string]func(*testing.T, []byte){
		"tasksequences":   roundTrip[deploy.TaskSequence],
		"stepdefinitions": roundTrip[deploy.StepDefinition],
		"contentitems":    roundTrip[deploy.ContentItem],
	}
	n := 0
	for sub, fn := range cases {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n++
			t.Run(filepath.Base(f), func(t *testing.T) { fn(t, b) })
		}
	}
	if n == 0 {
		t.Fatalf("no compat files under %s", dir)
	}
}

func TestUnknownFieldsKeptAndEditsApplied(t *testing.T) {
	in := `{"id":"a","name":"x","futureField":{"k":[1,2]},"versions":[{"id":"v","versionNo":1,"steps":[{"id":"s","name":"n","newKnob":true}]}]}`
	var ts deploy.TaskSequence
	if err := json.Unmarshal([]byte(in), &ts); err != nil {
		t.Fatal(err)
	}
	ts.Name = "renamed"
	ts.Versions[0].Steps[0].Enabled = true
	out, _ := json.Marshal(ts)
	var got map[string]any
	json.Unmarshal(out, &got)
	if got["name"] != "renamed" {
		t.Errorf("edit lost: name = %v", got["name"])
	}
	if _, ok := got["futureField"]; !ok {
		t.Errorf("unknown top-level field dropped: %s", out)
	}
	step := got["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)
	if step["newKnob"] != true || step["enabled"] != true {
		t.Errorf("step = %v, want newKnob kept and enabled set", step)
	}
	if _, ok := got["description"]; ok {
		t.Errorf("field absent in the source appeared in the export: %s", out)
	}
}
