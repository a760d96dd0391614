// Package app is the Install application and Install multiple applications
// steps. Each application is a content item version: its content is
// fetched (and, for a folder, expanded), then the version's
// installationCommandLine runs through the system shell in its
// installationWorkingDirectory (relative to the content folder) or the
// content folder. Exit codes are checked against installationSuccessCodes
// (default 0); 3010 and, on Windows, 1641 (194 on Linux) always mean
// success with a reboot required, which makes the step ask the engine for
// a reboot once every application of the step is installed; the agent
// reboots and the run resumes after the step. A command line whose program
// is a .msi, or none with content that is one .msi, runs Windows Installer
// quietly with a verbose log in the run's logs (InstallCommand).
// installationDependencies are installed first, each once per step.
package app

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/cmdline"
	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// ExitRebootRequired is the Windows installer code for "installed, restart
// needed". Exit codes are 8 bits on Linux and macOS, where an installer
// exits with ExitRebootRequiredUnix (3010 mod 256) to say the same.
const (
	ExitRebootRequired     = 3010
	ExitRebootRequiredUnix = ExitRebootRequired % 256 // 194
)

// Source gives the step the applications' metadata and content.
type Source interface {
	sequence.ContentFetcher
	ContentVersion(ctx context.Context, ref deploy.Ref) (*deploy.ContentVersion, error)
}

// Step installs one application (option Application) or, with Multiple,
// those of the ContentList option Applications followed by the items of the
// list variable named by BaseVariableName (default Applications).
type Step struct {
	Source   Source
	Multiple bool
}

var _ sequence.Step = Step{}

// Run installs the applications in order.
func (s Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	if s.Source == nil {
		return sequence.Result{}, fmt.Errorf("install application: no content source configured")
	}
	refs, err := s.refs(env)
	if err != nil {
		return sequence.Result{}, err
	}
	if len(refs) == 0 {
		if s.Multiple {
			fmt.Fprintln(env.Log, "No applications to install.")
			return sequence.Result{}, nil
		}
		return sequence.Result{}, fmt.Errorf("install application: option Application is not set")
	}
	in := &installer{src: s.Source, env: env, done: make(map[string]bool)}
	for _, ref := range refs {
		if err := in.install(ctx, ref, nil); err != nil {
			return in.res, err
		}
	}
	return in.res, nil
}

func (s Step) refs(env *sequence.Env) ([]deploy.Ref, error) {
	var raw []string
	if s.Multiple {
		raw = append(raw, deploy.ContentList(env.Vars.Expand(env.Step.ContentItems["Applications"]))...)
		base := strings.TrimSpace(env.Setting("BaseVariableName"))
		if base == "" {
			base = "Applications"
		}
		raw = append(raw, env.Vars.List(base)...)
	} else {
		raw = deploy.ContentList(env.Vars.Expand(env.Step.ContentItems["Application"]))
	}
	refs := make([]deploy.Ref, 0, len(raw))
	for _, r := range raw {
		ref, err := deploy.ParseRef(r)
		if err != nil {
			return nil, fmt.Errorf("install application: %w", err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

type installer struct {
	src  Source
	env  *sequence.Env
	done map[string]bool
	res  sequence.Result
}

func (in *installer) install(ctx context.Context, ref deploy.Ref, chain []string) error {
	key := ref.String()
	if in.done[key] {
		return nil
	}
	for _, c := range chain {
		if c == key {
			return fmt.Errorf("application %s: dependency cycle: %s -> %s", key, strings.Join(chain, " -> "), key)
		}
	}
	v, err := in.src.ContentVersion(ctx, ref)
	if err != nil {
		return fmt.Errorf("application %s: %w", key, err)
	}
	for _, d := range v.InstallationDependencies {
		dref, err := deploy.ParseRef(d)
		if err != nil {
			return fmt.Errorf("application %s: dependency: %w", key, err)
		}
		if err := in.install(ctx, dref, append(chain, key)); err != nil {
			return err
		}
	}
	line := strings.TrimSpace(in.env.Vars.Expand(deploy.Str(v.InstallationCommandLine)))
	codes, err := v.SuccessCodes()
	if err != nil {
		return fmt.Errorf("application %s: %w", key, err)
	}
	path, err := in.src.Fetch(ctx, ref)
	if err != nil {
		return fmt.Errorf("application %s: %w", key, err)
	}
	logDir := in.env.Vars.Value("_IMPRINTLOGS")
	if logDir == "" {
		logDir = os.TempDir()
	}
	inst, err := InstallCommand(runtime.GOOS, line, path, logDir, logName(ref))
	if err != nil {
		return fmt.Errorf("application %s: %w", key, err)
	}
	c := inst.Cmd
	c.Dir, c.Log, c.Env = cmdline.WorkDir(deploy.Str(v.InstallationWorkingDirectory), path), in.env.Log, []string{"IMPRINT_PROCESS=1"}
	if inst.MSI != "" {
		fmt.Fprintf(in.env.Log, "Installing application %s: Windows Installer package %s (log %s)\n", key, inst.MSI, inst.Log)
	} else {
		fmt.Fprintf(in.env.Log, "Installing application %s: %s\n", key, line)
	}
	res, err := proc.Run(ctx, c)
	in.res.ExitCode, in.res.Output = res.ExitCode, res.Tail
	if err != nil {
		return fmt.Errorf("application %s: %w", key, err)
	}
	if RebootCode(runtime.GOOS, res.ExitCode) {
		fmt.Fprintf(in.env.Log, "Application %s installed; it needs a restart (exit code %d).\n", key, res.ExitCode)
		in.res.RebootRequested = true
	} else if err := proc.CheckCodes(res.ExitCode, codes); err != nil {
		return fmt.Errorf("application %s: %w", key, err)
	}
	in.done[key] = true
	return nil
}

// RebootCode reports whether an installer's exit code means "installed,
// restart needed" on goos: 3010 and 1641 on Windows; 3010 and its 8-bit
// remainder 194 elsewhere (exit codes are 8 bits on Unix).
func RebootCode(goos string, code int) bool {
	switch code {
	case ExitRebootRequired:
		return true
	case ExitRebootInitiated:
		return goos == "windows"
	case ExitRebootRequiredUnix:
		return goos != "windows"
	}
	return false
}

// logName names an application's installer log after its reference.
func logName(ref deploy.Ref) string {
	return strings.NewReplacer(":", "-", "/", "-", `\`, "-").Replace(ref.String())
}
