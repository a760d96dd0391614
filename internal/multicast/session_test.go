package multicast_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
)

// fakeSend stands in for udp-sender (a program we do not own): it reports
// what the test tells it to and returns when released.
type fakeSend struct {
	events  map[int]chan multicast.Event // by portbase
	release map[int]chan error
	got     chan multicast.SendConfig
}

func newFakeSend() *fakeSend {
	return &fakeSend{events: map[int]chan multicast.Event{9000: make(chan multicast.Event), 9002: make(chan multicast.Event)},
		release: map[int]chan error{9000: make(chan error), 9002: make(chan error)}, got: make(chan multicast.SendConfig, 4)}
}

func (f *fakeSend) send(ctx context.Context, data io.Reader, c multicast.SendConfig, on func(multicast.Event, string)) error {
	f.got <- c
	for {
		select {
		case ev := <-f.events[c.Portbase]:
			on(ev, "")
		case err := <-f.release[c.Portbase]:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func manager(f *fakeSend) *multicast.Manager {
	return &multicast.Manager{
		Interface: "eth0",
		Send:      f.send,
		Open: func(_ context.Context, id string, no int) (io.ReadCloser, int64, string, error) {
			if id == "missing" {
				return nil, 0, "", deploy.Errorf(deploy.KindNotFound, "content %s not found", id)
			}
			return io.NopCloser(bytes.NewReader([]byte("image"))), 5, "abc", nil
		},
	}
}

func waitState(t *testing.T, m *multicast.Manager, id, state string) multicast.Session {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range m.List() {
			if s.ID == id && s.State == state {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s never reached %s: %+v", id, state, m.List())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSessionLifecycle(t *testing.T) {
	f := newFakeSend()
	m := manager(f)
	ctx := t.Context()
	s, err := m.Start(ctx, multicast.StartRequest{ContentID: "img", VersionNo: 1, Machines: 8, Wait: multicast.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := <-f.got
	if cfg.Interface != "eth0" || cfg.Machines != 8 || cfg.Wait != time.Minute || cfg.Portbase != 9000 {
		t.Errorf("sender config = %+v", cfg)
	}
	if got, ok := m.Join("IMG", 1); !ok || got.ID != s.ID || got.Size != 5 {
		t.Fatalf("Join while waiting = %+v, %v; want the session", got, ok)
	}
	if _, ok := m.Join("img", 2); ok {
		t.Errorf("Join offered a session for another version")
	}
	if _, err := m.Start(ctx, multicast.StartRequest{ContentID: "img", VersionNo: 1, Machines: 2, Wait: multicast.Duration(time.Minute)}); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("a second session for the same content: err = %v, want conflict", err)
	}
	other, err := m.Start(ctx, multicast.StartRequest{ContentID: "other", VersionNo: 1, Machines: 2, Wait: multicast.Duration(time.Minute)})
	if err != nil || other.Portbase != 9002 {
		t.Errorf("second content's session: portbase %d (%v), want 9002", other.Portbase, err)
	}
	<-f.got

	f.events[9000] <- multicast.EventJoined
	f.events[9000] <- multicast.EventStarting
	got := waitState(t, m, s.ID, multicast.StateSending)
	if got.Joined != 1 || got.Started.IsZero() {
		t.Errorf("sending session = %+v", got)
	}
	if _, ok := m.Join("img", 1); ok {
		t.Errorf("Join offered a session already sending: a late machine must use unicast")
	}
	f.release[9000] <- nil
	waitState(t, m, s.ID, multicast.StateDone)

	if err := m.Stop(other.ID); err != nil {
		t.Fatal(err)
	}
	if s := waitState(t, m, other.ID, multicast.StateFailed); s.Error == "" {
		t.Errorf("stopped session has no error")
	}
	if err := m.Stop(other.ID); deploy.ErrorKind(err) != deploy.KindNotFound {
		t.Errorf("stopping an ended session: err = %v, want not found", err)
	}
}

func TestStartRefusesBadRequests(t *testing.T) {
	m := manager(newFakeSend())
	m.Interface = ""
	tests := []struct {
		name string
		req  multicast.StartRequest
		kind deploy.Kind
	}{
		{"no interface", multicast.StartRequest{ContentID: "img", VersionNo: 1, Machines: 2}, deploy.KindInvalid},
		{"no machines", multicast.StartRequest{ContentID: "img", VersionNo: 1, Interface: "eth0"}, deploy.KindInvalid},
		{"bad interface", multicast.StartRequest{ContentID: "img", VersionNo: 1, Machines: 2, Interface: "eth0; rm"}, deploy.KindInvalid},
		{"wait too short", multicast.StartRequest{ContentID: "img", VersionNo: 1, Machines: 2, Interface: "eth0", Wait: multicast.Duration(time.Millisecond)}, deploy.KindInvalid},
		{"unknown content", multicast.StartRequest{ContentID: "missing", VersionNo: 1, Machines: 2, Interface: "eth0"}, deploy.KindNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Start(t.Context(), tt.req); deploy.ErrorKind(err) != tt.kind {
				t.Errorf("err = %v, want %s", err, tt.kind)
			}
		})
	}
	if n := len(m.List()); n != 0 {
		t.Errorf("refused requests left %d sessions", n)
	}
}

func TestDurationJSON(t *testing.T) {
	var req multicast.StartRequest
	for in, want := range map[string]time.Duration{`{"wait":"90s"}`: 90 * time.Second, `{"wait":120}`: 2 * time.Minute} {
		if err := jsonUnmarshal(in, &req); err != nil || time.Duration(req.Wait) != want {
			t.Errorf("%s: wait %s, %v; want %s", in, time.Duration(req.Wait), err, want)
		}
	}
	if err := jsonUnmarshal(`{"wait":"soon"}`, &req); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("bad wait: err = %v, want invalid", err)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
