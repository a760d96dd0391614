package main

// WINDOWS-STATE-DIR: the Windows default of --state. The wincont branch
// stages the run for `imprint-agent.exe resume` at this path and may
// export it from internal/agent; when both merge, keep one definition.

// windowsStateDir is where the continuation stages the run in Windows,
// and so the default --state there: %SystemDrive%\ProgramData\Imprint\state
// (beside the staged %SystemDrive%\ProgramData\Imprint\imprint-agent.exe).
func windowsStateDir(getenv func(string) string) string {
	drive := getenv("SystemDrive")
	if drive == "" {
		drive = "C:"
	}
	return drive + `\ProgramData\Imprint\state`
}
