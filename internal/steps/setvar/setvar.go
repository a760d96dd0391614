// Package setvar is the Set variable step: VariableName = VariableValue
// (already %VAR%-expanded by the engine).
package setvar

import (
	"context"
	"fmt"
	"strings"

	"github.com/imprint-osd/imprint/internal/sequence"
)

// Step sets a task-sequence variable.
type Step struct{}

var _ sequence.Step = Step{}

// Run sets the variable; read-only (_) names are refused.
func (Step) Run(_ context.Context, env *sequence.Env) (sequence.Result, error) {
	name := strings.TrimSpace(env.Setting("VariableName"))
	if name == "" {
		return sequence.Result{}, fmt.Errorf("set variable: option VariableName is empty")
	}
	if err := env.Vars.Set(name, env.Setting("VariableValue")); err != nil {
		return sequence.Result{}, fmt.Errorf("set variable: %w", err)
	}
	fmt.Fprintf(env.Log, "Set variable %s\n", name)
	return sequence.Result{}, nil
}
