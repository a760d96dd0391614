package web

import (
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestSessionTimeouts(t *testing.T) {
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	s := newSessions(30*time.Minute, 12*time.Hour, func() time.Time { return now })
	tok, _ := s.create("alice", deploy.RoleAdmin)

	// Used every 20 minutes, the session lives until the absolute limit.
	for now.Add(20*time.Minute).Sub(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)) <= 12*time.Hour {
		now = now.Add(20 * time.Minute)
		if s.get(tok) == nil {
			t.Fatalf("session ended at %s while in use, before 12 h", now.Format(time.Kitchen))
		}
	}
	now = now.Add(20 * time.Minute) // past 12 h since login
	if s.get(tok) != nil {
		t.Fatal("session outlived its absolute timeout")
	}

	tok, _ = s.create("alice", deploy.RoleAdmin)
	now = now.Add(29 * time.Minute)
	if s.get(tok) == nil {
		t.Fatal("session ended before its idle timeout")
	}
	now = now.Add(31 * time.Minute)
	if s.get(tok) != nil {
		t.Fatal("session outlived its idle timeout")
	}
}

func TestSessionRemoveUser(t *testing.T) {
	now := time.Now()
	s := newSessions(time.Hour, time.Hour, func() time.Time { return now })
	a1, _ := s.create("alice", deploy.RoleAdmin)
	a2, _ := s.create("alice", deploy.RoleAdmin)
	b, _ := s.create("bob", deploy.RoleViewer)
	if a1 == a2 {
		t.Fatal("two logins got the same token")
	}
	if n := s.removeUser("alice"); n != 2 {
		t.Errorf("removeUser ended %d sessions, want 2", n)
	}
	if s.get(a1) != nil || s.get(a2) != nil || s.get(b) == nil {
		t.Error("removeUser ended the wrong sessions")
	}
}
