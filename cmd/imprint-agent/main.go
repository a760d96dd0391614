// Command imprint-agent runs task sequences on a machine, in Imprint's boot
// image or in an installed OS:
//
//	imprint-agent run --server URL --ca FILE [--ca-sha256 HEX] [--cert FILE --key FILE] [--ts ID|NAME] [--var NAME=VALUE]… [--state DIR] [--boot-image] [--dry-run]
//	imprint-agent resume [--state DIR]   (default /var/lib/imprint-agent; %SystemDrive%\ProgramData\Imprint\state on Windows)
//	imprint-agent pe
//	imprint-agent var set NAME VALUE
//	imprint-agent version
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/steps/script"
)

// version is set with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if os.Getpid() == 1 {
		initMain() // never returns: PID 1 must not exit
	}
	st := &stopper{}
	ctx, stop := st.watch(context.Background(), os.Stderr)
	err := run(withStopper(ctx, st), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errRebootRequested) {
		fmt.Fprintln(os.Stderr, "imprint-agent: the sequence asked for a reboot (--power exit): restart the machine, or run `imprint-agent resume` to continue")
		os.Exit(exitReboot)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imprint-agent:", err)
		os.Exit(1)
	}
}

// exitReboot is the exit status of `run` and `resume` with --power exit
// when the sequence asks for a reboot.
const exitReboot = 3

var errRebootRequested = errors.New("reboot requested")

// powerFlag selects what the agent does where the sequence reboots or
// shuts down: "system" does it, "exit" (for labs and tests on a machine
// that must not restart) journals and exits with status 3 instead, and
// installs nothing to resume at boot — run `imprint-agent resume` by hand.
func powerFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("IMPRINT_AGENT_POWER")
	if def == "" {
		def = "system"
	}
	return fs.String("power", def, "system: reboot and shut down for real; exit: stop with status 3 where the sequence would reboot (env IMPRINT_AGENT_POWER)")
}

func applyPower(a *agent.Agent, mode string) error {
	switch mode {
	case "system":
		return nil
	case "exit":
		a.Resume = nil
		a.Power = func(ctx context.Context, action string) error {
			if action == "reboot" {
				return errRebootRequested
			}
			return nil
		}
		return nil
	}
	return fmt.Errorf("--power %q: want system or exit", mode)
}

const usage = `usage:
  imprint-agent run --server URL (--ca FILE | --ca-sha256 HEX) [--cert FILE --key FILE] [--ts ID|NAME] [--var NAME=VALUE]... [--state DIR] [--boot-image] [--dry-run] [--power system|exit]
  imprint-agent resume [--state DIR] [--power system|exit]
  imprint-agent pe      (the boot image's /init; also when started as PID 1)
  imprint-agent var set NAME VALUE
  imprint-agent version`

func defaultStateDir() string {
	if runtime.GOOS == "windows" {
		return windowsStateDir(os.Getenv)
	}
	return "/var/lib/imprint-agent"
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stdin, stdout)
	case "pe":
		return peCmd(ctx, args[1:])
	case "resume":
		return resumeCmd(ctx, args[1:], stdin, stdout)
	case "var":
		if len(args) != 4 || args[1] != "set" {
			return errors.New("usage: imprint-agent var set NAME VALUE")
		}
		return script.AppendVar(os.Getenv(script.EnvVarsFile), args[2], args[3])
	case "version":
		fmt.Fprintf(stdout, "imprint-agent %s %s/%s\n", version, runtime.GOOS, runtime.GOARCH)
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

type varsFlag map[string]string

func (v varsFlag) String() string { return "" }
func (v varsFlag) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("--var %q: want NAME=VALUE", s)
	}
	v[strings.TrimSpace(name)] = val
	return nil
}

type stopperKey struct{}

func withStopper(ctx context.Context, s *stopper) context.Context {
	return context.WithValue(ctx, stopperKey{}, s)
}

func stoppingFunc(ctx context.Context) func() bool {
	if s, ok := ctx.Value(stopperKey{}).(*stopper); ok {
		return s.Stopping
	}
	return nil
}

func newAgent(ctx context.Context, c *client.Machine, stdin io.Reader, stdout io.Writer, stateDir string) *agent.Agent {
	exe, _ := os.Executable()
	return &agent.Agent{
		Stopping:   stoppingFunc(ctx),
		Client:     c,
		Console:    agent.NewConsole(stdin, stdout),
		StateDir:   stateDir,
		Power:      agent.SystemPower,
		Resume:     agent.PlatformResume(),
		PowerShell: agent.PlatformPowerShell(),
		Executable: exe,
	}
}

// clientCert loads the client certificate for certificate authentication;
// both files or neither.
func clientCert(certFile, keyFile string) ([]client.MachineOption, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, errors.New("--key needs --cert (the client certificate, PEM)")
	case keyFile == "":
		return nil, errors.New("--cert needs --key (the certificate's private key, PEM)")
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cert %s --key %s: %w", certFile, keyFile, err)
	}
	return []client.MachineOption{client.WithClientCert(c)}, nil
}

func dial(server, caFile, caSHA, certFile, keyFile string) (*client.Machine, agent.State, error) {
	st := agent.State{Server: server, CertFile: certFile, KeyFile: keyFile}
	opts, err := clientCert(certFile, keyFile)
	if err != nil {
		return nil, st, err
	}
	switch {
	case server == "":
		return nil, st, errors.New("--server is required (e.g. https://imprint.example:7281)")
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, st, fmt.Errorf("--ca: %w", err)
		}
		st.CAPEM = string(pem)
		c, err := client.NewMachine(server, pem, opts...)
		return c, st, err
	case caSHA != "":
		st.CASHA256 = caSHA
		c, err := client.NewMachinePinned(server, caSHA, opts...)
		return c, st, err
	}
	return nil, st, errors.New("--ca FILE or --ca-sha256 HEX is required: the agent trusts only the Imprint server's CA")
}

func runCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stdout)
	server := fs.String("server", os.Getenv("IMPRINT_SERVER"), "server URL, e.g. https://imprint:7281 (env IMPRINT_SERVER)")
	caFile := fs.String("ca", os.Getenv("IMPRINT_CA"), "PEM file of the server's CA (env IMPRINT_CA)")
	caSHA := fs.String("ca-sha256", os.Getenv("IMPRINT_CA_SHA256"), "SHA-256 fingerprint of the server's CA, instead of --ca (env IMPRINT_CA_SHA256)")
	certFile := fs.String("cert", os.Getenv("IMPRINT_CERT"), "client certificate (PEM) for certificate authentication, with --key (env IMPRINT_CERT)")
	keyFile := fs.String("key", os.Getenv("IMPRINT_KEY"), "private key (PEM) of --cert (env IMPRINT_KEY)")
	ts := fs.String("ts", "", "task sequence id (id:version) or name; skips the picker")
	stateDir := fs.String("state", defaultStateDir(), "state directory (journal, content cache, logs)")
	bootImage := fs.Bool("boot-image", false, "running in Imprint's boot image (OSVERSION=ImprintPE, boot-image auth methods)")
	dryRun := fs.Bool("dry-run", false, "print the plan with every condition evaluated and every step that CANNOT RUN here, with the reason; run nothing")
	power := powerFlag(fs)
	vars := varsFlag{}
	fs.Var(vars, "var", "NAME=VALUE variable, repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	c, st, err := dial(*server, *caFile, *caSHA, *certFile, *keyFile)
	if err != nil {
		return err
	}
	a := newAgent(ctx, c, stdin, stdout, *stateDir)
	a.Vars, a.TS, a.BootImage = vars, *ts, *bootImage
	if err := applyPower(a, *power); err != nil {
		return err
	}
	return a.Run(ctx, st, *dryRun)
}

func resumeCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	fs.SetOutput(stdout)
	stateDir := fs.String("state", defaultStateDir(), "state directory of the run to resume")
	power := powerFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := agent.LoadState(*stateDir)
	if err != nil {
		return err
	}
	opts, err := clientCert(st.CertFile, st.KeyFile)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var c *client.Machine
	if st.CAPEM != "" {
		c, err = client.NewMachine(st.Server, []byte(st.CAPEM), opts...)
	} else {
		c, err = client.NewMachinePinned(st.Server, st.CASHA256, opts...)
	}
	if err != nil {
		return err
	}
	a := newAgent(ctx, c, stdin, stdout, *stateDir)
	if err := applyPower(a, *power); err != nil {
		return err
	}
	return a.ResumeRun(ctx)
}
