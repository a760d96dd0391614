package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/netlimit"
	"github.com/imprint-osd/imprint/internal/wire"
)

// maxDocumentBytes bounds every JSON request body; content uploads are
// streamed and bounded by the disk instead.
const maxDocumentBytes = 16 << 20

// handlerFunc is an HTTP handler that returns its error; adapt maps it to
// a JSON error response with the status of its Kind.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

var statusOf = map[deploy.Kind]int{
	deploy.KindInvalid:      http.StatusBadRequest,
	deploy.KindUnauthorized: http.StatusUnauthorized,
	deploy.KindForbidden:    http.StatusForbidden,
	deploy.KindNotFound:     http.StatusNotFound,
	deploy.KindConflict:     http.StatusConflict,
	deploy.KindTooLarge:     http.StatusRequestEntityTooLarge,
	deploy.KindThrottled:    http.StatusTooManyRequests,
	deploy.KindUnavailable:  http.StatusServiceUnavailable,
	deploy.KindInternal:     http.StatusInternalServerError,
}

func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError sends the caller-safe message and logs the detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = deploy.Errorf(deploy.KindTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	slow := errors.Is(err, netlimit.ErrSlowBody)
	if slow {
		err = deploy.Errorf(deploy.KindInvalid, "%v", err)
	}
	kind := deploy.ErrorKind(err)
	status, ok := statusOf[kind]
	if !ok {
		status, kind = http.StatusInternalServerError, deploy.KindInternal
	}
	if slow {
		status = http.StatusRequestTimeout // the connection is closed after it
	}
	body := wire.ErrorBody{Error: wire.ErrorDetail{Code: kind, Message: deploy.ErrorMessage(err)}}
	var de *deploy.Error
	if errors.As(err, &de) {
		body.Error.Fields = de.Fields
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decodeJSON reads one JSON document of at most maxDocumentBytes into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxDocumentBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, netlimit.ErrSlowBody) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return deploy.Errorf(deploy.KindInvalid, "request body is empty")
		}
		return deploy.Errorf(deploy.KindInvalid, "request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return deploy.Errorf(deploy.KindInvalid, "request body has data after the JSON document")
	}
	return nil
}
