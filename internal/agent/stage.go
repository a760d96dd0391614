package agent

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
)

// Where StageResume puts the agent inside a deployed Linux root.
const (
	StagedAgentPath = "/usr/local/sbin/imprint-agent"
	StagedStateDir  = "/var/lib/imprint-agent"
)

// StageResume makes the deployed Linux whose root filesystem is mounted
// read-write at root continue the run after it boots: it copies the agent
// binary exe to root/usr/local/sbin/imprint-agent, the state directory
// (journal, variables, logs, content cache) to root/var/lib/imprint-agent
// with the state marked as no longer in the boot image and without secret
// variables (the session token stays, to resume with), and installs and
// enables imprint-agent-resume.service (the multi-user.target.wants
// symlink that `systemctl enable` would make).
func StageResume(root, exe, stateDir string) error {
	if err := copyFile(exe, filepath.Join(root, StagedAgentPath), 0o755); err != nil {
		return fmt.Errorf("stage agent: %w", err)
	}
	dst := filepath.Join(root, StagedStateDir)
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("stage state: %w", err)
	}
	if _, err := copyState(stateDir, dst, nil); err != nil {
		return fmt.Errorf("stage state: %w", err)
	}
	unitDir := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(filepath.Join(unitDir, "multi-user.target.wants"), 0o755); err != nil {
		return fmt.Errorf("stage resume unit: %w", err)
	}
	if err := os.WriteFile(filepath.Join(unitDir, ResumeUnitName), []byte(ResumeUnit(StagedAgentPath, StagedStateDir)), 0o644); err != nil {
		return fmt.Errorf("stage resume unit: %w", err)
	}
	link := filepath.Join(unitDir, "multi-user.target.wants", ResumeUnitName)
	_ = os.Remove(link)
	if err := os.Symlink("/etc/systemd/system/"+ResumeUnitName, link); err != nil {
		return fmt.Errorf("enable resume unit: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFunc(dst, mode, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// VarsResumer is a Resumer that needs the run's variables to arrange the
// resume (the boot image's, which stages into the deployed disk).
type VarsResumer interface {
	InstallVars(ctx context.Context, vars *sequence.Vars, exe, stateDir string) error
}

// BootImageResume arranges, in the boot image, for the deployed Linux on
// OSPartition to continue the run: it mounts that partition read-write
// and calls StageResume with the running binary (/proc/self/exe).
//
// For a Windows target (Format disk wrote a Windows layout) it mounts the
// NTFS partition instead and calls StageWindows: the answer file's
// continuation starts the agent Prepare operating system staged there.
type BootImageResume struct {
	TempDir string
	// Mount mounts a partition read-write; nil is disksteps.MountRW.
	Mount func(spec, tmpDir string) (string, func() error, error)
	// MountNTFS mounts a Windows partition read-write; nil is
	// disksteps.MountWindows.
	MountNTFS func(ctx context.Context, spec, tmpDir string) (string, func() error, error)
	// Protect restricts the staged Windows state directory to SYSTEM and
	// Administrators; nil sets the NTFS security descriptors (winacl).
	Protect func(dir string) error
}

var _ VarsResumer = BootImageResume{}

// Install cannot work without the variables.
func (BootImageResume) Install(context.Context, string, string) error {
	return fmt.Errorf("the boot image stages the resume from the run's variables")
}

// Remove does nothing: the boot image's state is on a tmpfs.
func (BootImageResume) Remove(context.Context) error { return nil }

// InstallVars stages the agent into the deployed root.
func (b BootImageResume) InstallVars(ctx context.Context, vars *sequence.Vars, exe, stateDir string) error {
	part := vars.Value(disksteps.VarOSPartition)
	if part == "" {
		return fmt.Errorf("no OSPartition variable: nothing was deployed to continue in")
	}
	if IsWindowsTarget(vars) {
		return b.stageWindows(ctx, part, stateDir)
	}
	mount := b.Mount
	if mount == nil {
		mount = disksteps.MountRW
	}
	dir, unmount, err := mount(part, b.TempDir)
	if err != nil {
		return fmt.Errorf("continue in the deployed OS (only a Linux target can): %w", err)
	}
	if exe == "" {
		exe = "/proc/self/exe"
	}
	serr := StageResume(dir, exe, stateDir)
	if err := unmount(); serr == nil {
		serr = err
	}
	return serr
}

func (b BootImageResume) stageWindows(ctx context.Context, part, stateDir string) error {
	mount := b.MountNTFS
	if mount == nil {
		mount = disksteps.MountWindows
	}
	dir, unmount, err := mount(ctx, part, b.TempDir)
	if err != nil {
		return fmt.Errorf("continue in Windows: %w", err)
	}
	serr := StageWindows(dir, stateDir, b.Protect)
	if err := unmount(); serr == nil {
		serr = err
	}
	return serr
}
