package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Quotas bound what one machine session can make the server do beyond
// what its task sequence needs. Zero fields take DefaultQuotas' values.
type Quotas struct {
	// EventBytes bounds one agent event as it is sent (its JSON).
	EventBytes int
	// EventsPerRequest bounds one POST /v1/runs/{id}/events.
	EventsPerRequest int
	// EventsPerSession and EventBytesPerSession bound all the events one
	// session posts.
	EventsPerSession     int
	EventBytesPerSession int64
	// RunsPerSession bounds the runs one session creates.
	RunsPerSession int
	// LogBundleBytes bounds one uploaded log bundle; LogBundlesPerRun and
	// LogBytesPerRun bound all the bundles of one run.
	LogBundleBytes   int64
	LogBundlesPerRun int
	LogBytesPerRun   int64
	// LogBytesPerSession bounds the log bytes one session uploads, over
	// all its runs.
	LogBytesPerSession int64
	// Scripts bounds the server-side scripts running at once on the whole
	// server, ScriptsPerSession those of one session.
	Scripts           int
	ScriptsPerSession int
	// ScriptVariableBytes bounds the names and values of the variables
	// sent to one server-side script.
	ScriptVariableBytes int
}

// DefaultQuotas are generous for real deployments: a Windows run has a few
// hundred steps and some thousands of events, the agent sends at most 200
// events of at most 32 KiB per request, and a CMTrace log bundle is tens
// of MiB compressed.
func DefaultQuotas() Quotas {
	return Quotas{
		EventBytes:           64 << 10,
		EventsPerRequest:     1000,
		EventsPerSession:     100_000,
		EventBytesPerSession: 256 << 20,
		RunsPerSession:       10,
		LogBundleBytes:       256 << 20,
		LogBundlesPerRun:     16,
		LogBytesPerRun:       1 << 30,
		LogBytesPerSession:   1 << 30,
		Scripts:              16,
		ScriptsPerSession:    1,
		ScriptVariableBytes:  1 << 20,
	}
}

// withDefaults fills the zero fields from DefaultQuotas.
func (q Quotas) withDefaults() Quotas {
	d := DefaultQuotas()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&q.EventBytes, d.EventBytes)
	pick(&q.EventsPerRequest, d.EventsPerRequest)
	pick(&q.EventsPerSession, d.EventsPerSession)
	pick64(&q.EventBytesPerSession, d.EventBytesPerSession)
	pick(&q.RunsPerSession, d.RunsPerSession)
	pick64(&q.LogBundleBytes, d.LogBundleBytes)
	pick(&q.LogBundlesPerRun, d.LogBundlesPerRun)
	pick64(&q.LogBytesPerRun, d.LogBytesPerRun)
	pick64(&q.LogBytesPerSession, d.LogBytesPerSession)
	pick(&q.Scripts, d.Scripts)
	pick(&q.ScriptsPerSession, d.ScriptsPerSession)
	pick(&q.ScriptVariableBytes, d.ScriptVariableBytes)
	return q
}

// usage counts what each live session has used against the quotas, and
// what runs on the whole server. It lives in memory: a restart forgets
// it, which gives a session no more than one fresh allowance.
type usage struct {
	q Quotas

	mu       sync.Mutex
	sessions map[string]*sessionUse
	prune    int                         // prune expired entries when sessions reaches this size
	scripts  int                         // server-side scripts running
	stops    map[*int]context.CancelFunc // of the running scripts
	stopping bool                        // the server is shutting down: no more scripts
	uploads  map[string]bool             // runs with a log bundle upload in progress
}

type sessionUse struct {
	runs, events, scripts int
	eventBytes, logBytes  int64
	expires               time.Time
}

func newUsage(q Quotas) *usage {
	return &usage{q: q.withDefaults(), sessions: map[string]*sessionUse{}, prune: 1024, uploads: map[string]bool{},
		stops: map[*int]context.CancelFunc{}}
}

// session returns the entry of sess; mu is held. Entries of expired
// sessions are dropped now and then so the map stays as small as the set
// of live sessions.
func (u *usage) session(sess *deploy.Session, now time.Time) *sessionUse {
	su := u.sessions[sess.ID]
	if su == nil {
		if len(u.sessions) >= u.prune {
			for id, e := range u.sessions {
				if !e.expires.After(now) && e.scripts == 0 {
					delete(u.sessions, id)
				}
			}
			u.prune = max(1024, 2*len(u.sessions))
		}
		su = &sessionUse{}
		u.sessions[sess.ID] = su
	}
	su.expires = sess.ExpiresAt
	return su
}

// startRun counts one more run of sess, or refuses with 429.
func (u *usage) startRun(sess *deploy.Session, now time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	su := u.session(sess, now)
	if su.runs >= u.q.RunsPerSession {
		return deploy.Errorf(deploy.KindThrottled, "this session has already created %d runs, the most one session may", u.q.RunsPerSession)
	}
	su.runs++
	return nil
}

// addEvents counts n more events of sess, of size bytes together, or
// refuses with 429 (counting nothing).
func (u *usage) addEvents(sess *deploy.Session, n int, size int64, now time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	su := u.session(sess, now)
	if su.events+n > u.q.EventsPerSession {
		return deploy.Errorf(deploy.KindThrottled, "this session has sent %d events; %d more would pass the %d one session may send",
			su.events, n, u.q.EventsPerSession)
	}
	if su.eventBytes+size > u.q.EventBytesPerSession {
		return deploy.Errorf(deploy.KindThrottled, "this session has sent %s of events; %s more would pass the %s one session may send",
			sizeText(su.eventBytes), sizeText(size), sizeText(u.q.EventBytesPerSession))
	}
	su.events += n
	su.eventBytes += size
	return nil
}

// logRoom is how many log bytes sess may still upload.
func (u *usage) logRoom(sess *deploy.Session, now time.Time) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.q.LogBytesPerSession - u.session(sess, now).logBytes
}

// addLogBytes counts n uploaded log bytes of sess.
func (u *usage) addLogBytes(sess *deploy.Session, n int64, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.session(sess, now).logBytes += n
}

// scriptRetry is the Retry-After sent when a script slot is not free.
const scriptRetry = 5 * time.Second

// startScript takes a script slot of sess and one of the server. A session
// that already runs its share gets 429, a full server 503; both carry
// Retry-After (set on w). release gives the slots back; until then
// stopScripts may call stop.
func (u *usage) startScript(w http.ResponseWriter, sess *deploy.Session, stop context.CancelFunc, now time.Time) (release func(), err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	su := u.session(sess, now)
	switch {
	case u.stopping:
		err = deploy.Errorf(deploy.KindUnavailable, "the server is shutting down")
	case su.scripts >= u.q.ScriptsPerSession:
		err = deploy.Errorf(deploy.KindThrottled, "this session already runs %d server-side script(s), the most one session may at once", su.scripts)
	case u.scripts >= u.q.Scripts:
		err = deploy.Errorf(deploy.KindUnavailable, "the server already runs %d server-side scripts, the most it runs at once; try again later", u.scripts)
	}
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(scriptRetry/time.Second)))
		return nil, err
	}
	su.scripts++
	u.scripts++
	key := new(int)
	u.stops[key] = stop
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			su.scripts--
			u.scripts--
			delete(u.stops, key)
		})
	}, nil
}

// stopScripts stops every running script and refuses new ones: the server
// is shutting down, and a script in its own process group would outlive it.
func (u *usage) stopScripts() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopping = true
	for _, stop := range u.stops {
		stop()
	}
}

// startUpload lets one log bundle upload of a run proceed at a time, so
// the run's bundle count and bytes are checked against what is on disk.
func (u *usage) startUpload(w http.ResponseWriter, runID string) (release func(), err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.uploads[runID] {
		w.Header().Set("Retry-After", "10")
		return nil, deploy.Errorf(deploy.KindThrottled, "a log bundle of run %s is being uploaded; send one at a time", runID)
	}
	u.uploads[runID] = true
	return func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		delete(u.uploads, runID)
	}, nil
}

// sizeText writes n bytes for a message: "256 MiB", "64 KiB", "100 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
