package sequence

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Step is one kind of task-sequence step (Set variable, Run command line…),
// registered under its step-definition type id.
//
// A step fails when Run returns a non-nil error other than ErrReboot; the
// exit code in Result is informational (a step maps its own success codes,
// e.g. 3010, to success). Returning ErrReboot, or setting
// Result.RebootRequested, asks the engine to stop after journaling the
// step as complete so the caller can reboot and resume.
type Step interface {
	Run(ctx context.Context, env *Env) (Result, error)
}

// StepFunc adapts a function to Step.
type StepFunc func(ctx context.Context, env *Env) (Result, error)

// Run calls f.
func (f StepFunc) Run(ctx context.Context, env *Env) (Result, error) { return f(ctx, env) }

var _ Step = StepFunc(nil)

// ErrReboot is returned by a step that has done its work and needs the
// machine restarted before the sequence goes on.
var ErrReboot = errors.New("step requested a reboot")

// ErrStopped is wrapped by Engine.Run when Engine.Stopping asked it to
// stop at a step boundary.
var ErrStopped = errors.New("stop requested")

// Result is what a step reports.
type Result struct {
	ExitCode        int
	RebootRequested bool
	Output          string // tail of the step's output, for the run record
	// Downloads says where the content the step downloaded came from.
	Downloads []deploy.Download
}

// Env is what a running step gets from the engine.
type Env struct {
	// Vars is the task-sequence environment. The step's settings are
	// already set in it as variables named after each option.
	Vars *Vars
	// Settings are the step's options with %VAR% references expanded.
	Settings map[string]string
	// Content maps each content option with a value to the local path of
	// the fetched content (the same value as variable _CONTENT-<Option>).
	Content map[string]string
	// Refs maps each content option the engine was told not to fetch
	// (Engine.StreamOption) to its reference; the step streams it itself.
	Refs map[string]deploy.Ref
	// Log receives the step's log; secret values are redacted on the way.
	Log io.Writer
	// Step is the step as stored in the task sequence.
	Step *deploy.Step
	// ID identifies the step within the run: the step ids from the top
	// level down, joined by "/" (a step of a nested sequence is prefixed by
	// the Run task sequence step that started it).
	ID string
	// Path is the same chain of step and group names, joined by "/".
	Path string
}

// Setting returns the expanded value of a step option ("" when unset).
func (e *Env) Setting(name string) string {
	if v, ok := e.Settings[name]; ok {
		return v
	}
	for k, v := range e.Settings {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Registry maps step-definition type ids (case-insensitive) to steps.
// The zero value is ready to use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Step
}

// Register adds or replaces the step for typeID.
func (r *Registry) Register(typeID string, s Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]Step)
	}
	r.m[strings.ToLower(typeID)] = s
}

// Lookup returns the step registered for typeID.
func (r *Registry) Lookup(typeID string) (Step, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.m[strings.ToLower(typeID)]
	return s, ok
}

// Loader gives the engine the child sequence of a Run task sequence step.
type Loader interface {
	TaskSequence(ctx context.Context, ref deploy.Ref) (*deploy.TSVersion, error)
}

// ContentFetcher makes a content item version available locally (download,
// verify, expand) and returns the path of its folder or file.
type ContentFetcher interface {
	Fetch(ctx context.Context, ref deploy.Ref) (localPath string, err error)
}

// redactWriter writes to w with the secrets of vars replaced. A secret is
// caught when it lies within one Write call; steps should write whole
// lines or messages.
type redactWriter struct {
	w    io.Writer
	vars *Vars
}

func (r redactWriter) Write(p []byte) (int, error) {
	s := r.vars.Redact(string(p))
	if _, err := io.WriteString(r.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// RedactingWriter returns a writer that passes text to w with every secret
// of vars replaced by Redacted (within each Write call).
func RedactingWriter(w io.Writer, vars *Vars) io.Writer {
	if w == nil {
		w = io.Discard
	}
	return redactWriter{w: w, vars: vars}
}
