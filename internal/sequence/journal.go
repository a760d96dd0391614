package sequence

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// JournalFormat is the version of the journal's JSON layout.
const JournalFormat = 1

// Journal persists a run's progress so that it survives reboots and
// crashes. Load returns an error of kind deploy.KindNotFound when there is
// no journal yet.
type Journal interface {
	Load() (*JournalState, error)
	Save(*JournalState) error
}

// JournalState is everything needed to resume a run.
//
// The engine saves it before a step runs (Running names the step) and
// after (the step is in Completed, Running is empty), and whenever it
// enters or leaves a group or a Run task sequence step (Entered). A step
// found in Running on resume was interrupted and runs again: the engine
// gives at-least-once execution for the interrupted step and exactly-once
// for every step recorded complete.
type JournalState struct {
	Format         int    `json:"format"`
	TaskSequenceID string `json:"taskSequenceId"`
	VersionNo      int    `json:"versionNo"`
	// Completed lists, in order, every step and group whose outcome is
	// known (ran, failed, skipped, disabled).
	Completed []CompletedStep `json:"completed"`
	// Entered lists the groups and Run task sequence steps whose condition
	// held and whose members are being walked, outermost first.
	Entered []string `json:"entered,omitempty"`
	// Running is the step that was started and has not completed.
	Running string `json:"running,omitempty"`
	// Stack is the chain of Run task sequence steps being executed,
	// outermost first (for display; Entered is what resume relies on).
	Stack []Frame `json:"stack,omitempty"`
	// Vars is every variable, secrets included and flagged; the journal
	// file is therefore written with mode 0600.
	Vars []Var `json:"vars"`
	// Outcome is set when the run has ended (not for a reboot).
	Outcome *Outcome  `json:"outcome,omitempty"`
	Updated time.Time `json:"updated"`
}

// CompletedStep is the recorded outcome of one step or group.
type CompletedStep struct {
	ID      string             `json:"id"`
	Outcome deploy.StepOutcome `json:"outcome"`
	Message string             `json:"message,omitempty"`
	// Cause names, for a failed group or Run task sequence step, the step
	// inside it whose failure failed it (id path, name path, message).
	Cause *Cause `json:"cause,omitempty"`
}

// Cause is the innermost step behind a group's failure.
type Cause struct {
	ID      string `json:"id"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Frame is one Run task sequence step on the nesting stack.
type Frame struct {
	StepID string `json:"stepId"` // the Run task sequence step's id path
	Ref    string `json:"ref"`    // the child task sequence, "guid:version"
}

// FileJournal keeps the journal in one JSON file, replaced atomically on
// every save (temporary file in the same directory, fsync, rename, fsync
// of the directory), with mode 0600.
type FileJournal struct {
	Path string
}

var _ Journal = (*FileJournal)(nil)

// Load reads the journal file.
func (j *FileJournal) Load() (*JournalState, error) {
	b, err := os.ReadFile(j.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, deploy.Wrap(deploy.KindNotFound, err, "no journal at "+j.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var st JournalState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, deploy.Wrap(deploy.KindInvalid, err, "journal "+j.Path+" is not valid JSON")
	}
	if st.Format != JournalFormat {
		return nil, deploy.Errorf(deploy.KindInvalid, "journal %s has format %d, this engine reads format %d", j.Path, st.Format, JournalFormat)
	}
	return &st, nil
}

// Save replaces the journal file atomically.
func (j *FileJournal) Save(st *JournalState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	if err := atomicfile.Write(j.Path, b, 0o600); err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	return nil
}

// Remove deletes the journal (after a run has finished and been reported).
func (j *FileJournal) Remove() error {
	if err := os.Remove(j.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}
