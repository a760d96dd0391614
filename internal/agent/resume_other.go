//go:build !linux && !windows

package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/imprint-osd/imprint/internal/sequence"
)

// SystemdResume is Linux-only; elsewhere it fails clearly.
type SystemdResume struct {
	UnitDir   string
	Systemctl func(ctx context.Context, args ...string) error
}

var errNoResume = errors.New("resuming after a reboot is only implemented on Linux with systemd and on Windows")

// Install fails: no resume mechanism on this OS yet.
func (SystemdResume) Install(context.Context, string, string) error { return errNoResume }

// Remove does nothing.
func (SystemdResume) Remove(context.Context) error { return nil }

// PlatformResume is how the agent restarts after a reboot on this OS:
// not at all (Install fails clearly).
func PlatformResume() Resumer { return SystemdResume{} }

// SystemPower fails: no power actions on this OS.
func SystemPower(_ context.Context, action string) error {
	return fmt.Errorf("power action %q on %s: %w", action, runtime.GOOS, ErrPowerUnsupported)
}

// PlatformPowerShell evaluates PowerShell conditions: nil, the engine's
// default (pwsh).
func PlatformPowerShell() func(ctx context.Context, expr string, vars *sequence.Vars) (bool, error) {
	return nil
}
