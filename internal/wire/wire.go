// Package wire holds the JSON shapes of the HTTP API that more than one
// side speaks: the server encodes and decodes them, internal/client and
// the agent (and its steps) use the same types, so the two ends cannot
// drift. It imports the standard library and internal/deploy only (a test
// checks it); domain types that travel as they are (deploy.Run,
// deploy.TaskSequence, …) stay in deploy.
package wire

import (
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is an error answer's content: the Kind as its code, the
// caller-safe message and the fields at fault.
type ErrorDetail struct {
	Code    deploy.Kind         `json:"code"`
	Message string              `json:"message"`
	Fields  []deploy.FieldError `json:"fields,omitempty"`
}

// Time is the answer of GET /v1/time: the server's clock.
type Time struct {
	Unix int64 `json:"unix"`
}

// ServerInfo is the answer of GET /admin/v1/info: where machines reach
// the server and the fingerprint of its CA.
type ServerInfo struct {
	PublicURL string `json:"publicURL"`
	BootURL   string `json:"bootURL"`
	CASHA256  string `json:"caSHA256"`
}

// TSSummary is one task sequence a session may run (GET /v1/tasksequences).
type TSSummary struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	VersionNo   int           `json:"versionNo"`
	Status      deploy.Status `json:"status"`
}

// ContentInfo is the answer of GET /v1/content/{id}/{no}.
type ContentInfo struct {
	Item    deploy.ContentItem    `json:"item"`
	Version deploy.ContentVersion `json:"version"`
}

// ScriptRequest is the body of POST /v1/runs/{id}/server-script.
type ScriptRequest struct {
	ScriptName     string            `json:"scriptName"`
	Variables      map[string]string `json:"variables"`
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"`
}

// ScriptResult is what a server-side script returned.
type ScriptResult struct {
	Variables map[string]string `json:"variables"`
	Output    string            `json:"output"`
	ExitCode  int               `json:"exitCode"`
}

// PasscodeChange is the answer to setting, generating or rotating the
// passcode.
type PasscodeChange struct {
	Generation int `json:"generation"`
	// Code is a generated passcode, shown this once.
	Code string `json:"code,omitempty"`
	// GraceUntil is when the previous passcode stops working (zero: it
	// stopped at once).
	GraceUntil time.Time `json:"graceUntil,omitzero"`
	// SessionsRevoked counts the sessions the change revoked.
	SessionsRevoked int `json:"sessionsRevoked"`
}

// PasscodeRequest is the body of PUT /admin/v1/passcode (set) and of
// POST /admin/v1/passcode/rotate. Grace is a Go duration.
type PasscodeRequest struct {
	Passcode string `json:"passcode,omitempty"`
	Grace    string `json:"grace,omitempty"`
}
