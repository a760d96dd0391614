package sequence_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// fakeType is the type id of the fake step. Its settings drive it:
//
//	set     "NAME=VALUE[;NAME=VALUE…]"  variables to set (through Vars.Set)
//	fail    "true"                      return an error
//	reboot  "true" | "err"              Result.RebootRequested | ErrReboot
//	log     text                        written to env.Log
//	panic   "true"                      panic
const fakeType = "fake"

// recorder is the fake steps' memory of what ran.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	settings map[string]map[string]string // last expanded settings per id
	content  map[string]map[string]string
	block    chan struct{} // when set, a step named "block" waits on it
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	r.mu.Lock()
	r.calls = append(r.calls, env.ID)
	if r.settings == nil {
		r.settings = map[string]map[string]string{}
		r.content = map[string]map[string]string{}
	}
	r.settings[env.ID] = env.Settings
	r.content[env.ID] = env.Content
	block := r.block
	r.mu.Unlock()
	if env.Step.Name == "block" && block != nil {
		<-block
		<-ctx.Done()
		return sequence.Result{}, ctx.Err()
	}
	if s := env.Setting("log"); s != "" {
		fmt.Fprintln(env.Log, s)
	}
	if s := env.Setting("set"); s != "" {
		for _, kv := range strings.Split(s, ";") {
			k, v, _ := strings.Cut(kv, "=")
			if err := env.Vars.Set(k, v); err != nil {
				return sequence.Result{ExitCode: 1}, err
			}
		}
	}
	if env.Setting("panic") == "true" {
		panic("fake step exploded")
	}
	if env.Setting("fail") == "true" {
		return sequence.Result{ExitCode: 7, Output: "fake failure"}, errors.New("fake step failed")
	}
	switch env.Setting("reboot") {
	case "true":
		return sequence.Result{ExitCode: 3010, RebootRequested: true}, nil
	case "err":
		return sequence.Result{}, sequence.ErrReboot
	}
	return sequence.Result{Output: "ok"}, nil
}

// Tree builders.

type opt func(*deploy.Step)

func ptr[T any](v T) *T { return &v }

func st(id string, opts ...opt) deploy.Step {
	s := deploy.Step{ID: id, Name: id, TypeID: ptr(fakeType), Enabled: true, Settings: map[string]string{}}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func grp(id string, members []deploy.Step, opts ...opt) deploy.Step {
	s := deploy.Step{ID: id, Name: id, IsGroup: true, Enabled: true, GroupMembers: members}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func runTS(id, child string, opts ...opt) deploy.Step {
	return st(id, append([]opt{typ(deploy.TypeRunTaskSequence), set2("childTaskSequenceId", child)}, opts...)...)
}

func steps(s ...deploy.Step) []deploy.Step { return s }

func sets(kv string) opt      { return set2("set", kv) }
func set2(k, v string) opt    { return func(s *deploy.Step) { s.Settings[k] = v } }
func fails() opt              { return set2("fail", "true") }
func reboots(how string) opt  { return set2("reboot", how) }
func coe() opt                { return func(s *deploy.Step) { s.ContinueOnError = true } }
func disabled() opt           { return func(s *deploy.Step) { s.Enabled = false } }
func cond(c string) opt       { return func(s *deploy.Step) { s.Condition = &c } }
func typ(t string) opt        { return func(s *deploy.Step) { s.TypeID = &t } }
func content(k, v string) opt { return func(s *deploy.Step) { mapSet(&s.ContentItems, k, v) } }

func mapSet(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}

// q builds a one-item JSON query condition.
func q(field, op, value string) string {
	return fmt.Sprintf(`{"operator":"and","items":[{"field":%q,"operator":%q,"value":%q}]}`, field, op, value)
}

func tsv(id string, version int, s []deploy.Step) *deploy.TSVersion {
	return &deploy.TSVersion{ID: id + "-v", TaskSequenceID: id, VersionNo: version, Steps: s}
}

// loader serves task sequences from a map keyed by "id:version".
type loader map[string]*deploy.TSVersion

func (l loader) TaskSequence(_ context.Context, ref deploy.Ref) (*deploy.TSVersion, error) {
	ts, ok := l[ref.String()]
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "task sequence %s not found", ref)
	}
	return ts, nil
}

// harness is an engine with a fake registry, recording events.
type harness struct {
	e      *sequence.Engine
	rec    *recorder
	mu     sync.Mutex
	events []sequence.Event
	log    strings.Builder
}

func newHarness(t *testing.T, j sequence.Journal) *harness {
	t.Helper()
	h := &harness{rec: &recorder{}}
	reg := &sequence.Registry{}
	reg.Register(fakeType, h.rec)
	h.e = &sequence.Engine{
		Registry: reg,
		Journal:  j,
		OnEvent: func(ev sequence.Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, ev)
		},
		Log: &h.log,
		PowerShell: func(context.Context, string, *sequence.Vars) (bool, error) {
			return false, errors.New("unexpected PowerShell")
		},
	}
	return h
}

func fileJournal(t *testing.T) *sequence.FileJournal {
	t.Helper()
	return &sequence.FileJournal{Path: filepath.Join(t.TempDir(), "journal.json")}
}

// outcomes returns "id=outcome" for every end event, in order.
func (h *harness) outcomes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if ev.Type == sequence.EventEnd {
			out = append(out, ev.ID+"="+string(ev.Outcome))
		}
	}
	return out
}

func (h *harness) run(t *testing.T, ts *deploy.TSVersion, vars *sequence.Vars) sequence.Outcome {
	t.Helper()
	if vars == nil {
		vars = sequence.NewVars()
	}
	out, err := h.e.Run(context.Background(), ts, vars)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}
