package deploy

import "time"

// Device is a machine the server has seen, keyed by its SMBIOS UUID (or, when
// the firmware gives none, by its first MAC address).
type Device struct {
	ID           string    `json:"id"`
	UUID         string    `json:"uuid,omitempty"`
	MACs         []string  `json:"macs,omitempty"`
	SerialNumber string    `json:"serialNumber,omitempty"`
	Make         string    `json:"make,omitempty"`
	Model        string    `json:"model,omitempty"`
	Name         string    `json:"name,omitempty"`
	Disks        []Disk    `json:"disks,omitempty"` // as the agent gathered them
	FirstSeen    time.Time `json:"firstSeen"`
	LastSeen     time.Time `json:"lastSeen"`
}

// Disk is one fixed disk of a device.
type Disk struct {
	Name  string `json:"name"` // the kernel's name: sda, nvme0n1
	Model string `json:"model,omitempty"`
	Size  int64  `json:"size"` // bytes
}

// NextBoot is what an operator set a device's network boot menu to
// start on.
type NextBoot string

const (
	NextBootAuto   NextBoot = "auto"   // local disk after a successful run, else deploy
	NextBootDeploy NextBoot = "deploy" // always the Imprint boot image
	NextBootLocal  NextBoot = "local"  // always the local disk
)

// Valid reports whether nb is one of the choices.
func (nb NextBoot) Valid() bool {
	return nb == NextBootAuto || nb == NextBootDeploy || nb == NextBootLocal
}

// BootState is what decides a machine's network boot (Store.BootState).
type BootState struct {
	NextBoot NextBoot // the operator's choice; NextBootAuto when none
	LastRun  RunState // the newest run's state; "" when the machine has none
}

// RunState is the lifecycle of a Run.
type RunState string

const (
	RunPending   RunState = "pending"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunLost      RunState = "lost" // the agent fell silent past the timeout
	RunCanceled  RunState = "canceled"
)

// Terminal reports whether no more events are expected.
func (s RunState) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunLost || s == RunCanceled
}

// Run is one execution of a task-sequence version on a device.
type Run struct {
	ID             string       `json:"id"`
	DeviceID       string       `json:"deviceId"`
	TaskSequenceID string       `json:"taskSequenceId"`
	VersionNo      int          `json:"versionNo"`
	SessionID      string       `json:"sessionId,omitempty"`
	State          RunState     `json:"state"`
	CurrentStep    string       `json:"currentStep,omitempty"`
	Steps          []StepResult `json:"steps"`
	StartedAt      time.Time    `json:"startedAt"`
	UpdatedAt      time.Time    `json:"updatedAt"`
	EndedAt        *time.Time   `json:"endedAt,omitempty"`
	Error          string       `json:"error,omitempty"`
	// Progress is the byte count of the current download or image write,
	// from the agent's latest progress event; nil between steps.
	Progress *RunProgress `json:"progress,omitempty"`
}

// RunProgress is how far a long transfer of the current step has got.
type RunProgress struct {
	Name  string    `json:"name"` // what is transferred (content item, image)
	Done  int64     `json:"bytesDone"`
	Total int64     `json:"bytesTotal"` // 0: unknown
	Time  time.Time `json:"time"`
}

// StepOutcome is what happened to one step of a run.
type StepOutcome string

const (
	StepRunning   StepOutcome = "running"
	StepSucceeded StepOutcome = "succeeded"
	StepFailed    StepOutcome = "failed"   // failed and stopped the sequence
	StepIgnored   StepOutcome = "ignored"  // failed under continueOnError
	StepSkipped   StepOutcome = "skipped"  // condition false
	StepDisabled  StepOutcome = "disabled" // not enabled
)

// StepResult is the server's record of one step in a run.
type StepResult struct {
	StepID     string      `json:"stepId"`
	Name       string      `json:"name"`
	Path       string      `json:"path"` // group names and step name joined by "/"
	Outcome    StepOutcome `json:"outcome"`
	ExitCode   *int        `json:"exitCode,omitempty"`
	Message    string      `json:"message,omitempty"`
	OutputTail string      `json:"outputTail,omitempty"`
	StartedAt  time.Time   `json:"startedAt"`
	Duration   float64     `json:"durationSeconds"`
	// Downloads says where the bytes of each content the step downloaded
	// came from.
	Downloads []Download `json:"downloads,omitempty"`
}

// Download is one content download of a step and how many of its bytes
// came from each source.
type Download struct {
	Content   string `json:"content"` // ID:VERSION
	Name      string `json:"name,omitempty"`
	Bytes     int64  `json:"bytes"`               // in all
	Server    int64  `json:"server,omitempty"`    // the imprint server, over HTTPS
	Relay     int64  `json:"relay,omitempty"`     // a branch relay's cache
	Peers     int64  `json:"peers,omitempty"`     // other machines (peer sharing)
	Multicast int64  `json:"multicast,omitempty"` // a multicast session
	// Refused counts chunks peers sent that failed verification (fetched
	// again elsewhere).
	Refused int `json:"refusedChunks,omitempty"`
}

// maxDownloads bounds the downloads one step's record keeps.
const maxDownloads = 64

// Validate checks a download an agent reported.
func (d Download) Validate() error {
	switch {
	case len(d.Content) > 200 || len(d.Name) > 200:
		return Errorf(KindInvalid, "download: content or name longer than 200 characters")
	case d.Bytes < 0 || d.Server < 0 || d.Relay < 0 || d.Peers < 0 || d.Multicast < 0 || d.Refused < 0:
		return Errorf(KindInvalid, "download %s: negative count", d.Content)
	}
	return nil
}

// ValidateDownloads checks a step's reported downloads.
func ValidateDownloads(ds []Download) error {
	if len(ds) > maxDownloads {
		return Errorf(KindInvalid, "%d downloads in one step; at most %d", len(ds), maxDownloads)
	}
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// RunEvent is one report from an agent, in order.
type RunEvent struct {
	Seq     int64     `json:"seq"`
	RunID   string    `json:"runId"`
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // "step-start", "step-end", "log", "progress", "run-end"
	StepID  string    `json:"stepId,omitempty"`
	Message string    `json:"message,omitempty"`
	Data    []byte    `json:"data,omitempty"` // JSON payload of the event type
}

// Session is what every authentication mode ends in. Only the SHA-256 of
// the bearer token is stored.
type Session struct {
	ID             string     `json:"id"`
	TokenHash      []byte     `json:"-"`
	Method         string     `json:"method"` // anonymous, certificate, entra, passcode
	DeviceID       string     `json:"deviceId"`
	TaskSequenceID string     `json:"taskSequenceId,omitempty"` // bound once a sequence is picked
	Subject        string     `json:"subject,omitempty"`        // Entra user or certificate subject
	Source         string     `json:"source"`                   // client address
	Generation     int        `json:"passcodeGeneration,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	LastUsedAt     time.Time  `json:"lastUsedAt"`
	ExpiresAt      time.Time  `json:"expiresAt"` // absolute expiry
	RevokedAt      *time.Time `json:"revokedAt,omitempty"`
}

// AuditEvent is one entry of the append-only, hash-chained audit log.
// Hash = SHA-256(PrevHash || canonical JSON of the entry without Hash).
type AuditEvent struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`
	Action   string            `json:"action"`  // e.g. auth.attempt, passcode.set, session.revoke
	Outcome  string            `json:"outcome"` // success, failure, throttled, alert
	Actor    string            `json:"actor,omitempty"`
	Source   string            `json:"source,omitempty"`
	DeviceID string            `json:"deviceId,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prevHash"`
	Hash     string            `json:"hash"`
}
