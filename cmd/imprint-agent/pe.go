package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/pe"
)

// Boot-image paths.
const (
	peStateDir = "/run/imprint" // tmpfs: nothing of a run survives a restart of the boot image
	peModules  = "/lib/modules"
)

// initMain is the boot image's /init. PID 1 must never exit (the kernel
// panics when init returns), so every path ends in power off, and a panic
// is printed and then powers off too.
func initMain() {
	var con io.ReadWriter = stdio{}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(con, "\r\nimprint-agent: panic: %v\r\n%s\r\n", r, debug.Stack())
			fmt.Fprintf(con, "%s panic: %v\n", agent.MarkerFailed, r)
		}
		halt(con)
	}()
	st := &stopper{}
	ctx, stop := st.watch(context.Background(), os.Stderr)
	defer stop()
	err := bootImage(withStopper(ctx, st), &con)
	if err != nil && !errors.Is(err, agent.ErrRunFailed) {
		// The run never got to report its end: say so the same way.
		fmt.Fprintf(con, "\n%s %s\n", agent.MarkerFailed, strings.Join(strings.Fields(err.Error()), " "))
		wait := failWait(os.Getenv("IMPRINT_PROGRESS_TIMEOUT"))
		if wait > 0 {
			fmt.Fprintf(con, "Powering off in %d seconds.\n", int(wait/time.Second))
			time.Sleep(wait)
		}
	}
}

// halt powers off; if even that fails, it blocks forever rather than let
// PID 1 return.
func halt(con io.Writer) {
	if err := pe.PowerOff(); err != nil {
		fmt.Fprintf(con, "imprint-agent: %v\n", err)
	}
	select {}
}

// failWait parses a ProgressTimeout in seconds; "" is the default.
func failWait(s string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	return agent.DefaultBootImageFailWait * time.Second
}

// peCmd runs the boot-image sequence without being PID 1 (for a shell in
// the boot image, or an initramfs whose /init is a script).
func peCmd(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("pe: unexpected argument %q", args[0])
	}
	var con io.ReadWriter = stdio{}
	return bootImage(ctx, &con)
}

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

// bootImage brings the boot image up and runs the agent. *con is replaced
// by /dev/console once it can be opened.
func bootImage(ctx context.Context, con *io.ReadWriter) error {
	// Mounted again once the modules are loaded: efivarfs is a module in
	// Debian's kernel. Only what still fails then is reported.
	earlyErr := pe.MountEarly()
	if c, err := pe.OpenConsole(); err == nil {
		*con = c
	} else {
		fmt.Fprintf(*con, "imprint-agent: %v; using standard input and output\n", err)
	}
	out := *con
	if list, err := os.ReadFile(pe.ModuleListPath); err == nil {
		root := filepath.Join(peModules, kernelRelease())
		loaded, err := pe.LoadModules(root, string(list))
		fmt.Fprintf(out, "Loaded %d kernel modules\n", len(loaded))
		if err != nil {
			fmt.Fprintf(out, "Some modules did not load: %v\n", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "imprint-agent: %v\n", err)
	}
	if earlyErr != nil {
		if err := pe.MountEarly(); err != nil {
			fmt.Fprintf(out, "imprint-agent: early mounts: %v\n", err)
		}
	}
	cmdline, err := os.ReadFile(pe.CmdlinePath)
	if err != nil {
		return fmt.Errorf("read the kernel command line: %w", err)
	}
	bootJSON, err := os.ReadFile(pe.BootJSONPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", pe.BootJSONPath, err)
	}
	boot, err := pe.LoadBoot(string(cmdline), bootJSON)
	if err != nil {
		return err
	}
	if v, ok := boot.Vars["ProgressTimeout"]; ok {
		_ = os.Setenv("IMPRINT_PROGRESS_TIMEOUT", v) // for the failure wait in initMain
	}
	fmt.Fprintf(out, "\nImprint boot image %s\nServer: %s\n", version, boot.ServerURL)
	if len(boot.Unknown) > 0 {
		fmt.Fprintf(out, "Ignoring unknown boot parameters: %s\n", strings.Join(boot.Unknown, " "))
	}
	lease, err := pe.BringUp(ctx, pe.NetConfig{MAC: boot.MAC, IP: boot.IP}, out)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	fmt.Fprintf(out, "IP address: %s\nNetwork: %s\n", lease.Addr.Addr(), lease)
	if err := setClock(ctx, out, boot); err != nil {
		return err
	}
	c, err := client.NewMachinePinned(boot.ServerURL, boot.CASHA256)
	if err != nil {
		return err
	}
	a := &agent.Agent{
		Client:     c,
		Console:    agent.NewConsole(*con, *con),
		StateDir:   peStateDir,
		Vars:       boot.Vars,
		TS:         boot.TSID,
		BootImage:  true,
		Power:      pePower,
		Resume:     agent.BootImageResume{TempDir: "/run"},
		Executable: "/proc/self/exe",
		Stopping:   stoppingFunc(ctx),
	}
	return a.Run(ctx, agent.State{Server: boot.ServerURL, CASHA256: boot.CASHA256, BootImage: true}, false)
}

// setClock sets the clock from the server (the RTC of a boot image may be
// far off, and certificates are checked against it), trying for a minute.
func setClock(ctx context.Context, out io.Writer, boot pe.Boot) error {
	hc := pe.PinnedTimeClient(boot.CASHA256)
	var err error
	for i := 0; i < 12; i++ {
		var t time.Time
		if t, err = pe.FetchServerTime(ctx, hc, boot.ServerURL); err == nil {
			if err := pe.SetClock(t); err != nil {
				return fmt.Errorf("set the clock: %w", err)
			}
			fmt.Fprintf(out, "Clock set from the server: %s\n", t.UTC().Format(time.RFC3339))
			return nil
		}
		fmt.Fprintf(out, "Waiting for the server: %v\n", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return fmt.Errorf("cannot reach the server at %s: %w", boot.ServerURL, err)
}

func pePower(_ context.Context, action string) error {
	switch action {
	case "reboot":
		return pe.Reboot()
	case "shutdown":
		return pe.PowerOff()
	case "logoff", "reseal":
		return fmt.Errorf("%s in the boot image: %w", action, agent.ErrPowerUnsupported)
	}
	return fmt.Errorf("unknown power action %q", action)
}

// kernelRelease is uname -r, read from /proc.
func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
