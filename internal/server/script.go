package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

const (
	maxScriptOutput  = 1 << 20
	defaultScriptRun = 60 * time.Second
	maxScriptRun     = 10 * time.Minute
)

var (
	scriptName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	varName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)
)

// capWriter keeps at most max bytes and notes that it cut.
type capWriter struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(p) {
		c.cut = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

// machineServerScript runs a script from the scripts folder with the run's
// variables, bounded in time and output, and returns the variables it
// printed as NAME=VALUE lines. Only a script a Run server-side script step
// of the session's sequence names may run; any other answers exactly like
// one that does not exist. Scripts running at once are capped per session
// and per server, and a script is killed (its whole process group) when
// its client goes away.
func (s *Server) machineServerScript(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess := sessionFrom(ctx)
	run, err := s.ownRun(r)
	if err != nil {
		return err
	}
	var req wire.ScriptRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	// Read the body to its end so that the server notices at once when
	// the client goes away (and the script is stopped).
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1))
	if !scriptName.MatchString(req.ScriptName) {
		return deploy.Errorf(deploy.KindInvalid, "scriptName: %q must be a plain file name in the server's scripts folder", req.ScriptName)
	}
	dir := s.cfg.ScriptsDir
	if dir == "" {
		dir = filepath.Join(s.cfg.DataDir, "scripts")
	}
	notFound := deploy.Errorf(deploy.KindNotFound, "server-side script %q not found", req.ScriptName)
	sc, err := s.scope(ctx, sess)
	if err != nil {
		return err
	}
	if !sc.allowsScript(req.ScriptName) {
		return notFound
	}
	path := filepath.Join(dir, req.ScriptName)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return notFound
	}
	if err := s.checkScriptVariables(req.Variables); err != nil {
		return err
	}
	timeout := defaultScriptRun
	if req.TimeoutSeconds > 0 {
		timeout = min(time.Duration(req.TimeoutSeconds)*time.Second, maxScriptRun)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	release, err := s.use.startScript(w, sess, cancel, s.now())
	if err != nil {
		return err
	}
	defer release()

	cmd := exec.CommandContext(ctx, path)
	// Its own process group, killed whole: a script's children do not
	// outlive it when it is stopped.
	ownProcessGroup(cmd)
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"IMPRINT_RUN_ID=" + run.ID, "IMPRINT_DEVICE_ID=" + run.DeviceID}
	names := make([]string, 0, len(req.Variables))
	for k := range req.Variables {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := req.Variables[k]
		// A value too long for one environment entry is on stdin only.
		if varName.MatchString(k) && !strings.ContainsAny(v, "\x00") && len(v) <= maxScriptEnvValue {
			cmd.Env = append(cmd.Env, "IMPRINT_VAR_"+strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k))+"="+v)
		}
	}
	in, _ := json.Marshal(req.Variables)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr capWriter
	stdout.max, stderr.max = maxScriptOutput, maxScriptOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		// What the script left running in the background goes with it.
		_ = killProcessGroup(cmd)
	}
	res := wire.ScriptResult{Variables: map[string]string{}, Output: stdout.buf.String() + stderr.buf.String()}
	var exitErr *exec.ExitError
	switch {
	case r.Context().Err() != nil:
		s.log.Info("server-side script stopped: its client went away", "run", run.ID, "script", req.ScriptName)
		return deploy.Errorf(deploy.KindUnavailable, "server-side script %s was stopped: the client went away", req.ScriptName)
	case ctx.Err() == context.DeadlineExceeded:
		return deploy.Errorf(deploy.KindUnavailable, "server-side script %s ran longer than %s and was stopped", req.ScriptName, timeout)
	case ctx.Err() != nil:
		return deploy.Errorf(deploy.KindUnavailable, "server-side script %s was stopped: the server is shutting down", req.ScriptName)
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	case err != nil:
		return deploy.Wrap(deploy.KindInternal, err, "server-side script "+req.ScriptName+" could not start")
	}
	lines := bufio.NewScanner(bytes.NewReader(stdout.buf.Bytes()))
	lines.Buffer(make([]byte, 64<<10), maxScriptOutput)
	for lines.Scan() {
		if k, v, ok := strings.Cut(lines.Text(), "="); ok && varName.MatchString(k) && !strings.HasPrefix(k, "_") {
			res.Variables[k] = v
		}
	}
	if stdout.cut || stderr.cut {
		res.Output += "\n[output cut at 1 MiB]"
	}
	s.log.Info("server-side script ran", "run", run.ID, "script", req.ScriptName, "exit", res.ExitCode, "variables", len(res.Variables))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// maxScriptVariables bounds how many variables one script gets;
// maxScriptEnvValue is the longest value also put in its environment
// (Linux refuses an entry over 128 KiB).
const (
	maxScriptVariables = 4096
	maxScriptEnvValue  = 64 << 10
)

// checkScriptVariables refuses more variables, or more bytes of them, than
// one script may get (413).
func (s *Server) checkScriptVariables(vars map[string]string) error {
	if len(vars) > maxScriptVariables {
		return deploy.Errorf(deploy.KindTooLarge, "variables: %d variables; a server-side script gets at most %d", len(vars), maxScriptVariables)
	}
	n := 0
	for k, v := range vars {
		n += len(k) + len(v)
	}
	if limit := s.use.q.ScriptVariableBytes; n > limit {
		return deploy.Errorf(deploy.KindTooLarge, "variables: %s of names and values; a server-side script gets at most %s", sizeText(int64(n)), sizeText(int64(limit)))
	}
	return nil
}

// allowsScript reports whether a Run server-side script step of the scope
// names script. A ScriptName with %VAR% references names every script
// that the references, each standing for one or more file-name
// characters, can make of it.
func (sc *sessionScope) allowsScript(script string) bool {
	if sc.scripts[script] {
		return true
	}
	for name := range sc.scripts {
		if strings.Contains(name, "%") && scriptPattern(name).MatchString(script) {
			return true
		}
	}
	return false
}

var varRef = regexp.MustCompile(`%[^%]+%`)

// scriptPattern turns a ScriptName with %VAR% references into an anchored
// pattern.
func scriptPattern(name string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range varRef.FindAllStringIndex(name, -1) {
		b.WriteString(regexp.QuoteMeta(name[last:m[0]]))
		b.WriteString(`[A-Za-z0-9._-]+`)
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(name[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
