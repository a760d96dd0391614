package wire

import (
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// EntraSettings is what the agent needs for the Entra ID device-code flow.
type EntraSettings struct {
	Authority string `json:"authority"`
	TenantID  string `json:"tenantId"`
	ClientID  string `json:"clientId"`
	Scope     string `json:"scope"`
}

// AuthMethods is the answer of GET /v1/auth/methods.
type AuthMethods struct {
	Methods          []string       `json:"methods"`
	BootImageMethods []string       `json:"bootImageMethods"`
	Entra            *EntraSettings `json:"entra,omitempty"`
	Hint             string         `json:"hint,omitempty"`
}

// DeviceInfo is the identity a machine claims in a token request or when
// it starts a run. The server checks it (deploy.Device.Normalize) and
// keeps the rest of the device record (ID, first and last seen) itself.
type DeviceInfo struct {
	UUID         string   `json:"uuid,omitempty"`
	MACs         []string `json:"macs,omitempty"`
	SerialNumber string   `json:"serialNumber,omitempty"`
	Make         string   `json:"make,omitempty"`
	Model        string   `json:"model,omitempty"`
	Name         string   `json:"name,omitempty"`
	// Disks are the machine's fixed disks (devices page inventory).
	Disks []deploy.Disk `json:"disks,omitempty"`
}

// Device returns the claimed identity as a device record (no ID yet).
func (d DeviceInfo) Device() deploy.Device {
	return deploy.Device{UUID: d.UUID, MACs: d.MACs, SerialNumber: d.SerialNumber, Make: d.Make,
		Model: d.Model, Name: d.Name, Disks: d.Disks}
}

// TokenRequest is the body of POST /v1/auth/token.
type TokenRequest struct {
	Method      string     `json:"method"`
	Passcode    string     `json:"passcode,omitempty"`
	AccessToken string     `json:"accessToken,omitempty"`
	Device      DeviceInfo `json:"device"`
}

// TokenAnswer is a new session.
type TokenAnswer struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	SessionID string    `json:"sessionId"`
}

// CreateRunRequest is the body of POST /v1/runs.
type CreateRunRequest struct {
	TaskSequenceID string     `json:"taskSequenceId"`
	VersionNo      int        `json:"versionNo"`
	Device         DeviceInfo `json:"device"`
}

// The types of an agent's run events.
const (
	EventStepStart = "step-start"
	EventStepEnd   = "step-end"
	EventLog       = "log"
	EventProgress  = "progress"
	EventRunEnd    = "run-end"
)

// EventTypes lists every event type, in the order docs/api.md gives them.
var EventTypes = []string{EventStepStart, EventStepEnd, EventLog, EventProgress, EventRunEnd}

// KnownEvent reports whether typ is one of EventTypes.
func KnownEvent(typ string) bool {
	switch typ {
	case EventStepStart, EventStepEnd, EventLog, EventProgress, EventRunEnd:
		return true
	}
	return false
}

// Event is one report of the agent (POST /v1/runs/{id}/events takes an
// array of them); the server stores it as a deploy.RunEvent's Data.
type Event struct {
	Type            string             `json:"type"`
	Time            time.Time          `json:"time"`
	StepID          string             `json:"stepId,omitempty"`
	Path            string             `json:"path,omitempty"`
	Name            string             `json:"name,omitempty"`
	Outcome         deploy.StepOutcome `json:"outcome,omitempty"`
	ExitCode        *int               `json:"exitCode,omitempty"`
	Message         string             `json:"message,omitempty"`
	OutputTail      string             `json:"outputTail,omitempty"`
	DurationSeconds float64            `json:"durationSeconds,omitempty"`
	State           deploy.RunState    `json:"state,omitempty"`
	// BytesDone and BytesTotal (progress events) count a download or an
	// image write, so the console can show it.
	BytesDone  int64 `json:"bytesDone,omitempty"`
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// Downloads (step-end) says where the step's content came from.
	Downloads []deploy.Download `json:"downloads,omitempty"`
}
