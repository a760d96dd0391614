package storetest

import (
	"encoding/json"
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// testTaskSequencesCompat stores every DeployR task-sequence export and
// reads it back: the JSON must be the same, field for field.
func testTaskSequencesCompat(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	files := compatFiles(t, "tasksequences")
	var names []string
	for name, b := range files {
		var ts deploy.TaskSequence
		must(t, name, json.Unmarshal(b, &ts))
		must(t, "PutTaskSequence "+name, s.PutTaskSequence(ctx(t), &ts))
		got, err := s.TaskSequence(ctx(t), ts.ID)
		must(t, "TaskSequence "+name, err)
		var want any
		must(t, name, json.Unmarshal(b, &want))
		if d := cmp.Diff(want, asJSON(t, got)); d != "" {
			t.Errorf("%s: stored task sequence differs from the export (-want +got):\n%s", name, d)
		}
		names = append(names, ts.Name)
	}
	list, err := s.TaskSequences(ctx(t))
	must(t, "TaskSequences", err)
	var got []string
	for _, ts := range list {
		got = append(got, ts.Name)
	}
	sort.Strings(names)
	if d := cmp.Diff(names, got); d != "" {
		t.Errorf("TaskSequences names, in order (-want +got):\n%s", d)
	}

	// Put replaces.
	first := list[0]
	first.Name = "zz renamed"
	first.Versions = first.Versions[:0]
	must(t, "PutTaskSequence replace", s.PutTaskSequence(ctx(t), first))
	again, err := s.TaskSequence(ctx(t), first.ID)
	must(t, "TaskSequence", err)
	if again.Name != "zz renamed" || len(again.Versions) != 0 {
		t.Errorf("replaced task sequence = %q with %d versions, want \"zz renamed\" with 0", again.Name, len(again.Versions))
	}
	list, err = s.TaskSequences(ctx(t))
	must(t, "TaskSequences", err)
	if len(list) != len(files) || list[len(list)-1].ID != first.ID {
		t.Errorf("after rename: %d sequences, last %q; want %d, last %q", len(list), list[len(list)-1].Name, len(files), first.Name)
	}

	must(t, "DeleteTaskSequence", s.DeleteTaskSequence(ctx(t), first.ID))
	_, err = s.TaskSequence(ctx(t), first.ID)
	wantKind(t, "TaskSequence after delete", err, deploy.KindNotFound)
	wantKind(t, "DeleteTaskSequence twice", s.DeleteTaskSequence(ctx(t), first.ID), deploy.KindNotFound)
}

func testStepDefinitionsCompat(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	files := compatFiles(t, "stepdefinitions")
	ids := map[string]bool{}
	for name, b := range files {
		var d deploy.StepDefinition
		must(t, name, json.Unmarshal(b, &d))
		must(t, "PutStepDefinition "+name, s.PutStepDefinition(ctx(t), &d))
		got, err := s.StepDefinition(ctx(t), d.ID)
		must(t, "StepDefinition "+name, err)
		var want any
		must(t, name, json.Unmarshal(b, &want))
		if diff := cmp.Diff(want, asJSON(t, got)); diff != "" {
			t.Errorf("%s: stored step definition differs from the export (-want +got):\n%s", name, diff)
		}
		ids[d.ID] = true
	}
	list, err := s.StepDefinitions(ctx(t))
	must(t, "StepDefinitions", err)
	if len(list) != len(ids) {
		t.Errorf("StepDefinitions returned %d, want %d", len(list), len(ids))
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].Name > list[i].Name {
			t.Errorf("StepDefinitions not by name: %q before %q", list[i-1].Name, list[i].Name)
		}
	}
	for id := range ids {
		must(t, "DeleteStepDefinition", s.DeleteStepDefinition(ctx(t), id))
	}
	list, err = s.StepDefinitions(ctx(t))
	must(t, "StepDefinitions", err)
	if len(list) != 0 {
		t.Errorf("StepDefinitions after deleting all = %d", len(list))
	}
}

func testDocumentsNotFound(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	const missing = "00000000-0000-0000-0000-00000000dead"
	calls := map[string]func() error{
		"StepDefinition":       func() error { _, err := s.StepDefinition(ctx(t), missing); return err },
		"DeleteStepDefinition": func() error { return s.DeleteStepDefinition(ctx(t), missing) },
		"TaskSequence":         func() error { _, err := s.TaskSequence(ctx(t), missing); return err },
		"DeleteTaskSequence":   func() error { return s.DeleteTaskSequence(ctx(t), missing) },
		"Setting":              func() error { _, err := s.Setting(ctx(t), "missing"); return err },
		"Device":               func() error { _, err := s.Device(ctx(t), missing); return err },
		"Run":                  func() error { _, err := s.Run(ctx(t), missing); return err },
		"UpdateRun": func() error {
			return s.UpdateRun(ctx(t), &deploy.Run{ID: missing, State: deploy.RunRunning})
		},
		"AppendRunEvent":     func() error { return s.AppendRunEvent(ctx(t), &deploy.RunEvent{RunID: missing, Type: "log"}) },
		"RunEvents":          func() error { _, err := s.RunEvents(ctx(t), missing, 0); return err },
		"SessionByTokenHash": func() error { _, err := s.SessionByTokenHash(ctx(t), []byte("nope")); return err },
		"UpdateSession": func() error {
			return s.UpdateSession(ctx(t), &deploy.Session{ID: missing, TokenHash: []byte("x")})
		},
	}
	for name, call := range calls {
		wantKind(t, name, call(), deploy.KindNotFound)
	}
	lists := map[string]func() (int, error){
		"ContentItems":    func() (int, error) { l, err := s.ContentItems(ctx(t)); return len(l), err },
		"StepDefinitions": func() (int, error) { l, err := s.StepDefinitions(ctx(t)); return len(l), err },
		"TaskSequences":   func() (int, error) { l, err := s.TaskSequences(ctx(t)); return len(l), err },
		"Runs":            func() (int, error) { l, err := s.Runs(ctx(t), deploy.RunFilter{}); return len(l), err },
		"Sessions":        func() (int, error) { l, err := s.Sessions(ctx(t)); return len(l), err },
		"AuditEvents":     func() (int, error) { l, err := s.AuditEvents(ctx(t), 0, 0); return len(l), err },
	}
	for name, list := range lists {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("%s on an empty store = %d, %v; want 0, nil", name, n, err)
		}
	}
}

func testDocumentsGeneratedIDs(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	d := &deploy.StepDefinition{Name: "custom"}
	must(t, "PutStepDefinition", s.PutStepDefinition(ctx(t), d))
	checkGUID(t, "step definition ID", d.ID)
	ts := &deploy.TaskSequence{Name: "ts"}
	must(t, "PutTaskSequence", s.PutTaskSequence(ctx(t), ts))
	checkGUID(t, "task sequence ID", ts.ID)
	if _, err := s.StepDefinition(ctx(t), d.ID); err != nil {
		t.Errorf("StepDefinition(generated id): %v", err)
	}
	if _, err := s.TaskSequence(ctx(t), ts.ID); err != nil {
		t.Errorf("TaskSequence(generated id): %v", err)
	}
	ts2 := &deploy.TaskSequence{Name: "ts"}
	must(t, "PutTaskSequence", s.PutTaskSequence(ctx(t), ts2))
	if ts2.ID == ts.ID {
		t.Errorf("two task sequences got the same generated id %s", ts.ID)
	}
}

func testSettings(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	_, err := s.Setting(ctx(t), "passcode")
	wantKind(t, "Setting unset", err, deploy.KindNotFound)
	wantKind(t, "PutSetting with empty key", s.PutSetting(ctx(t), "", []byte("x")), deploy.KindInvalid)

	steps := []struct {
		key   string
		value []byte
	}{
		{"passcode", []byte(`{"hash":"argon2id$..."}`)},
		{"binary", []byte{0, 1, 2, 0xff, 0}},
		{"passcode", []byte(`{"hash":"replaced"}`)},
		{"empty", []byte{}},
	}
	want := map[string][]byte{}
	for _, st := range steps {
		must(t, "PutSetting "+st.key, s.PutSetting(ctx(t), st.key, st.value))
		want[st.key] = st.value
	}
	for k, w := range want {
		got, err := s.Setting(ctx(t), k)
		must(t, "Setting "+k, err)
		if d := cmp.Diff(w, got, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); d != "" {
			t.Errorf("Setting %q (-want +got):\n%s", k, d)
		}
	}
	must(t, "DeleteSetting", s.DeleteSetting(ctx(t), "passcode"))
	_, err = s.Setting(ctx(t), "passcode")
	wantKind(t, "Setting after delete", err, deploy.KindNotFound)
	must(t, "DeleteSetting of an unset key", s.DeleteSetting(ctx(t), "passcode"))
	if _, err := s.Setting(ctx(t), "binary"); err != nil {
		t.Errorf("deleting one key removed another: %v", err)
	}
}

// testUpdateSetting checks UpdateSetting's contract: fn sees nil for an
// unset key and the stored bytes otherwise, its result is stored, a nil
// result deletes, an error changes nothing.
func testUpdateSetting(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	wantKind(t, "UpdateSetting with empty key",
		s.UpdateSetting(ctx(t), "", func([]byte) ([]byte, error) { return []byte("x"), nil }), deploy.KindInvalid)

	var seen [][]byte
	record := func(next []byte) func([]byte) ([]byte, error) {
		return func(old []byte) ([]byte, error) {
			seen = append(seen, old)
			return next, nil
		}
	}
	must(t, "UpdateSetting unset", s.UpdateSetting(ctx(t), "k", record([]byte("one"))))
	must(t, "UpdateSetting set", s.UpdateSetting(ctx(t), "k", record([]byte{})))
	must(t, "UpdateSetting empty", s.UpdateSetting(ctx(t), "k", record([]byte("two"))))
	want := [][]byte{nil, []byte("one"), {}}
	if len(seen) != len(want) {
		t.Fatalf("fn ran %d times, want %d", len(seen), len(want))
	}
	for i := range want {
		if (seen[i] == nil) != (want[i] == nil) || string(seen[i]) != string(want[i]) {
			t.Errorf("call %d: fn got %q (nil %v), want %q (nil %v)", i, seen[i], seen[i] == nil, want[i], want[i] == nil)
		}
	}

	boom := errors.New("refused")
	err := s.UpdateSetting(ctx(t), "k", func([]byte) ([]byte, error) { return []byte("lost"), boom })
	if !errors.Is(err, boom) {
		t.Errorf("UpdateSetting with failing fn: err = %v, want fn's error", err)
	}
	if got, err := s.Setting(ctx(t), "k"); err != nil || string(got) != "two" {
		t.Errorf("after a failed update Setting = %q, %v; want %q unchanged", got, err, "two")
	}

	must(t, "UpdateSetting to nil", s.UpdateSetting(ctx(t), "k", record(nil)))
	_, err = s.Setting(ctx(t), "k")
	wantKind(t, "Setting after UpdateSetting returned nil", err, deploy.KindNotFound)
}
