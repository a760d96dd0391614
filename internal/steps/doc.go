// Package steps holds, one package per kind, the built-in task-sequence
// steps that imprint-agent runs in an installed OS: setvar (Set variable),
// cmdline (Run command line), powershell (Run PowerShell script), app
// (Install application and Install multiple applications), reboot,
// serverscript (Run server-side script) and script (custom step
// definitions whose content holds a script). proc is their shared process
// runner. Each implements sequence.Step; agent.DefaultRegistry wires them.
package steps
