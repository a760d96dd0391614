package proc

import "syscall"

// Shell returns the program and arguments that run a command line; use
// ShellCmd, whose CmdLine keeps the line's quotes intact.
func Shell(commandLine string) (string, []string) {
	c := ShellCmd(commandLine)
	return c.Path, c.Args
}

// setCmdLine hands line to CreateProcess as is.
func setCmdLine(attr **syscall.SysProcAttr, line string) {
	if line == "" {
		return
	}
	if *attr == nil {
		*attr = &syscall.SysProcAttr{}
	}
	(*attr).CmdLine = line
}
