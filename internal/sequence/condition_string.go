package sequence

import (
	"fmt"
	"strings"
)

// String renders a condition readably: `OSVERSION notEquals "WinPE" and
// (…)`, or "PowerShell: …". A nil condition is "".
func (c *Condition) String() string {
	switch {
	case c == nil:
		return ""
	case c.Query != nil:
		return queryString(c.Query, false)
	}
	return "PowerShell: " + c.PowerShell
}

func queryString(q *Query, nested bool) string {
	parts := make([]string, 0, len(q.Items))
	for _, it := range q.Items {
		if it.Group != nil {
			parts = append(parts, queryString(it.Group, true))
			continue
		}
		op := strings.ToLower(it.Operator)
		if op == "exists" || op == "notexists" {
			parts = append(parts, it.Field+" "+it.Operator)
		} else {
			parts = append(parts, fmt.Sprintf("%s %s %q", it.Field, it.Operator, it.Value))
		}
	}
	s := strings.Join(parts, " "+strings.ToLower(q.Operator)+" ")
	if nested && len(parts) > 1 {
		s = "(" + s + ")"
	}
	return s
}
