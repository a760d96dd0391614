package pe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reboot flushes the filesystems and restarts the machine. It returns
// only on failure (for example when not running as root).
func Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// PowerOff flushes the filesystems and powers the machine off. It returns
// only on failure.
func PowerOff() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

// ShellPath is the diagnostics shell (busybox in the boot image).
const ShellPath = "/bin/sh"

// Shell runs /bin/sh on console (a device such as /dev/console or
// /dev/ttyS0) for the diagnostics menu entry and returns when it exits, so
// that the menu can come back. Without /bin/sh in the image it writes a
// message to the console and returns an error saying so.
func Shell(console string) error {
	tty, err := os.OpenFile(console, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("shell: open console: %w", err)
	}
	defer tty.Close()
	if _, err := os.Stat(ShellPath); err != nil {
		fmt.Fprintf(tty, "\r\nNo shell in this boot image (%s is missing).\r\n", ShellPath)
		return fmt.Errorf("shell: %w", err)
	}
	fmt.Fprintf(tty, "\r\nDiagnostics shell; type exit to return to Imprint.\r\n")
	run := func(ctty bool) error {
		cmd := exec.Command(ShellPath, "-l")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.Env = append(os.Environ(), "PS1=imprint# ", "TERM=linux", "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
		// A session of its own with the console as controlling terminal
		// gives the shell job control and ^C.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: ctty, Ctty: 0}
		return cmd.Run()
	}
	err = run(true)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		// Some consoles refuse to become a controlling terminal.
		err = run(false)
	}
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("shell: %w", err)
	}
	return nil
}
