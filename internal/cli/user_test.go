package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/server/servertest"
)

func TestUserCommands(t *testing.T) {
	srv := servertest.Start(t, nil)
	dir := srv.DataDir()
	const pw = "violet-harbour-71-lamp"
	run := func(stdin string, args ...string) result {
		t.Helper()
		return imprint(t, dir, strings.NewReader(stdin), args...)
	}
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		wantOut string
	}{
		{"no role", pw + "\n" + pw + "\n", []string{"user", "add", "alice"}, 2, "--role is required"},
		{"bad role", pw + "\n" + pw + "\n", []string{"user", "add", "alice", "--role", "root"}, 2, `--role "root" is not admin, operator or viewer`},
		{"mismatch", pw + "\nother-thing-9988\n", []string{"user", "add", "alice", "--role", "admin"}, 1, "passwords do not match"},
		{"weak", "password1234\npassword1234\n", []string{"user", "add", "alice", "--role", "admin"}, 1, "password is too common"},
		{"add", pw + "\n" + pw + "\n", []string{"user", "add", "Alice", "--role", "admin"}, 0, "user alice added (admin)"},
		{"taken", pw + "\n" + pw + "\n", []string{"user", "add", "alice", "--role", "viewer"}, 1, "already exists"},
		{"add viewer", pw + "\n" + pw + "\n", []string{"user", "add", "bob", "--role", "viewer"}, 0, "user bob added (viewer)"},
		{"list", "", []string{"user", "list"}, 0, "alice"},
		{"passwd", "new-Orchard-Lantern-5\nnew-Orchard-Lantern-5\n", []string{"user", "passwd", "bob"}, 0, "password of bob changed"},
		{"remove last admin", "", []string{"user", "remove", "alice"}, 1, "last admin"},
		{"remove", "", []string{"user", "remove", "bob"}, 0, "user bob removed"},
		{"remove unknown", "", []string{"user", "remove", "bob"}, 1, "not found"},
	}
	for _, tt := range tests {
		r := run(tt.stdin, tt.args...)
		if r.code != tt.code {
			t.Errorf("%s: exit %d, want %d; stderr %s", tt.name, r.code, tt.code, r.stderr)
		}
		wantContains(t, tt.name, r.stdout+r.stderr, tt.wantOut)
		if strings.Contains(r.stdout+r.stderr, pw) {
			t.Errorf("%s: the password was printed", tt.name)
		}
	}
	us, err := srv.Store().Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].Name != "alice" || us[0].Role != "admin" {
		t.Errorf("stored users = %+v, want only alice (admin)", us)
	}
}
