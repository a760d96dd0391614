package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/windows"
)

// RemoveAfterExit starts, detached, the cmd.exe of SelfDeleteCommand: it
// outlives the agent and deletes dir once the agent's .exe is no longer
// running.
func RemoveAfterExit(dir string) error {
	line, err := SelfDeleteCommand(dir)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(os.Getenv("SystemRoot"), "System32", "cmd.exe"))
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: line, HideWindow: true,
		CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
	cmd.Dir = os.Getenv("SystemRoot") // not dir: a process's working directory cannot be removed
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// defaultCleaner is the Windows continuation's cleanup when the agent
// runs from the state directory the boot image staged.
func defaultCleaner(stateDir string) Cleaner {
	root := os.Getenv("SystemDrive") + `\`
	staged := filepath.Join(root, filepath.FromSlash(WindowsStateDir))
	if abs, err := filepath.Abs(stateDir); err == nil && strings.EqualFold(filepath.Clean(abs), staged) {
		return WindowsCleanup{Root: root}
	}
	return nil
}
