//go:build !linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
)

// SystemdResume is Linux-only; elsewhere it fails clearly.
type SystemdResume struct {
	UnitDir   string
	Systemctl func(ctx context.Context, args ...string) error
}

var errNoResume = errors.New("resuming after a reboot is only implemented on Linux with systemd")

// Install fails: no resume mechanism on this OS yet.
func (SystemdResume) Install(context.Context, string, string) error { return errNoResume }

// Remove does nothing.
func (SystemdResume) Remove(context.Context) error { return nil }

// SystemPower reboots or shuts the machine down ("reboot", "shutdown").
func SystemPower(ctx context.Context, action string) error {
	if runtime.GOOS != "windows" {
		return fmt.Errorf("power action %q is not supported on %s", action, runtime.GOOS)
	}
	flag := map[string]string{"reboot": "/r", "shutdown": "/s"}[action]
	if flag == "" {
		return fmt.Errorf("unknown power action %q", action)
	}
	if out, err := exec.CommandContext(ctx, "shutdown", flag, "/t", "0").CombinedOutput(); err != nil {
		return fmt.Errorf("shutdown %s: %w: %s", flag, err, out)
	}
	return nil
}
