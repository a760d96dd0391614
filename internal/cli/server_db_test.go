package cli

import (
	"io/fs"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
)

// TestServerConfigDB covers --db through every source and refuses what is
// not a PostgreSQL URL without echoing its password.
func TestServerConfigDB(t *testing.T) {
	with := func(db string) server.Config {
		c := server.DefaultConfig()
		c.DB = db
		return c
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{
		"db.conf": "db = postgres://imprint@db.example/imprint\n",
		"db.json": `{"db":"postgresql://imprint@db2.example/imprint"}`,
	}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	env := map[string]string{"IMPRINT_CONFIG": "db.conf", "IMPRINT_DB": "postgres://env@db.example/imprint"}
	tests := []serverConfigCase{
		{name: "default is the embedded SQLite", want: with("")},
		{name: "file", flags: serverFlags{config: set("db.conf")}, want: with("postgres://imprint@db.example/imprint")},
		{name: "JSON file", flags: serverFlags{config: set("db.json")}, want: with("postgresql://imprint@db2.example/imprint")},
		{name: "environment beats file", env: env, want: with("postgres://env@db.example/imprint")},
		{name: "flag beats environment", env: env, flags: serverFlags{db: set("postgres://flag@db.example/imprint")},
			want: with("postgres://flag@db.example/imprint")},
		{name: "not postgres", flags: serverFlags{db: set("mysql://root:hunter2@db.example/imprint")},
			wantErr: `config: db: "mysql://root:xxxxx@db.example/imprint" is not a postgres:// or postgresql:// URL`},
		{name: "a path", env: map[string]string{"IMPRINT_DB": "/var/lib/imprint/imprint.db"},
			wantErr: `config: db: "/var/lib/imprint/imprint.db" is not a postgres://`},
	}
	checkServerConfig(t, tests, readFile)
}
