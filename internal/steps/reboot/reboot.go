// Package reboot is the Reboot step. It shows RebootMessage, waits
// RebootDelay seconds and asks the engine to stop; the agent then arranges
// to resume after boot (see internal/agent) and restarts the machine.
// RebootRequested "HD" (the installed OS) is supported; "WinPE" (into the
// boot image) is not yet supported from an installed OS and fails clearly.
package reboot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/sequence"
)

// Step requests a reboot.
type Step struct {
	// Sleep waits for the delay; nil uses a timer. Tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ sequence.Step = Step{}

// Run returns a result asking for a reboot.
func (s Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	target := strings.TrimSpace(env.Setting("RebootRequested"))
	if target != "" && !strings.EqualFold(target, "HD") {
		return sequence.Result{}, fmt.Errorf("reboot into %q is not supported by imprint-agent in an installed OS; use HD", target)
	}
	if msg := strings.TrimSpace(env.Setting("RebootMessage")); msg != "" {
		fmt.Fprintln(env.Log, msg)
	}
	if d := strings.TrimSpace(env.Setting("RebootDelay")); d != "" && d != "0" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return sequence.Result{}, fmt.Errorf("reboot: RebootDelay %q is not a number of seconds", d)
		}
		sleep := s.Sleep
		if sleep == nil {
			sleep = timerSleep
		}
		if err := sleep(ctx, time.Duration(n)*time.Second); err != nil {
			return sequence.Result{}, err
		}
	}
	fmt.Fprintln(env.Log, "Restarting the machine; the sequence resumes after boot.")
	return sequence.Result{RebootRequested: true}, nil
}

func timerSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
