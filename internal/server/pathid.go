package server

import (
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// pathID is the request's {id} in the one form the stores hold
// (deploy.ParseID: trimmed, braces dropped, lowercase), or a KindInvalid
// error (400 in the standard error shape) when it is not a GUID. Every
// handler that looks up a task sequence, content item, step definition or
// run by its path reads the id here and nowhere else; what names the kind
// of id in the message. pathid_guard_test.go holds handlers to it.
func pathID(r *http.Request, what string) (string, error) {
	return deploy.ParseID(what, r.PathValue("id"))
}

// pathDeviceID is pathID for a device's {id}: its SMBIOS UUID or mac- key
// in any case, or a bare MAC address (deploy.ParseDeviceID).
func pathDeviceID(r *http.Request) (string, error) {
	return deploy.ParseDeviceID(r.PathValue("id"))
}
