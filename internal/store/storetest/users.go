package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func testUsers(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	_, err := s.User(ctx(t), "alice")
	wantKind(t, "User unknown", err, deploy.KindNotFound)
	us, err := s.Users(ctx(t))
	must(t, "Users empty", err)
	if len(us) != 0 {
		t.Fatalf("Users on an empty store = %d users, want 0", len(us))
	}

	t0 := time.Date(2026, 5, 1, 10, 0, 0, 123000, time.UTC)
	alice := &deploy.User{Name: "alice", Role: deploy.RoleAdmin, PasswordHash: "$argon2id$a", CreatedAt: t0, UpdatedAt: t0}
	bob := &deploy.User{Name: "bob", Role: deploy.RoleViewer, PasswordHash: "$argon2id$b"}
	must(t, "CreateUser alice", s.CreateUser(ctx(t), alice))
	must(t, "CreateUser bob", s.CreateUser(ctx(t), bob))
	if bob.CreatedAt.IsZero() || bob.UpdatedAt.IsZero() {
		t.Errorf("CreateUser left zero times: %+v", bob)
	}
	dup := &deploy.User{Name: "alice", Role: deploy.RoleViewer, PasswordHash: "$argon2id$other"}
	wantKind(t, "CreateUser taken name", s.CreateUser(ctx(t), dup), deploy.KindConflict)

	for _, tc := range []struct {
		name string
		u    *deploy.User
	}{
		{"nil", nil},
		{"empty name", &deploy.User{Role: deploy.RoleAdmin, PasswordHash: "h"}},
		{"bad role", &deploy.User{Name: "carol", Role: "root", PasswordHash: "h"}},
		{"no hash", &deploy.User{Name: "carol", Role: deploy.RoleAdmin}},
	} {
		wantKind(t, "CreateUser "+tc.name, s.CreateUser(ctx(t), tc.u), deploy.KindInvalid)
		wantKind(t, "UpdateUser "+tc.name, s.UpdateUser(ctx(t), tc.u), deploy.KindInvalid)
	}

	got, err := s.User(ctx(t), "alice")
	must(t, "User alice", err)
	if d := cmp.Diff(alice, got); d != "" {
		t.Errorf("User alice (-want +got):\n%s", d)
	}
	if got.PasswordHash != "$argon2id$a" {
		t.Errorf("User alice hash = %q, the failed duplicate must not have replaced it", got.PasswordHash)
	}

	t1 := t0.Add(time.Hour)
	upd := &deploy.User{Name: "alice", Role: deploy.RoleOperator, PasswordHash: "$argon2id$new", UpdatedAt: t1}
	must(t, "UpdateUser alice", s.UpdateUser(ctx(t), upd))
	got, err = s.User(ctx(t), "alice")
	must(t, "User alice after update", err)
	want := &deploy.User{Name: "alice", Role: deploy.RoleOperator, PasswordHash: "$argon2id$new", CreatedAt: t0, UpdatedAt: t1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("User alice after update (-want +got):\n%s", d)
	}
	wantKind(t, "UpdateUser unknown", s.UpdateUser(ctx(t), &deploy.User{Name: "zed", Role: deploy.RoleAdmin, PasswordHash: "h"}), deploy.KindNotFound)

	us, err = s.Users(ctx(t))
	must(t, "Users", err)
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	if d := cmp.Diff([]string{"alice", "bob"}, names); d != "" {
		t.Errorf("Users names (-want +got):\n%s", d)
	}

	must(t, "DeleteUser bob", s.DeleteUser(ctx(t), "bob"))
	_, err = s.User(ctx(t), "bob")
	wantKind(t, "User after delete", err, deploy.KindNotFound)
	wantKind(t, "DeleteUser again", s.DeleteUser(ctx(t), "bob"), deploy.KindNotFound)
}
