package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func newSession(id, device, method string, gen int) *deploy.Session {
	return &deploy.Session{
		ID: id, TokenHash: []byte("hash-of-" + id), Method: method, DeviceID: device, Generation: gen,
		Source: "192.0.2.1", CreatedAt: base(), LastUsedAt: base(), ExpiresAt: base().Add(time.Hour),
	}
}

func testSessions(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	a := newSession("", "devA", "passcode", 3)
	a.TokenHash = []byte{0, 1, 2, 3, 0xfe, 0xff}
	must(t, "CreateSession", s.CreateSession(ctx(t), a))
	checkGUID(t, "session ID", a.ID)

	got, err := s.SessionByTokenHash(ctx(t), []byte{0, 1, 2, 3, 0xfe, 0xff})
	must(t, "SessionByTokenHash", err)
	if d := cmp.Diff(a, got); d != "" {
		t.Errorf("stored session (-want +got):\n%s", d)
	}
	checkUTC(t, "session", got.CreatedAt, got.LastUsedAt, got.ExpiresAt)
	_, err = s.SessionByTokenHash(ctx(t), []byte{0, 1, 2, 3, 0xfe})
	wantKind(t, "SessionByTokenHash with a prefix of the hash", err, deploy.KindNotFound)

	sameHash := newSession("other", "devB", "anonymous", 0)
	sameHash.TokenHash = a.TokenHash
	wantKind(t, "CreateSession with a taken token hash", s.CreateSession(ctx(t), sameHash), deploy.KindConflict)
	sameID := newSession(a.ID, "devB", "anonymous", 0)
	wantKind(t, "CreateSession with a taken id", s.CreateSession(ctx(t), sameID), deploy.KindConflict)
	noHash := newSession("nohash", "devB", "anonymous", 0)
	noHash.TokenHash = nil
	wantKind(t, "CreateSession without a token hash", s.CreateSession(ctx(t), noHash), deploy.KindInvalid)

	b := newSession("", "devB", "anonymous", 0)
	b.CreatedAt = base().Add(time.Minute)
	must(t, "CreateSession", s.CreateSession(ctx(t), b))

	upd := *got
	upd.TaskSequenceID = "ts-1"
	upd.LastUsedAt = base().Add(5 * time.Minute)
	upd.TokenHash = nil // keeps the stored hash
	must(t, "UpdateSession", s.UpdateSession(ctx(t), &upd))
	got, err = s.SessionByTokenHash(ctx(t), a.TokenHash)
	must(t, "SessionByTokenHash after update", err)
	upd.TokenHash = a.TokenHash
	if d := cmp.Diff(&upd, got); d != "" {
		t.Errorf("updated session (-want +got):\n%s", d)
	}

	all, err := s.Sessions(ctx(t))
	must(t, "Sessions", err)
	if len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Errorf("Sessions = %d sessions, want [a b] oldest first", len(all))
	}
}

func testRevokeSessions(t *testing.T, open func(*testing.T) deploy.Store) {
	at := base().Add(30 * time.Minute)
	cases := []struct {
		name string
		f    deploy.SessionFilter
		want []string
	}{
		{"everything", deploy.SessionFilter{}, []string{"s1", "s2", "s3", "s4"}},
		{"by id", deploy.SessionFilter{ID: "s3"}, []string{"s3"}},
		{"by device", deploy.SessionFilter{DeviceID: "devA"}, []string{"s1", "s2"}},
		{"by method", deploy.SessionFilter{Method: "passcode"}, []string{"s1", "s2", "s4"}},
		{"old passcode generation", deploy.SessionFilter{Method: "passcode", Generation: 1}, []string{"s1", "s4"}},
		{"device and method", deploy.SessionFilter{DeviceID: "devB", Method: "passcode"}, []string{"s4"}},
		{"id and other device", deploy.SessionFilter{ID: "s1", DeviceID: "devB"}, nil},
		{"no match", deploy.SessionFilter{Method: "entra"}, nil},
		{"already revoked not counted", deploy.SessionFilter{ID: "s5"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			earlier := base().Add(time.Minute)
			seed := []*deploy.Session{
				newSession("s1", "devA", "passcode", 1),
				newSession("s2", "devA", "passcode", 2),
				newSession("s3", "devB", "anonymous", 0),
				newSession("s4", "devB", "passcode", 1),
				newSession("s5", "devB", "certificate", 0),
			}
			seed[4].RevokedAt = &earlier
			for _, ss := range seed {
				must(t, "CreateSession", s.CreateSession(ctx(t), ss))
			}
			n, err := s.RevokeSessions(ctx(t), tc.f, at)
			must(t, "RevokeSessions", err)
			if n != len(tc.want) {
				t.Errorf("RevokeSessions(%+v) = %d, want %d", tc.f, n, len(tc.want))
			}
			all, err := s.Sessions(ctx(t))
			must(t, "Sessions", err)
			var revoked []string
			for _, ss := range all {
				switch {
				case ss.ID == "s5":
					if ss.RevokedAt == nil || !ss.RevokedAt.Equal(earlier) {
						t.Errorf("already revoked s5: RevokedAt = %v, want %v kept", ss.RevokedAt, earlier)
					}
				case ss.RevokedAt != nil:
					revoked = append(revoked, ss.ID)
					if !ss.RevokedAt.Equal(at) || ss.RevokedAt.Location() != time.UTC {
						t.Errorf("%s: RevokedAt = %v, want %v in UTC", ss.ID, ss.RevokedAt, at)
					}
				}
			}
			if d := cmp.Diff(tc.want, revoked); d != "" {
				t.Errorf("revoked sessions (-want +got):\n%s", d)
			}
		})
	}
}

func testAuditChain(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	in := []*deploy.AuditEvent{
		{Time: base(), Action: "passcode.set", Outcome: "success", Actor: "admin", Source: "unix"},
		{Time: base().Add(time.Second), Action: "auth.attempt", Outcome: "failure", Source: "192.0.2.7",
			DeviceID: "devA", Details: map[string]string{"method": "passcode", "reason": "wrong"}},
		{Action: "auth.attempt", Outcome: "throttled", Source: "192.0.2.7"}, // zero time: store sets it
		{Time: base().Add(3 * time.Second), Action: "session.revoke", Outcome: "success", Details: map[string]string{}},
		{Time: base().Add(4 * time.Second), Action: "auth.attempt", Outcome: "success", DeviceID: "devA"},
	}
	for _, e := range in {
		must(t, "AppendAudit", s.AppendAudit(ctx(t), e))
	}
	wantKind(t, "AppendAudit without action", s.AppendAudit(ctx(t), &deploy.AuditEvent{Outcome: "x"}), deploy.KindInvalid)

	all, err := s.AuditEvents(ctx(t), 0, 0)
	must(t, "AuditEvents", err)
	if len(all) != len(in) {
		t.Fatalf("AuditEvents returned %d entries, want %d", len(all), len(in))
	}
	prev := ""
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d: seq %d, want %d", i, e.Seq, i+1)
		}
		if e.PrevHash != prev {
			t.Errorf("entry %d: prevHash %q, want %q (the previous hash)", i, e.PrevHash, prev)
		}
		if h := deploy.AuditHash(prev, e); e.Hash != h {
			t.Errorf("entry %d: hash %q, recomputed %q", i, e.Hash, h)
		}
		if e.Time.IsZero() || e.Time.Location() != time.UTC {
			t.Errorf("entry %d: time %v, want set, in UTC", i, e.Time)
		}
		prev = e.Hash
	}
	if d := cmp.Diff(in, all, cmpEmptyMaps()); d != "" {
		t.Errorf("stored entries differ from what AppendAudit returned (-appended +stored):\n%s", d)
	}

	page, err := s.AuditEvents(ctx(t), 2, 2)
	must(t, "AuditEvents page", err)
	var seqs []int64
	for _, e := range page {
		seqs = append(seqs, e.Seq)
	}
	if d := cmp.Diff([]int64{3, 4}, seqs); d != "" {
		t.Errorf("AuditEvents(2, 2) seqs (-want +got):\n%s", d)
	}
	tail, err := s.AuditEvents(ctx(t), 5, 10)
	must(t, "AuditEvents after the end", err)
	if len(tail) != 0 {
		t.Errorf("AuditEvents(5, 10) = %d entries, want 0", len(tail))
	}
	_, err = s.AuditEvents(ctx(t), 0, -1)
	wantKind(t, "AuditEvents with a negative limit", err, deploy.KindInvalid)
}

// cmpEmptyMaps treats nil and empty maps as equal.
func cmpEmptyMaps() cmp.Option {
	return cmp.FilterValues(func(x, y map[string]string) bool { return len(x) == 0 && len(y) == 0 },
		cmp.Comparer(func(x, y map[string]string) bool { return true }))
}
