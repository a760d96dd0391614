package web

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// maxLogView bounds a log bundle the console unpacks to show (bigger ones
// are still downloadable) and the entries shown.
const (
	maxLogView    = 64 << 20
	maxLogEntries = 20000
)

// cmtraceRE matches one CMTrace entry; the message may span lines.
var cmtraceRE = regexp.MustCompile(`(?s)<!\[LOG\[(.*?)\]LOG\]!><time="([^"]*)" date="([^"]*)" component="([^"]*)" context="[^"]*" type="(\d)"`)

// logEntry is one CMTrace line as the viewer shows it.
type logEntry struct {
	Time, Date, Component, Message string
	Severity                       string // info, warning, error
}

type logFile struct {
	Name      string
	Size      int64
	Entries   []logEntry
	Truncated bool
}

// parseBundle reads a log bundle (.tar.gz) and parses each CMTrace file
// in it; other files are listed by name and size.
func parseBundle(r io.Reader) ([]logFile, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("log bundle is not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	var files []logFile
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("log bundle: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		f := logFile{Name: h.Name, Size: h.Size}
		if strings.HasSuffix(h.Name, ".cmtrace.log") || strings.HasSuffix(h.Name, ".cmtrace") {
			b, err := io.ReadAll(io.LimitReader(tr, maxLogView))
			if err != nil {
				return nil, fmt.Errorf("log bundle: %s: %w", h.Name, err)
			}
			for _, m := range cmtraceRE.FindAllSubmatch(b, -1) {
				if len(f.Entries) == maxLogEntries {
					f.Truncated = true
					break
				}
				sev := "info"
				switch string(m[5]) {
				case "2":
					sev = "warning"
				case "3":
					sev = "error"
				}
				f.Entries = append(f.Entries, logEntry{Message: strings.ReplaceAll(string(m[1]), "]LOG]!&gt;", "]LOG]!>"),
					Time: strings.TrimSuffix(string(m[2]), "+000"), Date: string(m[3]), Component: string(m[4]), Severity: sev})
			}
		}
		files = append(files, f)
	}
}

// runLogView shows a bundle's CMTrace log as a table, coloured by
// severity, like CMTrace.
func (c *Console) runLogView(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	id, err := pathID(r, "run")
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	code, body := c.adminCall(r, http.MethodGet, "/admin/v1/runs/"+url.PathEscape(id)+"/logs?name="+url.QueryEscape(name), "", nil)
	if code != http.StatusOK {
		c.fail(w, r, code, fmt.Errorf("%s", apiMessage(body)))
		return
	}
	if len(body) > maxLogView {
		c.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("log bundle %s is larger than %s: download it instead", name, humanBytes(maxLogView)))
		return
	}
	files, err := parseBundle(bytes.NewReader(body))
	if err != nil {
		c.fail(w, r, http.StatusUnprocessableEntity, err)
		return
	}
	c.render(w, r, "logview", sessionOf(r), "Log "+name, map[string]any{"RunID": id, "Name": name, "Files": files})
}
