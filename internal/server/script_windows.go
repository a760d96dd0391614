package server

import "os/exec"

// ownProcessGroup does nothing on Windows, where the server does not run in
// production; it exists so the package builds and vets there.
func ownProcessGroup(cmd *exec.Cmd) {}

// killProcessGroup kills the script itself; its children are not tracked.
func killProcessGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
