package multicast

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Session states.
const (
	StateWaiting = "waiting" // receivers may join
	StateSending = "sending" // the transfer started; late machines use unicast
	StateDone    = "done"
	StateFailed  = "failed"
)

// Session is one multicast transfer, as the admin API and the machine API
// show it.
type Session struct {
	ID        string    `json:"id"`
	ContentID string    `json:"contentId"`
	VersionNo int       `json:"versionNo"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Interface string    `json:"interface,omitempty"`
	Portbase  int       `json:"portbase"`
	Machines  int       `json:"machines"`
	Wait      Duration  `json:"wait"`
	State     string    `json:"state"`
	Joined    int       `json:"joined"`
	Dropped   int       `json:"dropped"`
	Error     string    `json:"error,omitempty"`
	Created   time.Time `json:"created"`
	Started   time.Time `json:"started,omitzero"`
	Ended     time.Time `json:"ended,omitzero"`
}

// StartRequest asks for a session (the admin API's body).
type StartRequest struct {
	ContentID string   `json:"contentId"`
	VersionNo int      `json:"versionNo"`
	Machines  int      `json:"machines"`
	Wait      Duration `json:"wait"`
	Interface string   `json:"interface,omitempty"`
}

// Duration is a time.Duration written in JSON as Go's text form ("5m").
type Duration time.Duration

// MarshalJSON writes "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "5m" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if json.Unmarshal(b, &n) != nil {
			return deploy.Errorf(deploy.KindInvalid, "wait: want a duration such as \"5m\", got %s", b)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return deploy.Errorf(deploy.KindInvalid, "wait: %q is not a duration such as 5m", s)
	}
	*d = Duration(v)
	return nil
}

// Opener opens a content version's stored bytes for sending and says its
// size and SHA-256.
type Opener func(ctx context.Context, id string, no int) (rc io.ReadCloser, size int64, sha256 string, err error)

// Manager runs the server's multicast sessions. Sessions live in memory:
// a restarted server has none, and machines that asked for one fall back
// to unicast.
type Manager struct {
	Open Opener
	// Interface is the default network interface (the PXE interface).
	Interface string
	// FirstPort is the lowest portbase handed out (default 9000).
	FirstPort int
	// Send runs a session (default: the udpcast Send); tests keep it.
	Send func(ctx context.Context, data io.Reader, c SendConfig, on func(Event, string)) error
	// Log reports session ends (may be nil).
	Log func(msg string, args ...any)

	mu       sync.Mutex
	sessions []*Session
	cancels  map[string]context.CancelFunc
}

const (
	maxSessions = 64 // kept, ended ones included; oldest ended dropped first
	maxRunning  = 16 // waiting or sending at once
)

// Start begins a session in the background and returns it in state
// waiting. ctx bounds the whole session (the server's lifetime).
func (m *Manager) Start(ctx context.Context, req StartRequest) (Session, error) {
	iface := req.Interface
	if iface == "" {
		iface = m.Interface
	}
	if iface == "" {
		return Session{}, deploy.Errorf(deploy.KindInvalid, "multicast: say which network interface to send on (--interface), or run the server with --pxe-interface")
	}
	if req.Wait == 0 {
		req.Wait = Duration(5 * time.Minute)
	}
	cfg := SendConfig{Interface: iface, Machines: req.Machines, Wait: time.Duration(req.Wait), Portbase: 9000}
	if err := cfg.Check(); err != nil {
		return Session{}, err
	}
	rc, size, sum, err := m.Open(ctx, req.ContentID, req.VersionNo)
	if err != nil {
		return Session{}, err
	}
	id := make([]byte, 8)
	rand.Read(id)
	m.mu.Lock()
	if m.runningLocked() >= maxRunning {
		m.mu.Unlock()
		rc.Close()
		return Session{}, deploy.Errorf(deploy.KindConflict, "%d multicast sessions are running already; stop one first", maxRunning)
	}
	if m.activeForLocked(req.ContentID, req.VersionNo) != nil {
		m.mu.Unlock()
		rc.Close()
		return Session{}, deploy.Errorf(deploy.KindConflict, "a multicast session for content %s:%d is already running", req.ContentID, req.VersionNo)
	}
	cfg.Portbase = m.portLocked()
	s := &Session{ID: hex.EncodeToString(id), ContentID: req.ContentID, VersionNo: req.VersionNo, Size: size,
		SHA256: sum, Interface: iface, Portbase: cfg.Portbase, Machines: req.Machines, Wait: req.Wait,
		State: StateWaiting, Created: time.Now().UTC()}
	m.sessions = append(m.sessions, s)
	m.trimLocked()
	if m.cancels == nil {
		m.cancels = make(map[string]context.CancelFunc)
	}
	sctx, cancel := context.WithCancel(ctx)
	m.cancels[s.ID] = cancel
	out := *s
	m.mu.Unlock()

	send := m.Send
	if send == nil {
		send = Send
	}
	go func() {
		defer rc.Close()
		defer cancel()
		err := send(sctx, rc, cfg, func(ev Event, line string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			switch ev {
			case EventJoined:
				s.Joined++
			case EventDropped:
				s.Dropped++
			case EventStarting:
				if s.State == StateWaiting {
					s.State, s.Started = StateSending, time.Now().UTC()
				}
			}
		})
		m.mu.Lock()
		s.Ended = time.Now().UTC()
		if err != nil {
			s.State, s.Error = StateFailed, err.Error()
		} else {
			s.State = StateDone
		}
		delete(m.cancels, s.ID)
		done := *s
		m.mu.Unlock()
		if m.Log != nil {
			m.Log("multicast session ended", "id", done.ID, "content", done.ContentID, "state", done.State, "joined", done.Joined, "dropped", done.Dropped, "error", done.Error)
		}
	}()
	return out, nil
}

// Join returns the session a machine about to fetch content id:no should
// join: one still waiting for receivers. A session already sending is not
// offered (a late machine would wait for nothing); the machine uses
// unicast.
func (m *Manager) Join(id string, no int) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		if strings.EqualFold(s.ContentID, id) && s.VersionNo == no && s.State == StateWaiting {
			return *s, true
		}
	}
	return Session{}, false
}

// List returns every session, newest first.
func (m *Manager) List() []Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Session, 0, len(m.sessions))
	for i := len(m.sessions) - 1; i >= 0; i-- {
		out = append(out, *m.sessions[i])
	}
	return out
}

// Stop cancels a session that has not ended.
func (m *Manager) Stop(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cancel, ok := m.cancels[id]
	if !ok {
		return deploy.Errorf(deploy.KindNotFound, "no running multicast session %q", id)
	}
	cancel()
	return nil
}

func (m *Manager) runningLocked() int {
	n := 0
	for _, s := range m.sessions {
		if s.State == StateWaiting || s.State == StateSending {
			n++
		}
	}
	return n
}

func (m *Manager) activeForLocked(id string, no int) *Session {
	for _, s := range m.sessions {
		if strings.EqualFold(s.ContentID, id) && s.VersionNo == no && (s.State == StateWaiting || s.State == StateSending) {
			return s
		}
	}
	return nil
}

// portLocked returns the lowest even portbase no running session uses.
func (m *Manager) portLocked() int {
	first := m.FirstPort
	if first == 0 {
		first = 9000
	}
	used := []int{}
	for _, s := range m.sessions {
		if s.State == StateWaiting || s.State == StateSending {
			used = append(used, s.Portbase)
		}
	}
	p := first
	for slices.Contains(used, p) {
		p += 2
	}
	return p
}

func (m *Manager) trimLocked() {
	for len(m.sessions) > maxSessions {
		i := slices.IndexFunc(m.sessions, func(s *Session) bool { return s.State == StateDone || s.State == StateFailed })
		if i < 0 {
			return
		}
		m.sessions = slices.Delete(m.sessions, i, i+1)
	}
}
