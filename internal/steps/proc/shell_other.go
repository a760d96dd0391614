//go:build !windows

package proc

import "syscall"

// Shell returns the program and arguments that run a command line.
func Shell(commandLine string) (string, []string) { return "/bin/sh", []string{"-c", commandLine} }

// setCmdLine does nothing: only Windows passes a command line as text.
func setCmdLine(**syscall.SysProcAttr, string) {}
