//go:build linux

// Package pgtest starts a throwaway PostgreSQL server for tests: initdb in
// a temporary directory, the server on a unix socket there (no TCP port),
// one database per test, everything stopped and removed at cleanup. It
// uses Debian's postgresql package (/usr/lib/postgresql/<version>/bin) or
// whatever pg_config on PATH names; no system service is involved.
//
// When PostgreSQL is missing, Start skips the test when a developer runs
// it by hand and fails it, naming the Debian package, when the
// IMPRINT_TEST_REQUIRE environment variable is set (the Makefile's unit
// target sets it, so `make test` never passes without these tests).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// RequireEnv names the environment variable that turns a missing
// prerequisite from a skip into a failure (testenv.RequireEnv).
const RequireEnv = testenv.RequireEnv

// Server is a running PostgreSQL owned by one test.
type Server struct {
	dir    string // owns data/, the socket and the log
	socket string
	cmd    *exec.Cmd
	done   chan error
	n      atomic.Int64 // databases created, for unique names
}

// BinDir finds the directory holding initdb and postgres: pg_config
// --bindir when pg_config is on PATH, else the newest
// /usr/lib/postgresql/<version>/bin.
func BinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) == 0 {
		return "", errors.New("PostgreSQL's initdb not found (no pg_config on PATH, nothing in /usr/lib/postgresql/*/bin): apt-get install postgresql")
	}
	return filepath.Dir(dirs[0]), nil
}

// version is the major version in /usr/lib/postgresql/<version>/bin/initdb.
func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Missing skips or fails t for a missing prerequisite: it fails when
// RequireEnv is set (as under make test) and skips otherwise.
func Missing(t testing.TB, err error) {
	t.Helper()
	testenv.Missing(t, "PostgreSQL is needed: apt-get install postgresql: %v", err)
}

// Start initialises and starts a server for t and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		Missing(t, err)
	}
	cred, owner, err := runAs()
	if err != nil {
		Missing(t, err)
	}
	// Not t.TempDir: that directory is private to root, and the server
	// runs as the postgres user when the test runs as root.
	dir, err := os.MkdirTemp("", "imprint-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if owner != nil {
		if err := os.Chown(dir, owner.uid, owner.gid); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{dir: dir, socket: dir, done: make(chan error, 1)}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir // the postgres user may not enter the test's directory
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// fsync off: a test database need not survive a power cut.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	s.cmd.Stdout, s.cmd.Stderr, s.cmd.Dir = logf, logf, dir
	// SIGQUIT on our death: no server outlives a killed test binary.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.stop(t) })
	if err := s.wait(t.Context()); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		t.Fatalf("postgres did not start: %v\n%s", err, log)
	}
	return s
}

// stop asks for a fast shutdown and waits for it.
func (s *Server) stop(t testing.TB) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown: disconnect clients
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("postgres did not stop within 30 s; killed")
	}
}

// wait polls until the server accepts connections or exits.
func (s *Server) wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		db, err := s.open("postgres")
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case e := <-s.done:
			s.done <- e
			return fmt.Errorf("postgres exited: %v", e)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DSN returns the connection URL of database name on this server.
func (s *Server) DSN(name string) string {
	return "postgres://postgres@/" + name + "?host=" + s.socket + "&sslmode=disable"
}

func (s *Server) open(name string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(s.DSN(name))
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg), nil
}

// NewDatabase creates an empty database for t and returns its DSN. The
// database is left for the server's cleanup to remove.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("imprint_%d", s.n.Add(1))
	db, err := s.open("postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.DSN(name)
}

type ids struct{ uid, gid int }

// runAs returns the credential to run PostgreSQL with: none when the test
// is not root, the postgres system user's when it is (initdb and postgres
// refuse to run as root).
func runAs() (*syscall.Credential, *ids, error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, &ids{uid, gid}, nil
}
