package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/powershell"
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

// PlatformPowerShell evaluates PowerShell conditions on Windows: with
// pwsh when it is installed (nil: the engine's default), else with
// Windows PowerShell 5.1, which every Windows has.
func PlatformPowerShell() func(ctx context.Context, expr string, vars *sequence.Vars) (bool, error) {
	if _, err := exec.LookPath("pwsh"); err == nil {
		return nil
	}
	root := os.Getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	return sequence.PowerShellEvaluator(powershell.WindowsPowerShell(root))
}
