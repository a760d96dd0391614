package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imprint-osd/imprint/internal/sequence"
)

// What the agent keeps of a run's secrets on disk (security checklist
// PC-10 and TK-7):
//
//   - The Passcode variable is needed only to get a session; execute
//     deletes it before the first step, so no step, journal or log sees it.
//     A variable of that name is never written to disk.
//   - The session token and the other secret variables (the values of
//     Password options, and variables whose value holds one) live only in
//     agent.json (0600, in the 0700 state directory), where a resume after
//     a reboot in place finds them. The journal holds none of them, so
//     neither does anything copied from it.
//   - StageResume copies the token into the deployed OS, but none of those
//     variables: a step there gets its Password options from the task
//     sequence again, and a %VAR% copy of a secret made before the reboot
//     is unset there.
//   - At the end of the run (succeeded or failed) agent.json and
//     journal.json are replaced by done records without the token and
//     without secret variables.

// passcodeVar is the variable holding the site's boot passcode.
const passcodeVar = "Passcode"

func isPasscodeVar(name string) bool { return strings.EqualFold(name, passcodeVar) }

// splitSecrets returns the variables that may be written to the journal
// and those that may not: the secret ones, and the ones whose value
// holds a secret value (a Set variable step's copy of %AdminPassword%, a
// step's CommandLine with it expanded), which keep their Secret flag. A
// Passcode variable is in neither.
func splitSecrets(vars []sequence.Var) (public, secret []sequence.Var) {
	var values []string
	for _, v := range vars {
		if v.Secret && v.Value != "" && !isPasscodeVar(v.Name) {
			values = append(values, v.Value)
		}
	}
	holdsSecret := func(s string) bool {
		return slices.ContainsFunc(values, func(sec string) bool { return strings.Contains(s, sec) })
	}
	for _, v := range vars {
		switch {
		case isPasscodeVar(v.Name):
		case v.Secret || holdsSecret(v.Value):
			secret = append(secret, v)
		default:
			public = append(public, v)
		}
	}
	return public, secret
}

// stateJournal is the engine's journal with the secret variables (and the
// variables holding a secret value) kept in agent.json (State.Secrets)
// instead of journal.json.
type stateJournal struct {
	a    *Agent
	file *sequence.FileJournal
}

var _ sequence.Journal = stateJournal{}

// Load reads journal.json and adds the secret variables from agent.json.
func (j stateJournal) Load() (*sequence.JournalState, error) {
	st, err := j.file.Load()
	if err != nil || st == nil {
		return st, err
	}
	public, secret := splitSecrets(st.Vars)
	if j.a.st.Secrets != nil || len(secret) == 0 {
		secret = j.a.st.Secrets
	} // else a journal written before the secrets moved out: the next Save moves them
	st.Vars = append(public, secret...)
	return st, nil
}

// Save writes the secret variables to agent.json when they changed, then
// the rest to journal.json. A crash between the two leaves agent.json
// newer than the journal, which a resume restores harmlessly.
func (j stateJournal) Save(st *sequence.JournalState) error {
	public, secret := splitSecrets(st.Vars)
	if !slices.Equal(secret, j.a.st.Secrets) {
		j.a.st.Secrets = secret
		if err := j.a.saveState(); err != nil {
			return fmt.Errorf("save secret variables: %w", err)
		}
	}
	cp := *st
	cp.Vars = public
	return j.file.Save(&cp)
}

// retire replaces the run's state files with done records that hold no
// token and no secret variable (and, to be sure, redacts any secret value
// left in the journal's variables), and deletes the temporary files.
// Errors are logged: the run is over either way.
func (a *Agent) retire() {
	done := *a.st
	done.Token, done.Secrets = "", nil
	if err := writeState(filepath.Join(a.StateDir, "agent.done.json"), &done); err != nil {
		a.logf(SevWarning, "Write the done record: %v", err)
	}
	if err := removeFile(a.statePath()); err != nil {
		a.logf(SevError, "Delete the session token: %v", err)
	}
	if st, err := (&sequence.FileJournal{Path: a.journalPath()}).Load(); err == nil {
		public, _ := splitSecrets(st.Vars)
		for i := range public {
			public[i].Value = a.vars.Redact(public[i].Value)
		}
		st.Vars = public
		if err := (&sequence.FileJournal{Path: filepath.Join(a.StateDir, "journal.done.json")}).Save(st); err != nil {
			a.logf(SevWarning, "Write the done journal: %v", err)
		}
	}
	if err := removeFile(a.journalPath()); err != nil {
		a.logf(SevWarning, "Delete the journal: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(a.StateDir, "tmp")); err != nil {
		a.logf(SevWarning, "Delete temporary files: %v", err)
	}
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
