package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one entry of the dispatch table: a top-level command or group.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

// commands is the dispatch table of top-level commands: the content
// commands first, then client authentication, runs and the boot image. Each
// group is one file with a run function of this shape.
func commands() []command {
	return []command{
		{"server", "run the Imprint server (the daemon)", runServer},
		{"content", "manage content items and their versions", runContent},
		{"stepdef", "list, show and import step definitions", runStepdef},
		{"ts", "import, export, validate and create task sequences", runTS},
		{"passcode", "set, generate, rotate and clear the boot passcode", runPasscode},
		{"sessions", "list and revoke agent sessions", runSessions},
		{"token", "create, list and revoke admin tokens for --server", runToken},
		{"user", "add, list, remove web-console accounts and set their passwords", runUser},
		{"security", "show and set the client authentication modes", runSecurity},
		{"audit", "list and verify the audit log", runAudit},
		{"runs", "list, show and follow task-sequence runs", runRuns},
		{"bootimage", "build the boot image and its ISO", runBootimage},
		{"multicast", "send one image to many machines at once", runMulticast},
		{"relay", "run a branch relay in front of a central server", runRelay},
		{"migrate", "copy a server's database to another (SQLite to PostgreSQL)", runMigrate},
		{"backup", "write a backup of the running server to a file", runBackup},
		{"restore", "restore a backup into a stopped server's or a fresh data directory", runRestore},
		{"doctor", "check the set-up and say what to fix", runDoctor},
		{"lab", "boot a QEMU machine against this server to try a task sequence", runLab},
	}
}

// app carries what every command needs: the injected streams and
// environment, and the global flags.
type app struct {
	stdin io.Reader
	// stdinLines buffers stdin for line reads (secrets piped in); see lines.
	stdinLines *bufio.Reader
	stdout     io.Writer
	stderr     io.Writer
	getenv     func(string) string
	now        func() time.Time
	// isTerminal reports whether w is an interactive terminal (progress bars).
	isTerminal func(w io.Writer) bool

	dataDir   optString // --data
	jsonOut   bool      // --json
	serverURL optString // --server: administer a remote server over HTTPS
	tokenFile optString // --token-file: the admin token for --server
	caFile    optString // --ca: the CA certificate that --server's certificate chains to
	admin     *client.Admin
}

// Main runs the imprint command line with args (without the program name)
// and returns the exit status: 0 on success, 1 on an error (with a one-line
// `imprint: …` message on stderr), 2 on a usage error (with a hint).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{
		stdin:      stdin,
		stdout:     stdout,
		stderr:     stderr,
		getenv:     os.Getenv,
		now:        time.Now,
		isTerminal: isTerminal,
	}
	return a.main(ctx, args)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) main(ctx context.Context, args []string) int {
	return a.report(a.dispatch(ctx, args))
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := a.flagSet("imprint", a.mainUsage())
	// Global flags before the command: stop at the first non-flag.
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("no command given", "run 'imprint help' for the list of commands")
	}
	name, rest := rest[0], rest[1:]
	if name == "help" || name == "-h" {
		fmt.Fprint(a.stdout, a.mainUsage())
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, a, rest)
		}
	}
	return usagef(fmt.Sprintf("unknown command %q", name), a.mainUsage())
}

// usageMain is the help text of the top level; the command list is added
// from the dispatch table.
const usageMain = `usage: imprint [--data DIR | --server URL [--ca FILE] [--token-file FILE]] [--json] COMMAND [ARGS]

Global flags (accepted before or after the command):
  --data DIR          data directory of the server (default $IMPRINT_DATA, else ./imprint-data);
                      commands reach the server through DIR/imprint.sock
  --server URL        administer the server at URL (https://HOST:7281) instead, with an
                      admin token (default $IMPRINT_SERVER)
  --ca FILE           CA certificate the server's certificate chains to: the server's
                      DIR/tls/ca.crt (default $IMPRINT_CA, else the system's roots)
  --token-file FILE   file holding the admin token (default: the token in $IMPRINT_TOKEN)
  --json              print results as JSON instead of tables
`

func (a *app) mainUsage() string {
	var b strings.Builder
	b.WriteString(usageMain)
	b.WriteString("\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	return b.String()
}

// report prints err and maps it to the exit status.
func (a *app) report(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintf(a.stderr, "imprint: %s\n", safeText(u.msg))
		if u.hint != "" {
			fmt.Fprintln(a.stderr, strings.TrimRight(u.hint, "\n"))
		}
		return exitUsage
	}
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.status
	}
	fmt.Fprintf(a.stderr, "imprint: %s\n", safe(oneLine(err.Error())))
	var de *deploy.Error
	if errors.As(err, &de) {
		for _, f := range de.Fields {
			fmt.Fprintf(a.stderr, "  %s\n", safe(oneLine(f.String())))
		}
	}
	return exitError
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// usageError is a mistake on the command line: exit status 2 and a hint.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }

func usagef(msg, hint string) error { return &usageError{msg: msg, hint: hint} }

// silentError ends a command with a status after it printed its own report
// (ts validate with errors).
type silentError struct{ status int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.status) }

// optString is a string flag that remembers whether it was set.
type optString struct {
	value string
	set   bool
}

func (o *optString) String() string { return o.value }
func (o *optString) Set(s string) error {
	o.value, o.set = s, true
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// flags is a command's FlagSet with its help text.
type flags struct {
	*flag.FlagSet
	usage string
}

// flagSet returns the flags of a command with the global flags bound to a,
// so that they are accepted after the command as well as before it. usage
// is printed for -h.
func (a *app) flagSet(name, usage string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // printed by parseFlags, only for -h
	fs.Var(&a.dataDir, "data", "data directory")
	fs.BoolVar(&a.jsonOut, "json", a.jsonOut, "print JSON")
	fs.Var(&a.serverURL, "server", "remote server URL")
	fs.Var(&a.tokenFile, "token-file", "admin token file")
	fs.Var(&a.caFile, "ca", "CA certificate file")
	return &flags{FlagSet: fs, usage: usage}
}

// parseFlags parses args up to the first non-flag: -h prints the usage
// (flag.ErrHelp, exit 0), a bad flag is a usage error.
func (a *app) parseFlags(fs *flags, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(a.stderr, fs.usage)
		return err
	}
	return usagef(err.Error(), fmt.Sprintf("run '%s -h' for usage", fs.Name()))
}

// parse parses args with fs, allowing flags and positional arguments in any
// order ("--" ends the flags), and checks the number of positional
// arguments is within [min, max] (max < 0: no limit).
func (a *app) parse(fs *flags, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := a.parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		// fs.Parse stops at "-" too; it is an argument (stdin).
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < min:
		return nil, usagef(fmt.Sprintf("%s: missing argument", fs.Name()), fmt.Sprintf("run '%s -h' for usage", fs.Name()))
	case max >= 0 && len(pos) > max:
		return nil, usagef(fmt.Sprintf("%s: unexpected argument %q", fs.Name(), pos[max]), fmt.Sprintf("run '%s -h' for usage", fs.Name()))
	}
	return pos, nil
}

// data is the data directory: --data, else $IMPRINT_DATA, else the default.
func (a *app) data() string {
	if a.dataDir.set {
		return a.dataDir.value
	}
	if v := a.getenv("IMPRINT_DATA"); v != "" {
		return v
	}
	return server.DefaultConfig().DataDir
}

// client returns the admin client: over HTTPS with an admin token when a
// server URL is given (--server or $IMPRINT_SERVER), else over the data
// directory's socket.
func (a *app) client() (*client.Admin, error) {
	if a.admin != nil {
		return a.admin, nil
	}
	url := a.remoteURL()
	if url == "" {
		a.admin = client.NewAdmin(server.SocketPath(a.data()))
		return a.admin, nil
	}
	token, err := a.adminToken()
	if err != nil {
		return nil, err
	}
	var caPEM []byte
	if ca := a.caPath(); ca != "" {
		if caPEM, err = os.ReadFile(ca); err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
	}
	if a.admin, err = client.NewRemoteAdmin(url, token, caPEM); err != nil {
		return nil, err
	}
	return a.admin, nil
}

// connect parses args like parse, then returns the admin client: the
// start of every command that talks to the server.
func (a *app) connect(fs *flags, args []string, min, max int) ([]string, *client.Admin, error) {
	pos, err := a.parse(fs, args, min, max)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.client()
	return pos, c, err
}

// remoteURL is --server, else $IMPRINT_SERVER: the server to administer
// over HTTPS instead of through the local socket.
func (a *app) remoteURL() string {
	if a.serverURL.set {
		return a.serverURL.value
	}
	return a.getenv("IMPRINT_SERVER")
}

// caPath is --ca, else $IMPRINT_CA.
func (a *app) caPath() string {
	if a.caFile.set {
		return a.caFile.value
	}
	return a.getenv("IMPRINT_CA")
}

// adminToken reads the admin token from --token-file, else $IMPRINT_TOKEN.
// There is no flag holding the token itself: other users of the machine
// can read a command line.
func (a *app) adminToken() (string, error) {
	if a.tokenFile.set {
		b, err := os.ReadFile(a.tokenFile.value)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("--token-file: %s is empty", a.tokenFile.value)
	}
	if tok := strings.TrimSpace(a.getenv("IMPRINT_TOKEN")); tok != "" {
		return tok, nil
	}
	return "", usagef("a remote server needs an admin token: set IMPRINT_TOKEN or pass --token-file FILE",
		"create one on the server with 'imprint token create NAME'")
}

// subcommand dispatches args[0] of a group to its function.
func subcommand(ctx context.Context, a *app, group string, args []string, subs map[string]func(context.Context, *app, []string) error, usage string) error {
	if len(args) == 0 {
		return usagef(fmt.Sprintf("imprint %s: no subcommand given", group), usage)
	}
	// Global flags may come between the group and the subcommand.
	fs := a.flagSet("imprint "+group, usage)
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usagef(fmt.Sprintf("imprint %s: no subcommand given", group), usage)
	}
	if args[0] == "help" {
		fmt.Fprint(a.stdout, usage)
		return nil
	}
	f, ok := subs[args[0]]
	if !ok {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		return usagef(fmt.Sprintf("imprint %s: unknown subcommand %q (one of: %s)", group, args[0], strings.Join(names, ", ")), usage)
	}
	return f(ctx, a, args[1:])
}
