package web

import (
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// pathID is the request's {id} in the one form the stores hold
// (deploy.ParseID), or a KindInvalid error (400) when it is not a GUID:
// the console's counterpart of the admin API's, so a page linked with an
// upper-case or braced id shows the same record and a stream subscribes
// under the id the server publishes.
func pathID(r *http.Request, what string) (string, error) {
	return deploy.ParseID(what, r.PathValue("id"))
}

// pathDeviceID is pathID for a device (deploy.ParseDeviceID).
func pathDeviceID(r *http.Request) (string, error) {
	return deploy.ParseDeviceID(r.PathValue("id"))
}
