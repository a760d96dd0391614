package agent

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// TestStateLock: while one agent holds a state directory, a second one
// (the scheduled task firing while a technician runs resume by hand) is
// refused with the holder's process ID, and gets it once the first ends.
func TestStateLock(t *testing.T) {
	dir := t.TempDir()
	first := &Agent{StateDir: dir}
	if err := first.open(); err != nil {
		t.Fatal(err)
	}
	second := &Agent{StateDir: dir}
	err := second.open()
	if deploy.ErrorKind(err) != deploy.KindConflict {
		t.Fatalf("second agent on one state: %v, want a conflict", err)
	}
	if want := "process " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("the refusal does not name the holder (%s): %v", want, err)
	}
	first.close()
	if err := second.open(); err != nil {
		t.Fatalf("after the first agent ended: %v", err)
	}
	second.close()
}

// TestStagedStateHasNoLock: the lock file of the agent in the boot image
// is not copied into the deployed OS's state.
func TestStagedStateHasNoLock(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	a := &Agent{StateDir: src}
	if err := a.open(); err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if _, err := copyState(src, dst, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, LockFile)); !os.IsNotExist(err) {
		t.Errorf("the lock file was staged: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "logs")); err != nil {
		t.Errorf("the logs were not staged: %v", err)
	}
}

// TestResumeWithoutStateRemovesStagedAgent: Prepare operating system
// staged the Windows agent and an answer file, but the run ended in the
// boot image before any Reboot staged its state. When Setup starts the
// agent, it finds nothing to resume and removes itself and the answer
// file (which holds the hidden Administrator password) rather than
// staying on the machine.
func TestResumeWithoutStateRemovesStagedAgent(t *testing.T) {
	root := t.TempDir()
	stateDir := filepath.Join(root, filepath.FromSlash(WindowsStateDir))
	agentExe := filepath.Join(root, filepath.FromSlash(WindowsAgentPath))
	answer := filepath.Join(root, "Windows", "Panther", "unattend.xml")
	for _, p := range []string{agentExe, answer} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	var removed []string
	a := &Agent{StateDir: stateDir, Cleanup: WindowsCleanup{Root: root, RemoveAfterExit: func(dir string) error {
		removed = append(removed, dir)
		return nil
	}}}
	err := a.ResumeRun(context.Background())
	if !deploy.IsNotFound(err) || !strings.Contains(err.Error(), "staged agent was removed") {
		t.Fatalf("ResumeRun = %v, want not found, saying the staged agent was removed", err)
	}
	if _, err := os.Stat(answer); !os.IsNotExist(err) {
		t.Errorf("the answer file is still there: %v", err)
	}
	if want := filepath.Join(root, filepath.FromSlash(WindowsDir)); len(removed) != 1 || removed[0] != want {
		t.Errorf("removal after exit scheduled for %q, want [%s]", removed, want)
	}

	// An agent with nothing staged (the boot image's) only says so.
	plain := &Agent{StateDir: t.TempDir()}
	if err := plain.ResumeRun(context.Background()); !deploy.IsNotFound(err) || strings.Contains(err.Error(), "removed") {
		t.Errorf("ResumeRun with no state and no cleaner = %v", err)
	}
}
