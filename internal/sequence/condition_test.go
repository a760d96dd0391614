package sequence_test

import (
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/sequence"
)

// TestConditionDepth: a query may nest 32 groups below the top one. Far
// deeper text is refused before it is decoded, as decoding re-reads each
// group's subtree at every level (3,000 groups in 87 KB took 5 s).
func TestConditionDepth(t *testing.T) {
	nested := func(groups int, leaf string) string {
		return strings.Repeat(`{"operator":"and","items":[`, groups) + leaf + strings.Repeat("]}", groups)
	}
	cmp := `{"field":"Make","operator":"equals","value":"Dell"}`
	brackets := `{"field":"Make","operator":"equals","value":"` + strings.Repeat("[{", 200) + `"}`
	tests := []struct {
		name, cond, wantErr string
	}{
		{"33 groups", nested(33, cmp), ""},
		{"brackets in a string do not count", nested(2, brackets), ""},
		{"34 groups", nested(34, cmp), "condition nests deeper than 32 groups"},
		{"3,000 groups", nested(3000, cmp), "condition is nested too deeply (more than 32 groups)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sequence.ParseCondition(tt.cond)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("error %q, want %q", got, tt.wantErr)
			}
		})
	}
}
