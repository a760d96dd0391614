// Package cli is the `imprint` command line: `imprint server` runs the
// daemon, and the admin commands (content, stepdef, ts, …) talk to a running
// server over its Unix socket through internal/client. Each command group
// lives in its own file with its own flag.FlagSet; Main is the only entry
// point and returns the exit status instead of exiting.
package cli
