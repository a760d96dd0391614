//go:build unix

package proc

import (
	"os/exec"
	"syscall"
)

// killGroup runs the process in its own process group and, on
// cancellation, kills the whole group so children holding the output pipe
// do not outlive the step.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
