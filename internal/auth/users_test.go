package auth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

func newUsers(t *testing.T) (*auth.Users, deploy.Store) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u, err := auth.NewUsers(db, testParams())
	if err != nil {
		t.Fatal(err)
	}
	return u, db
}

func TestUsersAddCheck(t *testing.T) {
	ctx := context.Background()
	u, db := newUsers(t)
	const pw = "violet-harbour-71-lamp"
	if _, err := u.Add(ctx, " Alice ", deploy.RoleAdmin, pw); err != nil {
		t.Fatal(err)
	}
	stored, err := db.User(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") || strings.Contains(stored.PasswordHash, pw) {
		t.Fatalf("stored hash %q is not an Argon2id PHC string of the password", stored.PasswordHash)
	}
	if got, err := u.Check(ctx, "ALICE", pw); err != nil || got.Role != deploy.RoleAdmin {
		t.Fatalf("Check right password = %v, %v; want alice admin", got, err)
	}
	for _, tc := range []struct{ name, user, pw string }{
		{"wrong password", "alice", pw + "x"},
		{"unknown user", "bob", pw},
		{"empty password", "alice", ""},
	} {
		if _, err := u.Check(ctx, tc.user, tc.pw); deploy.ErrorKind(err) != deploy.KindUnauthorized {
			t.Errorf("Check %s: err %v, want unauthorized", tc.name, err)
		}
	}

	if _, err := u.SetPassword(ctx, "alice", "new-Orchard-Lantern-5"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Check(ctx, "alice", pw); err == nil {
		t.Error("the old password still works after SetPassword")
	}
	if _, err := u.Check(ctx, "alice", "new-Orchard-Lantern-5"); err != nil {
		t.Errorf("the new password fails: %v", err)
	}
}

func TestUsersAddRefuses(t *testing.T) {
	ctx := context.Background()
	u, _ := newUsers(t)
	for _, tc := range []struct {
		name, user string
		role       deploy.Role
		pw         string
	}{
		{"short password", "carol", deploy.RoleViewer, "short1"},
		{"common password", "carol", deploy.RoleViewer, "password1234"},
		{"bad role", "carol", "root", "violet-harbour-71-lamp"},
		{"bad name", "carol smith", deploy.RoleViewer, "violet-harbour-71-lamp"},
		{"empty name", "", deploy.RoleViewer, "violet-harbour-71-lamp"},
	} {
		if _, err := u.Add(ctx, tc.user, tc.role, tc.pw); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Add %s: err %v, want invalid", tc.name, err)
		}
	}
	if any, _ := u.Any(ctx); any {
		t.Error("a refused Add stored an account")
	}
}

func TestUsersRemoveKeepsLastAdmin(t *testing.T) {
	ctx := context.Background()
	u, _ := newUsers(t)
	const pw = "violet-harbour-71-lamp"
	u.Add(ctx, "root", deploy.RoleAdmin, pw)
	u.Add(ctx, "view", deploy.RoleViewer, pw)
	if err := u.Remove(ctx, "root"); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Fatalf("removing the last admin while a viewer remains: err %v, want conflict", err)
	}
	if err := u.Remove(ctx, "view"); err != nil {
		t.Fatal(err)
	}
	if err := u.Remove(ctx, "root"); err != nil {
		t.Fatalf("removing the only account: %v", err)
	}
	if err := u.Remove(ctx, "root"); deploy.ErrorKind(err) != deploy.KindNotFound {
		t.Errorf("removing a removed account: err %v, want not found", err)
	}
}
