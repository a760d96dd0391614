package sequence

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Condition is a parsed step condition. A nil *Condition always holds.
// Exactly one of Query and PowerShell is set.
type Condition struct {
	Query      *Query
	PowerShell string
}

// Query is DeployR's JSON query-builder form: a group of items joined by
// "and" or "or"; each item is either a comparison or a nested group.
type Query struct {
	Operator string      `json:"operator"` // and | or
	Items    []QueryItem `json:"items"`
}

// QueryItem is a comparison (Field, Operator, Value) or a nested Group.
type QueryItem struct {
	Field    string
	Operator string
	Value    string
	Group    *Query
}

// Comparison operators of the query form. Matching is case-insensitive.
var comparisonOps = map[string]bool{
	"equals": true, "notequals": true, "contains": true, "notcontains": true,
	"startswith": true, "endswith": true, "greaterthan": true, "lessthan": true,
	"exists": true, "notexists": true,
}

// UnmarshalJSON accepts either {"field","operator","value"} or a nested
// {"operator":"and|or","items":[…]}.
func (it *QueryItem) UnmarshalJSON(b []byte) error {
	var raw struct {
		Field    *string          `json:"field"`
		Operator string           `json:"operator"`
		Value    *json.RawMessage `json:"value"`
		Items    *[]QueryItem     `json:"items"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.Items != nil {
		it.Group = &Query{Operator: raw.Operator, Items: *raw.Items}
		return nil
	}
	if raw.Field == nil {
		return fmt.Errorf("condition item has neither field nor items")
	}
	it.Field, it.Operator = *raw.Field, raw.Operator
	if raw.Value != nil {
		var s string
		if err := json.Unmarshal(*raw.Value, &s); err == nil {
			it.Value = s
		} else {
			// Numbers and booleans are compared as their JSON text.
			it.Value = strings.TrimSpace(string(*raw.Value))
			if it.Value == "null" {
				it.Value = ""
			}
		}
	}
	return nil
}

// MarshalJSON writes the item back in DeployR's form.
func (it QueryItem) MarshalJSON() ([]byte, error) {
	if it.Group != nil {
		return json.Marshal(it.Group)
	}
	return json.Marshal(struct {
		Field    string `json:"field"`
		Operator string `json:"operator"`
		Value    string `json:"value"`
	}{it.Field, it.Operator, it.Value})
}

// ParseCondition parses a step's condition string. Empty (or only white
// space) means no condition and returns nil. A string that starts with "{"
// must be a valid JSON query; anything else is a PowerShell expression.
func ParseCondition(s string) (*Condition, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "{") {
		return &Condition{PowerShell: s}, nil
	}
	if jsonDeeperThan(s, maxConditionJSONDepth) {
		return nil, fmt.Errorf("condition is nested too deeply (more than %d groups)", maxConditionDepth)
	}
	var q Query
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("condition is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("condition has trailing data after the JSON query")
	}
	if err := q.validate(0); err != nil {
		return nil, err
	}
	return &Condition{Query: &q}, nil
}

const maxConditionDepth = 32

// maxConditionJSONDepth bounds the nesting of a JSON query before it is
// decoded: QueryItem.UnmarshalJSON re-reads each group's subtree at every
// level, so 3,000 nested groups in 87 KB took 5 s to refuse. A group is an
// object and its items array; the rest leaves room for a comparison and
// a structured value.
const maxConditionJSONDepth = 2*(maxConditionDepth+1) + 6

// jsonDeeperThan reports whether the objects and arrays of the JSON text
// s nest deeper than limit (brackets in strings do not count; malformed
// text is left to the decoder).
func jsonDeeperThan(s string, limit int) bool {
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

func (q *Query) validate(depth int) error {
	if depth > maxConditionDepth {
		return fmt.Errorf("condition nests deeper than %d groups", maxConditionDepth)
	}
	switch strings.ToLower(q.Operator) {
	case "and", "or":
	default:
		return fmt.Errorf("condition group operator %q is not \"and\" or \"or\"", q.Operator)
	}
	for i, it := range q.Items {
		if it.Group != nil {
			if err := it.Group.validate(depth + 1); err != nil {
				return err
			}
			continue
		}
		if strings.TrimSpace(it.Field) == "" {
			return fmt.Errorf("condition item %d has an empty field", i+1)
		}
		if !comparisonOps[strings.ToLower(it.Operator)] {
			return fmt.Errorf("condition item %d (%s) has unknown operator %q", i+1, it.Field, it.Operator)
		}
	}
	return nil
}

// Lookup returns a variable's value and whether it is set.
type Lookup func(name string) (string, bool)

// Eval evaluates the query against variables. An empty group holds.
func (q *Query) Eval(get Lookup) bool {
	or := strings.EqualFold(q.Operator, "or")
	if len(q.Items) == 0 {
		return true
	}
	for _, it := range q.Items {
		v := it.eval(get)
		if or && v {
			return true
		}
		if !or && !v {
			return false
		}
	}
	return !or
}

func (it *QueryItem) eval(get Lookup) bool {
	if it.Group != nil {
		return it.Group.Eval(get)
	}
	val, ok := get(it.Field)
	a, b := strings.ToLower(val), strings.ToLower(it.Value)
	switch strings.ToLower(it.Operator) {
	case "exists":
		return ok
	case "notexists":
		return !ok
	case "equals":
		if x, y, num := numbers(val, it.Value); num {
			return x == y
		}
		return a == b
	case "notequals":
		if x, y, num := numbers(val, it.Value); num {
			return x != y
		}
		return a != b
	case "contains":
		return strings.Contains(a, b)
	case "notcontains":
		return !strings.Contains(a, b)
	case "startswith":
		return strings.HasPrefix(a, b)
	case "endswith":
		return strings.HasSuffix(a, b)
	case "greaterthan":
		if x, y, num := numbers(val, it.Value); num {
			return x > y
		}
		return a > b
	case "lessthan":
		if x, y, num := numbers(val, it.Value); num {
			return x < y
		}
		return a < b
	}
	return false
}

func numbers(a, b string) (float64, float64, bool) {
	x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	return x, y, err1 == nil && err2 == nil
}
