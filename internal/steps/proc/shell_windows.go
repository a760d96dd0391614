package proc

// Shell returns the program and arguments that run a command line.
func Shell(commandLine string) (string, []string) { return "cmd.exe", []string{"/c", commandLine} }
