// Package serverscript is the Run server-side script step: the server runs
// ScriptName from its scripts folder with the run's variables (secret ones
// are not sent) and the variables it returns are set in the sequence.
package serverscript

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// Server runs a script for the current run.
type Server interface {
	ServerScript(ctx context.Context, req client.ServerScriptRequest) (*client.ServerScriptResult, error)
}

// Step runs a server-side script.
type Step struct{ Server Server }

var _ sequence.Step = Step{}

// Run asks the server to run the script and merges the variables back.
func (s Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	if s.Server == nil {
		return sequence.Result{}, fmt.Errorf("run server-side script: not connected to a server")
	}
	name := strings.TrimSpace(env.Setting("ScriptName"))
	if name == "" {
		return sequence.Result{}, fmt.Errorf("run server-side script: option ScriptName is empty")
	}
	timeout, err := proc.Minutes(env.Setting("Timeout"))
	if err != nil {
		return sequence.Result{}, fmt.Errorf("run server-side script: Timeout: %w", err)
	}
	vars := make(map[string]string)
	for _, n := range env.Vars.Names() {
		if !env.Vars.IsSecret(n) {
			vars[n] = env.Vars.Value(n)
		}
	}
	req := client.ServerScriptRequest{ScriptName: name, Variables: vars, TimeoutSeconds: int(timeout / time.Second)}
	res, err := s.call(ctx, env, req, timeout)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("run server-side script %s: %w", name, err)
	}
	fmt.Fprint(env.Log, res.Output)
	out := sequence.Result{ExitCode: res.ExitCode, Output: tail(res.Output)}
	if res.ExitCode != 0 {
		return out, fmt.Errorf("server-side script %s exited with code %d", name, res.ExitCode)
	}
	for k, v := range res.Variables {
		if err := env.Vars.Set(k, v); err != nil {
			return out, fmt.Errorf("server-side script %s returned variable %q: %w", name, k, err)
		}
		fmt.Fprintf(env.Log, "Server-side script set %s\n", k)
	}
	return out, nil
}

// call asks the server to run the script. While the server already runs
// as many scripts as it may (an answer with Retry-After) it waits as told
// and asks again, within the step's timeout (0: for ever).
func (s Step) call(ctx context.Context, env *sequence.Env, req client.ServerScriptRequest, timeout time.Duration) (*client.ServerScriptResult, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		res, err := s.Server.ServerScript(ctx, req)
		wait, retry := client.RetryAfter(err)
		if !retry {
			return res, err
		}
		wait = min(max(wait, time.Second), time.Minute)
		if !deadline.IsZero() && time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("the server stayed busy for the step's %s: %w", timeout, err)
		}
		fmt.Fprintf(env.Log, "The server is busy (%v); asking again in %s\n", err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func tail(s string) string {
	if len(s) > proc.TailSize {
		return strings.ToValidUTF8(s[len(s)-proc.TailSize:], "")
	}
	return s
}
