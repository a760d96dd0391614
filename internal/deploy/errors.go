package deploy

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that the HTTP layer can pick a status and the
// client can map a status back. Kinds are few on purpose.
type Kind string

const (
	KindInvalid      Kind = "invalid"      // 400: the request or document is malformed or fails validation
	KindUnauthorized Kind = "unauthorized" // 401: no or bad credentials
	KindForbidden    Kind = "forbidden"    // 403: authenticated but not allowed
	KindNotFound     Kind = "not_found"    // 404
	KindConflict     Kind = "conflict"     // 409: exists already, read-only, in use
	KindTooLarge     Kind = "too_large"    // 413
	KindThrottled    Kind = "throttled"    // 429
	KindUnavailable  Kind = "unavailable"  // 503: e.g. a feature not configured
	KindInternal     Kind = "internal"     // 500
)

// Error is the one domain error type. Message is safe to show to a caller;
// Err (if any) is the detail for the log only.
type Error struct {
	Kind    Kind
	Message string
	Err     error
	// Fields optionally lists per-field problems (validation).
	Fields []FieldError
}

// FieldError names one problem in a document: the step (by path, e.g.
// "Windows PE/Format disk") and the field, with a human message.
type FieldError struct {
	Step    string `json:"step,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (f FieldError) String() string {
	switch {
	case f.Step != "" && f.Field != "":
		return fmt.Sprintf("step %q: %s: %s", f.Step, f.Field, f.Message)
	case f.Step != "":
		return fmt.Sprintf("step %q: %s", f.Step, f.Message)
	case f.Field != "":
		return fmt.Sprintf("%s: %s", f.Field, f.Message)
	}
	return f.Message
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns a domain error of the given kind with a formatted, caller-safe message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns a domain error that keeps err as log-only detail.
func Wrap(kind Kind, err error, msg string) *Error {
	return &Error{Kind: kind, Message: msg, Err: err}
}

// ErrorKind returns the Kind of err, KindInternal for foreign errors and ""
// for nil.
func ErrorKind(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorMessage returns the caller-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsNotFound reports whether err is of KindNotFound.
func IsNotFound(err error) bool { return ErrorKind(err) == KindNotFound }
