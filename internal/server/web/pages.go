package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// view is what every page template gets.
type view struct {
	Title      string
	User       string
	Role       deploy.Role
	CSRF       string
	CanOperate bool
	IsAdmin    bool
	Flash      string
	Data       any
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"stamp": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.Local().Format("2006-01-02 15:04:05")
		},
		"seconds": func(f float64) string { return (time.Duration(f * float64(time.Second))).Round(time.Second).String() },
		"bytes":   humanBytes,
		// conadmin: devices' next-boot form, content dates.
		"nbArgs": func(v view, id string, cur deploy.NextBoot, from string) map[string]any {
			return map[string]any{"V": v, "ID": id, "Current": cur, "From": from}
		},
		"unix": func(sec int64) string {
			if sec == 0 {
				return "-"
			}
			return time.Unix(sec, 0).Local().Format("2006-01-02 15:04:05")
		},
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// render executes page into a buffer first, so a template error is a 500
// and never half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, page string, s *session, title string, data any) {
	v := view{Title: title, Data: data, Flash: r.URL.Query().Get("flash")}
	if s != nil {
		v.User, v.Role, v.CSRF = s.user, s.role, s.csrf
		v.CanOperate, v.IsAdmin = s.role.AtLeast(deploy.RoleOperator), s.role == deploy.RoleAdmin
	}
	var buf bytes.Buffer
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.d.Log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// fail shows an error page with the admin API's message.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status < 400 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	c.render(w, r, "error", sessionOf(r), "Error", map[string]string{"Message": err.Error()})
}

// back redirects to path with a one-line message for the next page.
func back(w http.ResponseWriter, r *http.Request, path, flash string) {
	http.Redirect(w, r, path+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
}

// Runs.

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	d, err := c.dashboardData(r)
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	c.render(w, r, "dashboard", sessionOf(r), "Runs", d)
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "run")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	d, err := c.runData(r, id)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	c.render(w, r, "run", sessionOf(r), "Run "+d.Run.ID, d)
}

func statusOf(err error) int {
	switch deploy.ErrorKind(err) {
	case deploy.KindNotFound:
		return http.StatusNotFound
	case deploy.KindInvalid:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// runLog streams one uploaded log bundle from the admin API (with Range
// support, without holding it in memory); an error is the API's JSON.
func (c *Console) runLog(w http.ResponseWriter, r *http.Request) {
	ctx := c.d.WithActor(r.Context(), actorName(sessionOf(r).user))
	req := httptest.NewRequestWithContext(ctx, http.MethodGet,
		"/admin/v1/runs/"+url.PathEscape(r.PathValue("id"))+"/logs?name="+url.QueryEscape(r.PathValue("name")), nil)
	req.RemoteAddr = r.RemoteAddr
	for _, h := range []string{"Range", "If-Range", "If-Modified-Since", "If-None-Match"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+filepath.Base(r.PathValue("name"))+`"`)
	c.d.Admin.ServeHTTP(w, req)
}

// Task sequences.

type tsRow struct {
	ID, Name string
	Versions []deploy.TSVersion
}

func (c *Console) tsList(w http.ResponseWriter, r *http.Request) {
	all, err := c.d.Store.TaskSequences(r.Context())
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	var rows []tsRow
	for _, ts := range all {
		vs := slices.Clone(ts.Versions)
		slices.SortFunc(vs, func(a, b deploy.TSVersion) int { return b.VersionNo - a.VersionNo })
		rows = append(rows, tsRow{ID: ts.ID, Name: ts.Name, Versions: vs})
	}
	slices.SortFunc(rows, func(a, b tsRow) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	var templates []wire.Template
	if _, err := c.adminJSON(r, http.MethodGet, "/admin/v1/tasksequences/templates", nil, &templates); err != nil {
		c.fail(w, r, 500, err)
		return
	}
	c.render(w, r, "ts", sessionOf(r), "Task sequences", map[string]any{
		"Templates": templates,
		"Sequences": rows,
		"Statuses":  []deploy.Status{deploy.StatusInDevelopment, deploy.StatusActive, deploy.StatusDeprecated},
	})
}

func (c *Console) tsExport(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "task sequence")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	code, body := c.adminCall(r, http.MethodGet, "/admin/v1/tasksequences/"+id+"/export", "", nil)
	if code != http.StatusOK {
		c.fail(w, r, code, fmt.Errorf("%s", apiMessage(body)))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.json"`)
	w.Write(body)
}

// tsImport posts an uploaded DeployR JSON export to the admin API.
func (c *Console) tsImport(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("file")
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("choose a task-sequence JSON file to import"))
		return
	}
	defer f.Close()
	var res wire.SavedTaskSequence
	code, body := c.adminCall(r, http.MethodPost, "/admin/v1/tasksequences/import", "application/json", io.LimitReader(f, maxForm))
	if code >= 300 {
		c.fail(w, r, code, fmt.Errorf("import: %s", apiMessage(body)))
		return
	}
	name := ""
	if json.Unmarshal(body, &res) == nil && res.TaskSequence != nil {
		name = res.TaskSequence.Name
	}
	msg := fmt.Sprintf("Imported %s.", name)
	for _, w := range res.Warnings {
		msg += " Warning: " + w.Message + "."
	}
	back(w, r, "/ts", msg)
}

// tsNew creates a sequence from a built-in template through the admin
// API; its warnings (content still to pick) are shown.
func (c *Console) tsNew(w http.ResponseWriter, r *http.Request) {
	var res wire.SavedTaskSequence
	req := wire.NewTaskSequenceRequest{Template: r.PostFormValue("template"), Name: r.PostFormValue("name")}
	if code, err := c.adminJSON(r, http.MethodPost, "/admin/v1/tasksequences/new", req, &res); err != nil {
		c.fail(w, r, code, fmt.Errorf("new task sequence: %w", err))
		return
	}
	name := ""
	if res.TaskSequence != nil {
		name = res.TaskSequence.Name
	}
	back(w, r, "/ts", fmt.Sprintf("Created %s from the template (%d settings to fill in, such as its content).", name, len(res.Warnings)))
}

// tsStatus sets one version's status: the stored sequence with that one
// field changed, saved through the admin API (which validates it).
func (c *Console) tsStatus(w http.ResponseWriter, r *http.Request) {
	st := deploy.Status(r.PostFormValue("status"))
	if st != deploy.StatusInDevelopment && st != deploy.StatusActive && st != deploy.StatusDeprecated {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("status %q is not In_Development, Active or Deprecated", st))
		return
	}
	no, err := strconv.Atoi(r.PathValue("no"))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("version %q is not a number", r.PathValue("no")))
		return
	}
	id, err := pathID(r, "task sequence")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	ts, err := c.d.Store.TaskSequence(r.Context(), id)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	v, ok := ts.Version(no)
	if !ok {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("task sequence %s has no version %d", ts.Name, no))
		return
	}
	v.Status = st
	if code, err := c.saveTS(r, ts); err != nil { // editor.go: keeps the stored bytes of & < >
		c.fail(w, r, code, fmt.Errorf("set status: %w", err))
		return
	}
	back(w, r, "/ts", fmt.Sprintf("%s version %d is now %s.", ts.Name, no, st))
}

// Content.

func (c *Console) contentList(w http.ResponseWriter, r *http.Request) {
	items, err := c.d.Store.ContentItems(r.Context())
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	slices.SortFunc(items, func(a, b *deploy.ContentItem) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	seqs, err := c.d.Store.TaskSequences(r.Context())
	if err != nil {
		c.fail(w, r, 500, err)
		return
	}
	rows := make([]contentRow, 0, len(items))
	for _, it := range items {
		rows = append(rows, contentRow{ContentItem: it, UsedBy: usedBy(seqs, it.ID)})
	}
	c.render(w, r, "content", sessionOf(r), "Content", rows)
}

type contentRow struct {
	*deploy.ContentItem
	UsedBy []string // "Sequence v2" for each sequence version a step of which references the item
}

// usedBy names the sequence versions with a step whose content references
// ("ID:version") point at item id.
func usedBy(seqs []*deploy.TaskSequence, id string) []string {
	var out []string
	uses := func(steps []deploy.Step) bool {
		for at := range deploy.AllSteps(steps) {
			for _, val := range at.Step.ContentItems {
				for _, ref := range deploy.ContentList(val) {
					if r, err := deploy.ParseRef(ref); (err == nil && r.ID == id) || deploy.SameID(ref, id) {
						return true
					}
				}
			}
		}
		return false
	}
	for _, ts := range seqs {
		for _, v := range ts.Versions {
			if uses(v.Steps) {
				out = append(out, fmt.Sprintf("%s v%d", ts.Name, v.VersionNo))
			}
		}
	}
	slices.Sort(out)
	return out
}
