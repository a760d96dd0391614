package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
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

type scriptRequest struct {
	ScriptName     string            `json:"scriptName"`
	Variables      map[string]string `json:"variables"`
	TimeoutSeconds int               `json:"timeoutSeconds"`
}

type scriptResult struct {
	Variables map[string]string `json:"variables"`
	Output    string            `json:"output"`
	ExitCode  int               `json:"exitCode"`
}

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

// machineServerScript runs a script from the scripts folder (only a plain
// file name there) with the run's variables, bounded in time and output,
// and returns the variables it printed as NAME=VALUE lines.
func (s *Server) machineServerScript(w http.ResponseWriter, r *http.Request) error {
	run, err := s.ownRun(r)
	if err != nil {
		return err
	}
	var req scriptRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !scriptName.MatchString(req.ScriptName) {
		return deploy.Errorf(deploy.KindInvalid, "scriptName: %q must be a plain file name in the server's scripts folder", req.ScriptName)
	}
	dir := s.cfg.ScriptsDir
	if dir == "" {
		dir = filepath.Join(s.cfg.DataDir, "scripts")
	}
	path := filepath.Join(dir, req.ScriptName)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return deploy.Errorf(deploy.KindNotFound, "server-side script %q not found in %s", req.ScriptName, dir)
	}
	timeout := defaultScriptRun
	if req.TimeoutSeconds > 0 {
		timeout = min(time.Duration(req.TimeoutSeconds)*time.Second, maxScriptRun)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, path)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"IMPRINT_RUN_ID=" + run.ID, "IMPRINT_DEVICE_ID=" + run.DeviceID}
	names := make([]string, 0, len(req.Variables))
	for k := range req.Variables {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if varName.MatchString(k) && !strings.ContainsAny(req.Variables[k], "\x00") {
			cmd.Env = append(cmd.Env, "IMPRINT_VAR_"+strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k))+"="+req.Variables[k])
		}
	}
	in, _ := json.Marshal(req.Variables)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr capWriter
	stdout.max, stderr.max = maxScriptOutput, maxScriptOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	res := scriptResult{Variables: map[string]string{}, Output: stdout.buf.String() + stderr.buf.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return deploy.Errorf(deploy.KindUnavailable, "server-side script %s ran longer than %s and was stopped", req.ScriptName, timeout)
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	case err != nil:
		return deploy.Wrap(deploy.KindInternal, err, "server-side script "+req.ScriptName+" could not start")
	}
	sc := bufio.NewScanner(bytes.NewReader(stdout.buf.Bytes()))
	sc.Buffer(make([]byte, 64<<10), maxScriptOutput)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && varName.MatchString(k) && !strings.HasPrefix(k, "_") {
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
