package sequence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// treeGen builds random task sequences.
type treeGen struct {
	rng *rand.Rand
	n   int
}

var condOps = []string{"equals", "notEquals", "contains", "notContains", "startsWith", "endsWith",
	"greaterThan", "lessThan", "exists", "notExists"}

func (g *treeGen) list(depth int, children []string) []deploy.Step {
	count := g.rng.Intn(4)
	if depth == 0 {
		count += 4
	}
	var out []deploy.Step
	for range count {
		out = append(out, g.node(depth, children))
	}
	return out
}

func (g *treeGen) node(depth int, children []string) deploy.Step {
	g.n++
	id := fmt.Sprintf("s%d", g.n)
	var s deploy.Step
	switch r := g.rng.Float64(); {
	case depth < 3 && r < 0.25:
		s = grp(id, g.list(depth+1, children))
	case len(children) > 0 && r < 0.33:
		s = runTS(id, children[g.rng.Intn(len(children))])
	default:
		s = st(id)
		if g.rng.Float64() < 0.6 {
			k, v := g.rng.Intn(3), g.rng.Intn(4)
			val := fmt.Sprint(v)
			if g.rng.Float64() < 0.3 { // not idempotent unless resume restores the pre-step variables
				val = fmt.Sprintf("%%X%d%%%d", g.rng.Intn(3), v)
			}
			s.Settings["set"] = fmt.Sprintf("X%d=%s", k, val)
		}
		switch r := g.rng.Float64(); {
		case r < 0.15:
			s.Settings["fail"] = "true"
		case r < 0.22:
			s.Settings["reboot"] = "true"
		case r < 0.27:
			s.Settings["reboot"] = "err"
		}
		if g.rng.Float64() < 0.1 {
			s.Settings["log"] = "secret is %Pw%"
		}
	}
	if g.rng.Float64() < 0.1 {
		s.Enabled = false
	}
	if g.rng.Float64() < 0.25 {
		s.ContinueOnError = true
	}
	switch r := g.rng.Float64(); {
	case r < 0.3:
		b, err := json.Marshal(g.query(0))
		if err != nil {
			panic(err)
		}
		c := string(b)
		s.Condition = &c
	case r < 0.35:
		c := fmt.Sprintf("X%d", g.rng.Intn(3)) // PowerShell form, see psStub
		s.Condition = &c
	}
	return s
}

func (g *treeGen) query(depth int) sequence.Query {
	q := sequence.Query{Operator: []string{"and", "or"}[g.rng.Intn(2)]}
	for range 1 + g.rng.Intn(3) {
		if depth < 2 && g.rng.Float64() < 0.2 {
			sub := g.query(depth + 1)
			q.Items = append(q.Items, sequence.QueryItem{Group: &sub})
			continue
		}
		field := fmt.Sprintf("X%d", g.rng.Intn(4)) // X3 is never set
		q.Items = append(q.Items, sequence.QueryItem{
			Field: field, Operator: condOps[g.rng.Intn(len(condOps))], Value: fmt.Sprint(g.rng.Intn(4)),
		})
	}
	return q
}

// psStub stands in for pwsh: expression "Xn" holds when Xn is "1".
func psStub(_ context.Context, expr string, v *sequence.Vars) (bool, error) {
	return v.Value(strings.TrimSpace(expr)) == "1", nil
}

var errCrash = errors.New("injected crash")

// crashJournal counts saves and simulates the process dying at save
// crashAt: after the state is written, or (before) just before it is.
type crashJournal struct {
	inner   sequence.Journal
	crashAt int
	before  bool
	saves   int
	// lastRunning is the Running field of the last state written; when a
	// crash prevents the next save, that step has run but is not recorded.
	lastRunning string
	rerun       string
}

func (c *crashJournal) Load() (*sequence.JournalState, error) { return c.inner.Load() }

func (c *crashJournal) Save(st *sequence.JournalState) error {
	c.saves++
	if c.saves == c.crashAt && c.before {
		c.rerun = c.lastRunning
		return errCrash
	}
	if err := c.inner.Save(st); err != nil {
		return err
	}
	c.lastRunning = st.Running
	if c.saves == c.crashAt {
		return errCrash
	}
	return nil
}

// memJournal keeps the journal as JSON in memory (the file journal's
// serialisation without its fsyncs, to keep 300 trees fast).
type memJournal struct{ b []byte }

func (m *memJournal) Load() (*sequence.JournalState, error) {
	if m.b == nil {
		return nil, deploy.Errorf(deploy.KindNotFound, "no journal")
	}
	var st sequence.JournalState
	err := json.Unmarshal(m.b, &st)
	return &st, err
}

func (m *memJournal) Save(st *sequence.JournalState) error {
	b, err := json.Marshal(st)
	m.b = b
	return err
}

type world struct {
	ts     *deploy.TSVersion
	loader loader
}

type final struct {
	Calls     []string
	Out       sequence.Outcome
	Vars      []sequence.Var
	Completed []sequence.CompletedStep
}

func initialVars() *sequence.Vars {
	v := sequence.VarsFrom(map[string]string{"X0": "0", "X1": "1"})
	if err := v.SetSecret("Pw", "pw-123"); err != nil {
		panic(err)
	}
	return v
}

// drive runs w to the end, as the agent would: a fresh engine after every
// reboot and after the injected crash.
func drive(t *testing.T, w world, j *crashJournal) final {
	t.Helper()
	rec := &recorder{}
	reg := &sequence.Registry{}
	reg.Register(fakeType, rec)
	var log strings.Builder
	for range 200 {
		e := &sequence.Engine{Registry: reg, Loader: w.loader, Journal: j, PowerShell: psStub, Log: &log}
		vars := initialVars()
		out, err := e.Run(context.Background(), w.ts, vars)
		if errors.Is(err, errCrash) {
			j.crashAt = -1
			continue
		}
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if out.Reboot {
			continue
		}
		if strings.Contains(log.String(), "pw-123") {
			t.Fatalf("log leaks the secret:\n%s", log.String())
		}
		st, err := j.Load()
		if err != nil {
			t.Fatal(err)
		}
		return final{Calls: rec.Calls(), Out: out, Vars: vars.Snapshot(), Completed: st.Completed}
	}
	t.Fatal("run did not end after 200 rounds")
	return final{}
}

func TestPropertyResumeMatchesUninterrupted(t *testing.T) {
	trees := 300
	if testing.Short() {
		trees = 40
	}
	for seed := range trees {
		g := &treeGen{rng: rand.New(rand.NewSource(int64(seed)))}
		w := world{loader: loader{}}
		w.loader["c2:1"] = tsv("c2", 1, g.list(1, nil))
		w.loader["c1:1"] = tsv("c1", 1, g.list(1, []string{"c1:1", "c2:1"})) // may recurse: a runtime cycle
		w.ts = tsv("top", 1, g.list(0, []string{"c1:1", "c2:1"}))

		// Real files for some trees, JSON in memory for the rest.
		newInner := func(t *testing.T) sequence.Journal { return &memJournal{} }
		if seed%30 == 0 {
			newInner = func(t *testing.T) sequence.Journal {
				return &sequence.FileJournal{Path: filepath.Join(t.TempDir(), "journal.json")}
			}
		}
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ref := &crashJournal{inner: newInner(t)}
			want := drive(t, w, ref)
			for k := 1; k <= ref.saves; k++ {
				for _, before := range []bool{false, true} {
					j := &crashJournal{inner: newInner(t), crashAt: k, before: before}
					got := drive(t, w, j)
					wantCalls := want.Calls
					if j.rerun != "" {
						// The interrupted step ran once before the crash and
						// runs again on resume: at-least-once.
						wantCalls = rerunAt(want.Calls, j.rerun, got.Calls)
					}
					w := want
					w.Calls = wantCalls
					if diff := cmp.Diff(w, got); diff != "" {
						b, _ := json.MarshalIndent(w.Out, "", " ")
						t.Fatalf("crash %s save %d of %d: resumed run differs (-uninterrupted +resumed):\n%s\noutcome %s",
							map[bool]string{true: "before", false: "after"}[before], k, ref.saves, diff, b)
					}
				}
			}
		})
	}
}

// rerunAt returns calls with step id duplicated at its first occurrence
// that makes the result a prefix-compatible match of got (the step may
// run several times in one run when it sits in a nested sequence run
// twice, but ids include the Run task sequence step, so the first match
// of the duplicated pair in got decides).
func rerunAt(calls []string, id string, got []string) []string {
	for i := range got {
		if i+1 < len(got) && got[i] == id && got[i+1] == id {
			out := append([]string{}, calls[:i+1]...)
			return append(out, calls[i:]...)
		}
	}
	return append([]string{"expected a re-run of " + id}, calls...)
}
