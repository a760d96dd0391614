package deploy

import (
	"context"
	"time"
)

// Store is the server's persistent state. The SQLite implementation is the
// embedded default; storetest holds the one conformance suite every
// implementation must pass. Every method is one transaction. Missing records
// return an *Error of KindNotFound, never nil results.
type Store interface {
	// Content items. Versions are stored with their item; CreateContentItem
	// ignores c.Versions.
	CreateContentItem(ctx context.Context, c *ContentItem) error
	UpdateContentItem(ctx context.Context, c *ContentItem) error // metadata only
	ContentItem(ctx context.Context, id string) (*ContentItem, error)
	ContentItems(ctx context.Context) ([]*ContentItem, error)
	// DeleteContentItem removes an item and its versions and returns the blob
	// hashes no remaining version references.
	DeleteContentItem(ctx context.Context, id string) (orphans []string, err error)
	// AddContentVersion stores v as the next version of the item (assigning
	// VersionNo and ID when zero) and returns the stored version.
	AddContentVersion(ctx context.Context, itemID string, v *ContentVersion) (*ContentVersion, error)
	UpdateContentVersion(ctx context.Context, v *ContentVersion) error // status, description, app/driver fields, tags
	// ImportContentItem stores c and all its versions as given (ids,
	// numbers, dates), in one transaction. File and Folder versions must
	// be AwaitingContent: their bytes come later through
	// FillContentVersion. KindConflict when the item or a version id exists.
	ImportContentItem(ctx context.Context, c *ContentItem) error
	// FillContentVersion gives a version awaiting content its bytes: the
	// blob hash (File) or manifest (Folder), the size, and clears
	// AwaitingContent. KindConflict when the version is not awaiting content.
	FillContentVersion(ctx context.Context, itemID string, versionNo int, sha256 string, m *Manifest, size int64) (*ContentVersion, error)
	DeleteContentVersion(ctx context.Context, itemID string, versionNo int) (orphans []string, err error)
	// BlobInUse reports whether any version references the hash (as its File
	// blob or as a file of its manifest).
	BlobInUse(ctx context.Context, sha256 string) (bool, error)

	// Step definitions (custom ones; built-ins live in code).
	PutStepDefinition(ctx context.Context, d *StepDefinition) error // create or replace
	StepDefinition(ctx context.Context, id string) (*StepDefinition, error)
	StepDefinitions(ctx context.Context) ([]*StepDefinition, error)
	DeleteStepDefinition(ctx context.Context, id string) error

	// Task sequences.
	PutTaskSequence(ctx context.Context, t *TaskSequence) error // create or replace
	TaskSequence(ctx context.Context, id string) (*TaskSequence, error)
	TaskSequences(ctx context.Context) ([]*TaskSequence, error)
	DeleteTaskSequence(ctx context.Context, id string) error

	// Devices and runs.
	UpsertDevice(ctx context.Context, d *Device) error
	Device(ctx context.Context, id string) (*Device, error)
	// Devices returns every device seen, most recently seen first.
	Devices(ctx context.Context) ([]*Device, error)
	CreateRun(ctx context.Context, r *Run) error
	UpdateRun(ctx context.Context, r *Run) error
	Run(ctx context.Context, id string) (*Run, error)
	Runs(ctx context.Context, f RunFilter) ([]*Run, error)
	// BootState returns what decides a machine's network boot, for the
	// ids it is known by (its UUID, its "mac-…" id or both): the next-boot
	// choice of the first of deviceIDs that has one, and the state of the
	// newest run (by StartedAt, then ID, as Runs orders them) of any of
	// them. It is one indexed read: the per-machine boot script asks it on
	// every network boot.
	BootState(ctx context.Context, deviceIDs ...string) (BootState, error)
	// SetNextBoot stores what device id's boot menu starts on next;
	// NextBootAuto removes the choice. KindInvalid for another value,
	// KindNotFound for a device never seen.
	SetNextBoot(ctx context.Context, id string, nb NextBoot) error
	// NextBoots returns every choice other than NextBootAuto, by device ID.
	NextBoots(ctx context.Context) (map[string]NextBoot, error)
	AppendRunEvent(ctx context.Context, e *RunEvent) error // assigns Seq
	// AppendRunEvents appends the events to run r (assigning Seq, and a
	// zero Time now, as AppendRunEvent) and replaces the stored run with r
	// (UpdatedAt now), in one transaction: what a machine's event post
	// changes is one write. Events do not move a run: its DeviceID,
	// TaskSequenceID and StartedAt stay as stored. KindNotFound, and
	// nothing stored, for an unknown run; KindConflict, and nothing
	// stored, when the stored run was canceled meanwhile (r was read
	// before the call: a late event never undoes an administrator's
	// cancel).
	AppendRunEvents(ctx context.Context, r *Run, events []*RunEvent) error
	RunEvents(ctx context.Context, runID string, afterSeq int64) ([]*RunEvent, error)
	// MarkLostRuns sets every non-terminal run not updated since before to RunLost.
	MarkLostRuns(ctx context.Context, before time.Time) (int, error)

	// Settings: small JSON values by key (passcode hash, security modes…).
	Setting(ctx context.Context, key string) ([]byte, error) // KindNotFound if unset
	PutSetting(ctx context.Context, key string, value []byte) error
	DeleteSetting(ctx context.Context, key string) error
	// UpdateSetting changes key atomically, also against other processes
	// on the same database: fn gets the stored value (nil when unset) and
	// returns the new one (nil deletes the key); an error from fn changes
	// nothing and is returned as it is. fn runs inside the transaction, so
	// it must be quick and do no I/O; it may run again if the store has to
	// retry the transaction, so it must only compute.
	UpdateSetting(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) error

	// Sessions.
	CreateSession(ctx context.Context, s *Session) error
	SessionByTokenHash(ctx context.Context, hash []byte) (*Session, error)
	UpdateSession(ctx context.Context, s *Session) error
	Sessions(ctx context.Context) ([]*Session, error)
	// RevokeSessions revokes every live session matching f and returns how many.
	RevokeSessions(ctx context.Context, f SessionFilter, at time.Time) (int, error)

	// Web-console accounts, by name. CreateUser refuses a name in use
	// (KindConflict); UpdateUser replaces role and hash of an existing one.
	CreateUser(ctx context.Context, u *User) error
	UpdateUser(ctx context.Context, u *User) error
	User(ctx context.Context, name string) (*User, error)
	Users(ctx context.Context) ([]*User, error) // by name
	DeleteUser(ctx context.Context, name string) error

	// Audit log: append-only. AppendAudit fills Seq, PrevHash and Hash.
	AppendAudit(ctx context.Context, e *AuditEvent) error
	AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]*AuditEvent, error)

	// Throttle counts, shared by every server on the database (the login
	// throttle's per-source and global guess limits). TakeThrottle records
	// one hit at now under each limit's key, all or none, in one step for
	// every process, and only when each key has fewer than its Limit hits
	// in the rolling window (now-window, now]. Refused, it records nothing
	// and returns the wait (> 0) until every key has room again; taken, it
	// returns an id naming the hits. Hits older than the window are
	// forgotten.
	TakeThrottle(ctx context.Context, now time.Time, window time.Duration, limits ...ThrottleLimit) (id string, wait time.Duration, err error)
	// ReleaseThrottle removes the hits of id under the keys given (an
	// attempt that in the end does not count); missing ones are ignored.
	ReleaseThrottle(ctx context.Context, id string, keys ...string) error

	Close() error
}

// ThrottleLimit is one key TakeThrottle counts a hit under, and how many
// hits it may hold in the window.
type ThrottleLimit struct {
	Key   string
	Limit int
}

// RunFilter narrows Runs. Zero fields match everything.
type RunFilter struct {
	DeviceID       string
	TaskSequenceID string
	State          RunState
	Limit          int
}

// SessionFilter selects sessions to revoke. Zero fields match everything.
type SessionFilter struct {
	ID         string
	DeviceID   string
	Method     string
	Generation int // passcode generation, with Method "passcode"
}
