package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/sequence"
)

// SystemdResume installs and enables the resume unit in UnitDir (default
// /etc/systemd/system) with systemctl.
type SystemdResume struct {
	UnitDir   string
	Systemctl func(ctx context.Context, args ...string) error
}

func (s SystemdResume) dir() string {
	if s.UnitDir != "" {
		return s.UnitDir
	}
	return "/etc/systemd/system"
}

func (s SystemdResume) systemctl(ctx context.Context, args ...string) error {
	if s.Systemctl != nil {
		return s.Systemctl(ctx, args...)
	}
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %v: %w: %s", args, err, out)
	}
	return nil
}

// Install writes and enables the unit.
func (s SystemdResume) Install(ctx context.Context, exe, stateDir string) error {
	path := filepath.Join(s.dir(), ResumeUnitName)
	if err := os.WriteFile(path, []byte(ResumeUnit(exe, stateDir)), 0o644); err != nil {
		return fmt.Errorf("install resume unit: %w", err)
	}
	if err := s.systemctl(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("install resume unit: %w", err)
	}
	if err := s.systemctl(ctx, "enable", ResumeUnitName); err != nil {
		return fmt.Errorf("install resume unit: %w", err)
	}
	return nil
}

// Remove disables and deletes the unit; a missing unit is not an error.
func (s SystemdResume) Remove(ctx context.Context) error {
	path := filepath.Join(s.dir(), ResumeUnitName)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	_ = s.systemctl(ctx, "disable", ResumeUnitName)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove resume unit: %w", err)
	}
	return nil
}

// PlatformResume is how the agent restarts after a reboot on this OS:
// the systemd unit.
func PlatformResume() Resumer { return SystemdResume{} }

// SystemPower reboots or shuts the machine down ("reboot", "shutdown");
// logoff and reseal are Windows' (ErrPowerUnsupported).
func SystemPower(ctx context.Context, action string) error {
	prog, args, err := PowerCommand("linux", action, "")
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w: %s", prog, args, err, out)
	}
	return nil
}

// PlatformPowerShell evaluates PowerShell conditions: nil, the engine's
// default (pwsh).
func PlatformPowerShell() func(ctx context.Context, expr string, vars *sequence.Vars) (bool, error) {
	return nil
}
