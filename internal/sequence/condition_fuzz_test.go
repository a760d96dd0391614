package sequence

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseCondition feeds any step condition (it arrives in imported and
// uploaded task sequences) to the parser. Blank means no condition, text
// not starting with "{" is PowerShell kept as written, and a JSON query is
// accepted only when every group is and/or, no deeper than the limit,
// and every comparison has a field and a known operator. An accepted query
// encodes back to a condition that parses to the same query, and
// evaluates the same way.
// Seeds: testdata/fuzz/FuzzParseCondition.
func FuzzParseCondition(f *testing.F) {
	vars := map[string]string{"OSDComputerName": "PC-01", "Count": "10", "Model": "Latitude 7440"}
	get := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCondition(s)
		trimmed := strings.TrimSpace(s)
		switch {
		case err != nil:
			if !strings.HasPrefix(trimmed, "{") {
				t.Fatalf("ParseCondition(%q): %v; only JSON queries can be refused", s, err)
			}
			return
		case trimmed == "":
			if c != nil {
				t.Fatalf("blank condition parsed as %+v", c)
			}
			return
		case c == nil:
			t.Fatalf("ParseCondition(%q) = nil", s)
		case !strings.HasPrefix(trimmed, "{"):
			if c.Query != nil || c.PowerShell != trimmed {
				t.Fatalf("ParseCondition(%q) = %+v, want the PowerShell text kept", s, c)
			}
			return
		case c.Query == nil || c.PowerShell != "":
			t.Fatalf("ParseCondition(%q) = %+v, want a query", s, c)
		}
		checkQuery(t, c.Query, 0)
		b, err := json.Marshal(c.Query)
		if err != nil {
			t.Fatalf("encode %+v: %v", c.Query, err)
		}
		c2, err := ParseCondition(string(b))
		if err != nil {
			t.Fatalf("encoded query %s refused: %v", b, err)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("query changed on the way back (-first +second):\n%s", diff)
		}
		if c.Query.Eval(get) != c2.Query.Eval(get) {
			t.Fatalf("query %s evaluates differently once re-encoded", b)
		}
	})
}

func checkQuery(t *testing.T, q *Query, depth int) {
	t.Helper()
	if depth > maxConditionDepth {
		t.Fatalf("accepted a query nested deeper than %d", maxConditionDepth)
	}
	if op := strings.ToLower(q.Operator); op != "and" && op != "or" {
		t.Fatalf("accepted group operator %q", q.Operator)
	}
	for _, it := range q.Items {
		if it.Group != nil {
			checkQuery(t, it.Group, depth+1)
			continue
		}
		if strings.TrimSpace(it.Field) == "" || !comparisonOps[strings.ToLower(it.Operator)] {
			t.Fatalf("accepted comparison %+v", it)
		}
	}
}
