package agent

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
	"github.com/imprint-osd/imprint/internal/winacl"
)

// Where the Windows continuation lives, relative to the root of the
// Windows partition (slash-separated; filepath.FromSlash for a local path).
// This is the contract between the boot image, which stages the files,
// the answer file's continuation, which runs
// "%SystemDrive%\ProgramData\Imprint\imprint-agent.exe" resume, and the
// Windows agent, whose --state defaults to %SystemDrive%\ + WindowsStateDir.
const (
	WindowsDir       = "ProgramData/Imprint"
	WindowsAgentPath = "ProgramData/Imprint/imprint-agent.exe"
	WindowsStateDir  = "ProgramData/Imprint/state"
	// WindowsCAFile is the server's CA (PEM) in the state directory, when
	// the boot image was given it (with only a pinned fingerprint,
	// agent.json's caSHA256 is what the resume trusts).
	WindowsCAFile = "ca.crt"
)

// WindowsAgentSource gives the windows/amd64 agent (*client.Machine does:
// GET /v1/agent/windows-amd64), checking it against the server's SHA-256
// before returning without error.
type WindowsAgentSource interface {
	WindowsAgent(ctx context.Context, w io.Writer) (string, error)
}

// StageWindowsAgent is the part of the Windows continuation Prepare
// operating system does on the Windows partition mounted at root: the
// windows/amd64 agent from src to WindowsAgentPath (written only once its
// SHA-256 matched), and the state directory, protected (protect; nil
// gives it a DACL for SYSTEM and Administrators only through the NTFS
// driver), with the CA in it when caPEM is known. The run's session and
// journal follow at the reboot (StageWindows). It returns the agent's
// SHA-256.
func StageWindowsAgent(ctx context.Context, root string, src WindowsAgentSource, caPEM []byte, protect func(dir string) error) (string, error) {
	exe := filepath.Join(root, filepath.FromSlash(WindowsAgentPath))
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		return "", fmt.Errorf("stage the Windows agent: %w", err)
	}
	var sum string
	err := atomicfile.WriteFunc(exe, 0o755, func(w io.Writer) error {
		var err error
		sum, err = src.WindowsAgent(ctx, w)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("stage the Windows agent: %w", err)
	}
	state := filepath.Join(root, filepath.FromSlash(WindowsStateDir))
	if err := os.MkdirAll(state, 0o700); err != nil {
		return "", fmt.Errorf("stage the Windows agent: %w", err)
	}
	// Protected before anything is written in it.
	if err := protectState(state, protect); err != nil {
		return "", err
	}
	if len(caPEM) > 0 {
		if err := atomicfile.Write(filepath.Join(state, WindowsCAFile), caPEM, 0o644); err != nil {
			return "", fmt.Errorf("stage the CA: %w", err)
		}
	}
	return sum, protectState(state, protect)
}

func protectState(dir string, protect func(string) error) error {
	if protect == nil {
		protect = winacl.SetTree
	}
	if err := protect(dir); err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators (TK-7): %w", dir, err)
	}
	return nil
}

// StageWindows copies the run's state from stateDir into the Windows
// partition mounted at root (WindowsStateDir), so that the agent the
// continuation starts resumes the run after the last completed step:
// agent.json with the session token but outside the boot image and
// without secret variables, journal.json without secret variables, the
// logs and the event outbox (not the content cache nor scratch files).
// The agent itself must be there already (StageWindowsAgent). The state
// directory is protected again (protect, as in StageWindowsAgent) once
// everything is written.
func StageWindows(root, stateDir string, protect func(dir string) error) error {
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(WindowsAgentPath))); err != nil {
		return fmt.Errorf("stage the run for Windows: the Windows agent is not on the partition (Prepare operating system stages it): %w", err)
	}
	dst := filepath.Join(root, filepath.FromSlash(WindowsStateDir))
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("stage the run for Windows: %w", err)
	}
	if err := protectState(dst, protect); err != nil {
		return err
	}
	st, err := copyState(stateDir, dst, map[string]bool{"content": true, "tmp": true})
	if err != nil {
		return fmt.Errorf("stage the run for Windows: %w", err)
	}
	if st != nil && st.CAPEM != "" {
		if err := atomicfile.Write(filepath.Join(dst, WindowsCAFile), []byte(st.CAPEM), 0o644); err != nil {
			return fmt.Errorf("stage the CA: %w", err)
		}
	}
	return protectState(dst, protect)
}

// copyState copies stateDir to dst for a resume in the deployed OS: the
// files (but not the directories in skip), and agent.json and journal.json
// rewritten without secret variables and with the state marked as no
// longer in the boot image. It returns the state copied (nil if none).
func copyState(stateDir, dst string, skip map[string]bool) (*State, error) {
	err := filepath.WalkDir(stateDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(stateDir, p)
		t := filepath.Join(dst, rel)
		switch {
		case e.IsDir() && skip[rel]:
			return filepath.SkipDir
		case e.IsDir():
			return os.MkdirAll(t, 0o700)
		case rel == LockFile:
			return nil // this process's lock; the resumed agent takes its own
		case rel == "agent.json" || rel == "journal.json":
			// Written below, not copied: the deployed disk gets the session
			// token to resume with, but no secret variable (a step there
			// gets its Password options from the task sequence again) and
			// no copy of the passcode.
			return nil
		case e.Type().IsRegular():
			return copyFile(p, t, 0o600)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st, err := LoadState(stateDir)
	switch {
	case err == nil:
		st.BootImage, st.Secrets = false, nil
		if err := writeState(filepath.Join(dst, "agent.json"), st); err != nil {
			return nil, err
		}
	case deploy.IsNotFound(err):
		st = nil
	default:
		return nil, err
	}
	if j, err := (&sequence.FileJournal{Path: filepath.Join(stateDir, "journal.json")}).Load(); err == nil {
		j.Vars, _ = splitSecrets(j.Vars)
		if err := (&sequence.FileJournal{Path: filepath.Join(dst, "journal.json")}).Save(j); err != nil {
			return nil, err
		}
	} else if !deploy.IsNotFound(err) {
		return nil, err
	}
	return st, nil
}

// IsWindowsTarget reports whether the run deploys Windows: Format disk
// wrote a Windows layout.
func IsWindowsTarget(vars *sequence.Vars) bool {
	return strings.HasPrefix(strings.ToLower(vars.Value(disksteps.VarOSDiskLayout)), "windows")
}
