package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Severity of a log line, as CMTrace numbers it.
type Severity int

const (
	SevInfo    Severity = 1
	SevWarning Severity = 2
	SevError   Severity = 3
)

// CMTraceLine formats one entry in the CMTrace (ConfigMgr) log format. t is
// written in UTC with a zero bias.
func CMTraceLine(t time.Time, component, msg string, sev Severity, thread int) string {
	t = t.UTC()
	return fmt.Sprintf(`<![LOG[%s]LOG]!><time="%s+000" date="%s" component="%s" context="" type="%d" thread="%d" file="">`,
		strings.ReplaceAll(msg, "]LOG]!>", "]LOG]!&gt;"), t.Format("15:04:05.000"), t.Format("01-02-2006"),
		strings.ReplaceAll(component, `"`, "'"), sev, thread)
}

// Logs writes the agent's log twice under Dir: imprint-agent.log (plain
// text) and imprint-agent.cmtrace.log (CMTrace format). Its Writer splits
// step output into lines. It is safe for concurrent use.
type Logs struct {
	Dir string
	Now func() time.Time
	// Echo, when set, also receives every plain line (e.g. stderr).
	Echo io.Writer

	mu      sync.Mutex
	plain   *os.File
	cm      *os.File
	partial map[string]string
}

// OpenLogs opens (appending) the log files in dir.
func OpenLogs(dir string) (*Logs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open logs: %w", err)
	}
	plain, err := os.OpenFile(filepath.Join(dir, "imprint-agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open logs: %w", err)
	}
	cm, err := os.OpenFile(filepath.Join(dir, "imprint-agent.cmtrace.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		plain.Close()
		return nil, fmt.Errorf("open logs: %w", err)
	}
	return &Logs{Dir: dir, plain: plain, cm: cm, partial: map[string]string{}}, nil
}

// Close closes the files.
func (l *Logs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err1 := l.plain.Close()
	err2 := l.cm.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

func (l *Logs) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Log writes one message (each of its lines) from component.
func (l *Logs) Log(component string, sev Severity, format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(msg, "\n") {
		l.line(component, sev, line)
	}
}

func (l *Logs) line(component string, sev Severity, line string) {
	t := l.now()
	level := map[Severity]string{SevInfo: "INFO", SevWarning: "WARN", SevError: "ERROR"}[sev]
	plain := fmt.Sprintf("%s %-5s %s: %s\n", t.UTC().Format("2006-01-02T15:04:05.000Z"), level, component, line)
	_, _ = io.WriteString(l.plain, plain)
	_, _ = io.WriteString(l.cm, CMTraceLine(t, component, line, sev, 1)+"\n")
	if l.Echo != nil {
		_, _ = io.WriteString(l.Echo, plain)
	}
}

// Writer returns a writer whose complete lines are logged as component.
func (l *Logs) Writer(component string) io.Writer { return lineWriter{l: l, c: component} }

type lineWriter struct {
	l *Logs
	c string
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	s := w.l.partial[w.c] + string(p)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		w.l.line(w.c, SevInfo, strings.TrimRight(s[:i], "\r"))
		s = s[i+1:]
	}
	w.l.partial[w.c] = s
	return len(p), nil
}

// Bundle returns a .tar.gz of the files in dir (not below).
func Bundle(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle logs: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("bundle logs: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
