package deployrjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
)

const maxSize = 1 << 20

var compatDir = filepath.Join("..", "..", "..", "shared", "compat", "deployr")

type compatFile struct {
	name string
	kind deployrjson.Kind
	data []byte
}

func compatFiles(t *testing.T) []compatFile {
	t.Helper()
	kinds := map[string]deployrjson.Kind{
		"tasksequences": deployrjson.KindTaskSequence, "stepdefinitions": deployrjson.KindStepDefinition,
		"contentitems": deployrjson.KindContentItem,
	}
	var out []compatFile
	for sub, k := range kinds {
		files, _ := filepath.Glob(filepath.Join(compatDir, sub, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, compatFile{filepath.Base(f), k, b})
		}
	}
	if len(out) != 11 {
		t.Fatalf("found %d compat files under %s, want 11", len(out), compatDir)
	}
	return out
}

func decodeAny(t *testing.T, k deployrjson.Kind, b []byte) any {
	t.Helper()
	var v any
	var err error
	switch k {
	case deployrjson.KindTaskSequence:
		v, err = deployrjson.DecodeTaskSequence(bytes.NewReader(b), maxSize)
	case deployrjson.KindStepDefinition:
		v, err = deployrjson.DecodeStepDefinition(bytes.NewReader(b), maxSize)
	default:
		v, err = deployrjson.DecodeContentItem(bytes.NewReader(b), maxSize)
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	return v
}

func TestCompatRoundTrip(t *testing.T) {
	for _, f := range compatFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			k, err := deployrjson.Detect(f.data)
			if err != nil || k != f.kind {
				t.Fatalf("Detect = %v, %v; want %v", k, err, f.kind)
			}
			var out bytes.Buffer
			if err := deployrjson.Encode(&out, decodeAny(t, f.kind, f.data)); err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(out.Bytes(), []byte("\n")); n != 1 || !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
				t.Errorf("output has %d newlines; want one line ending in a newline", n)
			}
			if d := cmp.Diff(generic(t, f.data), generic(t, out.Bytes())); d != "" {
				t.Errorf("export changed (-want +got):\n%s", d)
			}
			_, k2, err := deployrjson.Decode(bytes.NewReader(f.data), maxSize)
			if err != nil || k2 != f.kind {
				t.Errorf("Decode kind = %v, %v", k2, err)
			}
		})
	}
}

func TestUnknownFieldsKept(t *testing.T) {
	in := `{"id":"t","name":"n","architecture":"Any","futureTop":[1,{"a":null}],"versions":[{"id":"v","taskSequenceId":"t","versionNo":1,"status":"Active","steps":[{"id":"s","name":"x","isGroup":true,"groupMembers":[{"id":"m","name":"y","typeId":"00000001-0000-0000-0000-000000000007","retries":3}]}],"reviewer":"z"}]}`
	ts, err := deployrjson.DecodeTaskSequence(strings.NewReader(in), maxSize)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := deployrjson.Encode(&out, ts); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(generic(t, []byte(in)), generic(t, out.Bytes())); d != "" {
		t.Errorf("(-in +out):\n%s", d)
	}
}

func TestMalformedInput(t *testing.T) {
	sd, err := os.ReadFile(filepath.Join(compatDir, "stepdefinitions", "sample-82fc6fd9.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts := `{"id":"t","name":"n","versions":[{"id":"v","versionNo":1,"status":"Active","steps":[{"id":"g","isGroup":true,"groupMembers":[{"id":"a","enabled":true},{"id":"b","enabled":"yes"}]}]}]}`
	tests := []struct {
		name, in string
		max      int64
		kind     deploy.Kind
		msg      string
	}{
		{"empty", "", 0, deploy.KindInvalid, "empty input: want a DeployR export (a JSON object)"},
		{"white space only", " \n\t", 0, deploy.KindInvalid, "empty input: want a DeployR export (a JSON object)"},
		{"BOM only", "\xEF\xBB\xBF", 0, deploy.KindInvalid, "empty input: want a DeployR export (a JSON object)"},
		{"truncated", `{"id":"t",`, 0, deploy.KindInvalid, "malformed JSON at line 1, column 10: unexpected end of input"},
		{"bad token", "{\n  \"id\": \"t\",\n  \"name\" \"n\"\n}", 0, deploy.KindInvalid,
			"malformed JSON at line 3, column 10: invalid character '\"' after object key"},
		{"invalid UTF-8", "{\"name\":\"a\xffb\"}", 0, deploy.KindInvalid, "invalid UTF-8 at line 1, column 11"},
		{"trailing data", `{"id":"t","steps":[]} {"id":"u"}`, 0, deploy.KindInvalid, "trailing data after the JSON document at line 1, column 23"},
		{"too large", ts, 20, deploy.KindTooLarge, "document is larger than 20 bytes"},
		{"array", `[` + ts + `]`, 0, deploy.KindInvalid, "want a JSON object (one DeployR export), got array"},
		{"not an export", `{"hello":"world"}`, 0, deploy.KindInvalid, "not a DeployR export: no steps, options or contentItemType found"},
		{"step definition given as task sequence", string(sd), 0, deploy.KindInvalid, "this is a DeployR step definition export, not a task sequence"},
		{"wrong type deep in steps", ts, 0, deploy.KindInvalid, "versions[0].steps[0].groupMembers[1].enabled: want boolean, got string"},
		{"null where Go cannot keep it", `{"id":"t","name":null,"versions":[{"steps":[]}]}`, 0, deploy.KindInvalid, "name: want string, got null"},
		{"fractional version", `{"id":"t","versions":[{"versionNo":1.5,"steps":[]}]}`, 0, deploy.KindInvalid, "versions[0].versionNo: want integer, got 1.5"},
		{"setting not a string", `{"id":"t","versions":[{"steps":[{"id":"s","settings":{"DiskIndex":0}}]}]}`, 0, deploy.KindInvalid,
			"versions[0].steps[0].settings.DiskIndex: want string, got number"},
		{"tags not strings", `{"id":"t","tags":["a",1],"versions":[{"steps":[]}]}`, 0, deploy.KindInvalid, "tags[1]: want string, got number"},
		{"steps not an array", `{"id":"t","versions":[{"taskSequenceId":"t","steps":{}}]}`, 0, deploy.KindInvalid, "versions[0].steps: want array, got object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = maxSize
			}
			_, err := deployrjson.DecodeTaskSequence(strings.NewReader(tc.in), max)
			var e *deploy.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *deploy.Error", err)
			}
			if e.Kind != tc.kind || e.Message != tc.msg {
				t.Errorf("got %s %q\nwant %s %q", e.Kind, e.Message, tc.kind, tc.msg)
			}
		})
	}
}

func TestBOMAccepted(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(compatDir, "contentitems", "custom-step-definitions-scripts-d819ff51.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := deployrjson.DecodeContentItem(bytes.NewReader(append([]byte("\xEF\xBB\xBF"), b...)), maxSize)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab" {
		t.Errorf("id = %q", c.ID)
	}
}

func TestSizeLimitIsInclusive(t *testing.T) {
	in := `{"id":"t","versions":[{"steps":[]}]}`
	if _, err := deployrjson.DecodeTaskSequence(strings.NewReader(in), int64(len(in))); err != nil {
		t.Errorf("exactly max bytes: %v", err)
	}
}

func TestCloneTaskSequence(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(compatDir, "tasksequences", "windows-bare-metal-from-cloud-github-8770d276.json"))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := deployrjson.DecodeTaskSequence(bytes.NewReader(b), maxSize)
	if err != nil {
		t.Fatal(err)
	}
	before := encode(t, orig)
	clone := deployrjson.CloneTaskSequence(orig)
	if after := encode(t, orig); after != before {
		t.Fatal("CloneTaskSequence modified its argument")
	}

	oldIDs := map[string]bool{}
	collectIDs(generic(t, b), oldIDs)
	newIDs := map[string]bool{}
	collectIDs(generic(t, []byte(encode(t, clone))), newIDs)
	if len(newIDs) != len(oldIDs) {
		t.Errorf("clone has %d distinct ids, original %d", len(newIDs), len(oldIDs))
	}
	for id := range newIDs {
		if oldIDs[id] {
			t.Errorf("id %s kept", id)
		}
	}

	// Links point at the new ids.
	v := clone.Versions[0]
	if v.TaskSequenceID != clone.ID {
		t.Errorf("taskSequenceId %s, want %s", v.TaskSequenceID, clone.ID)
	}
	var walk func(steps []deploy.Step, parent *string)
	walk = func(steps []deploy.Step, parent *string) {
		for _, s := range steps {
			if parent == nil && deploy.Str(s.TaskSequenceVersionID) != v.ID {
				t.Errorf("step %q taskSequenceVersionId %q, want %q", s.Name, deploy.Str(s.TaskSequenceVersionID), v.ID)
			}
			if parent != nil && deploy.Str(s.GroupID) != *parent {
				t.Errorf("step %q groupId %q, want %q", s.Name, deploy.Str(s.GroupID), *parent)
			}
			id := s.ID
			walk(s.GroupMembers, &id)
		}
	}
	walk(v.Steps, nil)

	// Apart from ids, nothing changed.
	blank := func(s string) any {
		g := generic(t, []byte(s))
		blankIDs(g)
		return g
	}
	if d := cmp.Diff(blank(before), blank(encode(t, clone))); d != "" {
		t.Errorf("structure changed (-orig +clone):\n%s", d)
	}

	// The copy is deep.
	var mutate func(steps []deploy.Step)
	mutate = func(steps []deploy.Step) {
		for i := range steps {
			steps[i].Settings["Changed"] = "yes"
			if steps[i].Condition != nil {
				*steps[i].Condition = "changed"
			}
			mutate(steps[i].GroupMembers)
		}
	}
	mutate(clone.Versions[0].Steps)
	if encode(t, orig) != before {
		t.Error("clone shares settings with the original")
	}
}

var idKeys = map[string]bool{"id": true, "taskSequenceId": true, "taskSequenceVersionId": true, "groupId": true}

func collectIDs(v any, ids map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "id" {
				ids[s] = true
			}
			collectIDs(e, ids)
		}
	case []any:
		for _, e := range x {
			collectIDs(e, ids)
		}
	}
}

func blankIDs(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, ok := e.(string); ok && idKeys[k] {
				x[k] = "ID"
			}
			blankIDs(e)
		}
	case []any:
		for _, e := range x {
			blankIDs(e)
		}
	}
}

func encode(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := deployrjson.Encode(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDeepNestingRefused: the typed decoding costs a step's subtree at
// every level of group nesting, so 2,000 nested groups in 108 KB took 12 s
// before the depth was bounded (found by FuzzDecode stalling).
func TestDeepNestingRefused(t *testing.T) {
	nested := func(groups int) string {
		open := strings.Repeat(`{"id":"s","name":"x","isGroup":true,"groupMembers":[`, groups)
		return `{"id":"t","name":"n","architecture":"Any","versions":[{"id":"v","taskSequenceId":"t","versionNo":1,"status":"Active","steps":[` +
			open + `{"id":"m","name":"y"}` + strings.Repeat("]}", groups) + `]}]}`
	}
	if _, err := deployrjson.DecodeTaskSequence(strings.NewReader(nested(25)), maxSize); err != nil {
		t.Errorf("25 nested groups: %v", err)
	}
	_, err := deployrjson.DecodeTaskSequence(strings.NewReader(nested(2000)), maxSize)
	if deploy.ErrorKind(err) != deploy.KindInvalid || !strings.Contains(err.Error(), "nests deeper than 64 levels") {
		t.Errorf("2,000 nested groups: %v, want KindInvalid naming the depth limit", err)
	}
}
