package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/winboot"
)

// Cleaner removes what a run staged on the machine once the run is over
// (succeeded or failed for good), after the session and the secrets are
// retired. The Windows continuation's is WindowsCleanup.
type Cleaner interface {
	Cleanup(ctx context.Context, stateDir string) error
}

// WindowsCleanup removes the Windows continuation at the end of the run
// (security checklist PC-10, TK-7): at once the run's state files (the
// done records without the token, the journal, the CA copy, the event
// outbox, content cache and scratch files), the answer file if Setup left
// it (it holds the hidden Administrator password), and as much of the
// state directory as can go; then it has WindowsDir, the agent binary and
// what is left with it (the open log files on Windows), deleted once this
// process has exited, since a running .exe cannot delete itself.
type WindowsCleanup struct {
	// Root is the Windows partition's root (%SystemDrive%\).
	Root string
	// RemoveAfterExit deletes dir once the agent has exited; nil is
	// RemoveAfterExit (Windows: a detached cmd.exe, SelfDeleteCommand).
	RemoveAfterExit func(dir string) error
}

var _ Cleaner = WindowsCleanup{}

// Cleanup deletes the state and schedules the removal of the rest.
func (c WindowsCleanup) Cleanup(_ context.Context, stateDir string) error {
	var errs []error
	// The state files first, before anything else.
	for _, f := range []string{"agent.json", "agent.done.json", "journal.json", "journal.done.json", WindowsCAFile, "outbox.jsonl"} {
		if err := removeFile(filepath.Join(stateDir, f)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{"content", "tmp"} {
		if err := os.RemoveAll(filepath.Join(stateDir, d)); err != nil {
			errs = append(errs, err)
		}
	}
	if p, err := winboot.FindCI(c.Root, "Windows/Panther/unattend.xml"); err == nil {
		if err := removeFile(p); err != nil {
			errs = append(errs, err)
		}
	}
	// The open log files keep the directory on Windows; the removal
	// after exit takes them.
	_ = os.RemoveAll(stateDir)
	remove := c.RemoveAfterExit
	if remove == nil {
		remove = RemoveAfterExit
	}
	if err := remove(filepath.Join(c.Root, filepath.FromSlash(WindowsDir))); err != nil {
		errs = append(errs, fmt.Errorf("schedule the agent's removal: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up the Windows continuation: %w", err)
	}
	return nil
}

// SelfDeleteCommand is the command line (for CreateProcess) that deletes
// dir, with the agent's executable in it, once the agent has exited: it
// tries every 2 seconds for 2 minutes (the agent may still be ending).
// dir must be a plain path: no quote, %, !, ^, &, |, <, > or line break.
func SelfDeleteCommand(dir string) (string, error) {
	if dir == "" || strings.ContainsAny(dir, "\"%!^&|<>\r\n") {
		return "", fmt.Errorf("cannot schedule the removal of %q: not a plain path", dir)
	}
	q := `"` + dir + `"`
	return `cmd.exe /d /q /s /c "for /l %i in (1,1,60) do (ping -n 3 127.0.0.1 >nul & rmdir /s /q ` + q +
		` >nul 2>&1 & if not exist ` + q + ` exit 0)"`, nil
}

func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
