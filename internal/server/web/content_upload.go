package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Content changes: create an item, add a version whose bytes the browser
// uploads (static/upload.js), change a version's status.
//
// The upload is the raw file as the request body (not a multipart form):
// the CSRF token comes in the X-CSRF-Token header, the version's fields
// in the query, and the body goes on, unread by the console, to the
// admin API's POST /admin/v1/content/{id}/versions, which streams it into
// the blob store hashing as it goes (content.Blobs.Put, PutTar for a
// Folder item). Nothing holds the file in memory, whatever its size. A
// Folder version is uploaded as a tar archive of the folder (the form
// says so); zip is not accepted.

// defaultMaxUpload bounds one console upload when Deps.MaxUpload is zero.
const defaultMaxUpload = 64 << 30

// defaultUploads is how many console uploads may run at once (the rest
// are told to wait) when Deps.Uploads is zero.
const defaultUploads = 4

type contentItemForm struct {
	Name, Description string
	Type              deploy.ContentType
	Purpose           deploy.Purpose
	Tags              []string
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func optional(s string) *string {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return &s
}

// contentCreate creates an item (no version yet) through the admin API.
func (c *Console) contentCreate(w http.ResponseWriter, r *http.Request) {
	item := deploy.ContentItem{
		Name: strings.TrimSpace(r.PostFormValue("name")), Description: optional(r.PostFormValue("description")),
		Type: deploy.ContentType(r.PostFormValue("type")), Purpose: deploy.Purpose(r.PostFormValue("purpose")),
		Tags: splitList(r.PostFormValue("tags")),
	}
	var created deploy.ContentItem
	if code, err := c.adminJSON(r, http.MethodPost, "/admin/v1/content", &item, &created); err != nil {
		c.fail(w, r, code, fmt.Errorf("create content item: %w", err))
		return
	}
	back(w, r, "/content/"+url.PathEscape(created.ID), fmt.Sprintf("Created %s: add its first version below.", created.Name))
}

// contentItem shows one item: its versions, the form to add one and the
// sequences that use it.
func (c *Console) contentItem(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "content item")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	item, err := c.d.Store.ContentItem(r.Context(), id)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	seqs, err := c.d.Store.TaskSequences(r.Context())
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	c.render(w, r, "content_item", sessionOf(r), item.Name, map[string]any{
		"Item": item, "UsedBy": usedBy(seqs, item.ID), "MaxUpload": humanBytes(c.maxUpload()),
		"Statuses": []deploy.Status{deploy.StatusInDevelopment, deploy.StatusActive, deploy.StatusDeprecated},
	})
}

func (c *Console) maxUpload() int64 {
	if c.d.MaxUpload > 0 {
		return c.d.MaxUpload
	}
	return defaultMaxUpload
}

// versionFromQuery is the new version's fields as the upload form sent
// them in the query string.
func versionFromQuery(q url.Values) deploy.ContentVersion {
	v := deploy.ContentVersion{
		Status: deploy.Status(q.Get("status")), Description: optional(q.Get("description")),
		InstallationCommandLine: optional(q.Get("installationCommandLine")), InstallationWorkingDirectory: optional(q.Get("installationWorkingDirectory")),
		InstallationSuccessCodes: optional(q.Get("installationSuccessCodes")), InstallationDependencies: splitList(q.Get("installationDependencies")),
		DriverManufacturer: optional(q.Get("driverManufacturer")), DriverModel: optional(q.Get("driverModel")),
		ExternalURL: optional(q.Get("externalURL")), Tags: splitList(q.Get("tags")),
	}
	return v
}

// uploadAnswer is what upload.js reads: the new version or the error.
type uploadAnswer struct {
	OK        bool   `json:"ok"`
	Message   string `json:"message"`
	VersionNo int    `json:"versionNo,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Next      string `json:"next,omitempty"` // page to show after
}

func answer(w http.ResponseWriter, status int, a uploadAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(a)
}

// contentUpload adds a version: the request body is the file (or the
// folder's tar), streamed on to the admin API.
func (c *Console) contentUpload(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "content item")
	if err != nil {
		answer(w, http.StatusBadRequest, uploadAnswer{Message: deploy.ErrorMessage(err)})
		return
	}
	limit := c.maxUpload()
	if r.ContentLength > limit {
		answer(w, http.StatusRequestEntityTooLarge, uploadAnswer{Message: fmt.Sprintf("the file is %s; the console takes at most %s (use `imprint content version` on the server for more)", humanBytes(r.ContentLength), humanBytes(limit))})
		return
	}
	select {
	case c.uploads <- struct{}{}:
		defer func() { <-c.uploads }()
	default:
		w.Header().Set("Retry-After", "30")
		answer(w, http.StatusTooManyRequests, uploadAnswer{Message: fmt.Sprintf("%d uploads are already running: try again when one has finished", cap(c.uploads))})
		return
	}
	meta, err := json.Marshal(versionFromQuery(r.URL.Query()))
	if err != nil {
		answer(w, http.StatusInternalServerError, uploadAnswer{Message: err.Error()})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	code, body := c.adminCall(r, http.MethodPost, "/admin/v1/content/"+url.PathEscape(id)+"/versions?meta="+url.QueryEscape(string(meta)), "application/octet-stream", r.Body)
	if code >= 300 {
		answer(w, code, uploadAnswer{Message: "upload: " + apiMessage(body)})
		return
	}
	var v deploy.ContentVersion
	if err := json.Unmarshal(body, &v); err != nil {
		answer(w, http.StatusInternalServerError, uploadAnswer{Message: "upload: " + err.Error()})
		return
	}
	msg := fmt.Sprintf("Version %d stored: %s, SHA-256 %s.", v.VersionNo, humanBytes(v.ContentSize), v.SHA256)
	answer(w, http.StatusCreated, uploadAnswer{OK: true, Message: msg, VersionNo: v.VersionNo, SHA256: v.SHA256, Size: v.ContentSize,
		Next: "/content/" + url.PathEscape(id) + "?flash=" + url.QueryEscape(msg)})
}

// contentVersionStatus changes one version's status (PATCH in the admin
// API).
func (c *Console) contentVersionStatus(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "content item")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	st := r.PostFormValue("status")
	path := "/admin/v1/content/" + url.PathEscape(id) + "/versions/" + url.PathEscape(r.PathValue("no"))
	if code, err := c.adminJSON(r, http.MethodPatch, path, map[string]string{"status": st}, nil); err != nil {
		c.fail(w, r, code, fmt.Errorf("set status: %w", err))
		return
	}
	back(w, r, "/content/"+url.PathEscape(id), fmt.Sprintf("Version %s is now %s.", r.PathValue("no"), st))
}
