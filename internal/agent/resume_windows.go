package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// PlatformResume is how the agent restarts after a reboot on Windows: the
// scheduled task (schtask.go).
func PlatformResume() Resumer { return ScheduledTaskResume{} }

// SystemPower carries out a power action with the programs PowerCommand
// names: shutdown.exe /r, /s, /l, or sysprep for reseal.
func SystemPower(ctx context.Context, action string) error {
	prog, args, err := PowerCommand("windows", action, os.Getenv("SystemRoot"))
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w: %s", prog, args, err, out)
	}
	return nil
}
