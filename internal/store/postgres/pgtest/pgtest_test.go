//go:build linux

package pgtest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of
// ending the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

// TestMissing: under make test (RequireEnv set) a missing PostgreSQL fails
// naming the Debian package; by hand it skips.
func TestMissing(t *testing.T) {
	cause := errors.New("initdb not found")
	for _, tt := range []struct {
		env                 string
		wantFatal, wantSkip bool
	}{
		{env: "1", wantFatal: true},
		{env: "", wantSkip: true},
	} {
		t.Setenv(pgtest.RequireEnv, tt.env)
		r := &recorder{TB: t}
		pgtest.Missing(r, cause)
		if (r.fatal != "") != tt.wantFatal || (r.skip != "") != tt.wantSkip {
			t.Errorf("%s=%q: fatal %q, skip %q; want fatal %v, skip %v", pgtest.RequireEnv, tt.env, r.fatal, r.skip, tt.wantFatal, tt.wantSkip)
		}
		if msg := r.fatal + r.skip; !strings.Contains(msg, "postgresql") || !strings.Contains(msg, cause.Error()) {
			t.Errorf("%s=%q: message %q does not name the package and the cause", pgtest.RequireEnv, tt.env, msg)
		}
	}
}

// TestStart starts a server and connects to a fresh database on it.
func TestStart(t *testing.T) {
	srv := pgtest.Start(t)
	a, b := srv.NewDatabase(t), srv.NewDatabase(t)
	if a == b || !strings.HasPrefix(a, "postgres://") {
		t.Errorf("NewDatabase twice = %q, %q; want two distinct postgres:// URLs", a, b)
	}
}
