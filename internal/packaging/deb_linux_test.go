package packaging_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the schema version of the installed server's database

	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestDebLifecycle builds the imprint and imprint-agent packages twice,
// once from the commit before the last change of the SQLite schema, once
// from this tree, and takes them through a server's life in a scratch
// root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT):
// install, start the server with the unit's command line as the unit's
// user, create data, upgrade, start again (the schema migrates, the data
// and the operator's config are kept), remove (data kept), purge (data
// gone). The host's dpkg database and /etc are never touched.
func TestDebLifecycle(t *testing.T) {
	testenv.Root(t, "to install packages into a scratch root and run the server as its user")
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "git", "systemd-sysusers", "systemd-tmpfiles", "systemctl", "systemd-analyze"} {
		testenv.LookPath(t, tool)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	// The server runs as the package's user, which must reach its data
	// directory inside the scratch root.
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The previous build: the server as it was before the newest schema
	// migration. The agent is this tree's (not what this test upgrades).
	lastSchema := git(t, repo, "log", "-1", "--format=%H", "--", "internal/store/sqlite/migrations")
	if lastSchema == "" {
		t.Fatal("git log finds no commit of internal/store/sqlite/migrations: the test needs the tree's history")
	}
	if err := exec.Command("git", "-C", repo, "rev-parse", "--verify", "--quiet", lastSchema+"^").Run(); err != nil {
		t.Fatalf("the commit before %s is not in this clone: the upgrade test builds the previous schema's server from the history, which a shallow clone lacks (git fetch --unshallow)", lastSchema)
	}
	oldSrc := filepath.Join(tmp, "oldsrc")
	if err := os.Mkdir(oldSrc, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, repo, nil, "sh", "-c", fmt.Sprintf("git archive %s^ | tar -x -C %s", lastSchema, oldSrc))
	oldBin, newBin := filepath.Join(tmp, "oldbin"), filepath.Join(tmp, "newbin")
	goBuild(t, repo, newBin, "linux", runtime.GOARCH, "./cmd/imprint", "./cmd/imprint-agent")
	goBuild(t, repo, newBin, "windows", "amd64", "./cmd/imprint-agent")
	goBuild(t, oldSrc, oldBin, "linux", runtime.GOARCH, "./cmd/imprint")
	for _, name := range []string{"imprint-agent", "imprint-agent.exe"} {
		if err := os.Link(filepath.Join(newBin, name), filepath.Join(oldBin, name)); err != nil {
			t.Fatal(err)
		}
	}
	const oldVersion, newVersion = "0~git.1.0ld", "0~git.2.7e57"
	oldDebs := buildDebs(t, repo, oldBin, filepath.Join(tmp, "olddeb"), oldVersion)
	newDebs := buildDebs(t, repo, newBin, filepath.Join(tmp, "newdeb"), newVersion)

	root := newScratchRoot(t, filepath.Join(tmp, "root"))
	data := root.path("/var/lib/imprint")

	// Install the previous build.
	root.dpkg(t, append([]string{"-i"}, oldDebs...)...)
	root.wantStatus(t, "imprint", "install ok installed", oldVersion)
	user := root.user(t, "imprint")
	checkOwner(t, data, user.uid, user.gid, 0o700)
	checkOwner(t, root.path("/etc/imprint.conf"), 0, user.gid, 0o640)
	if got := root.query(t, "${Conffiles}", "imprint"); !strings.Contains(got, "/etc/imprint.conf ") {
		t.Errorf("imprint's conffiles are %q, want /etc/imprint.conf", got)
	}
	// The server looks for the agents beside its own executable.
	exe, err := filepath.EvalSymlinks(root.path("/usr/bin/imprint"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"imprint-agent", "imprint-agent.exe"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(exe), name)); err != nil {
			t.Errorf("%s is not beside the server's executable %s: %v", name, exe, err)
		}
	}
	checkStatic(t, exe)
	checkUnits(t, root, tmp)
	run(t, "", nil, "systemctl", "--root="+root.dir, "enable", "imprint.service")
	enabled := root.path("/etc/systemd/system/multi-user.target.wants/imprint.service")
	if _, err := os.Lstat(enabled); err != nil {
		t.Fatalf("systemctl enable made no link: %v", err)
	}

	srv := startUnit(t, root, "imprint.service")
	srv.cli(t, "content", "add", "--name", "upgrade-probe", "--type", "File", "--purpose", "OperatingSystem")
	srv.stop(t)
	oldSchema := schemaVersion(t, filepath.Join(data, "imprint.db"))

	// Upgrade, with a setting the operator changed in the config file.
	conf := root.path("/etc/imprint.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	changed := append(b, "log-level = debug\n"...)
	if err := os.WriteFile(conf, changed, 0o640); err != nil {
		t.Fatal(err)
	}
	root.dpkg(t, append([]string{"-i"}, newDebs...)...)
	root.wantStatus(t, "imprint", "install ok installed", newVersion)
	if got := root.user(t, "imprint"); got != user {
		t.Errorf("the upgrade changed the imprint user from %+v to %+v", user, got)
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != string(changed) {
		t.Errorf("the upgrade did not keep the operator's /etc/imprint.conf (err %v):\n%s", err, b)
	}
	checkOwner(t, conf, 0, user.gid, 0o640)

	srv = startUnit(t, root, "imprint.service")
	if out := srv.cli(t, "content", "list", "--json"); !strings.Contains(out, "upgrade-probe") {
		t.Errorf("after the upgrade the content item made before it is gone: %s", out)
	}
	srv.stop(t)
	newSchema := schemaVersion(t, filepath.Join(data, "imprint.db"))
	t.Logf("schema version %d under %s (commit %.12s^), %d after the upgrade", oldSchema, oldVersion, lastSchema, newSchema)
	if want := newestMigration(t, repo); newSchema != want || oldSchema >= newSchema {
		t.Errorf("schema version %d before the upgrade, %d after; want %d after, and below it before", oldSchema, newSchema, want)
	}

	// Remove keeps the data and the config, purge deletes them.
	root.dpkg(t, "-r", "imprint", "imprint-agent")
	root.wantStatus(t, "imprint", "deinstall ok config-files", newVersion)
	for _, p := range []string{filepath.Join(data, "imprint.db"), conf} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after dpkg -r: %v (remove must keep it)", err)
		}
	}
	if _, err := os.Lstat(root.path("/usr/bin/imprint")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after dpkg -r /usr/bin/imprint is still there (%v)", err)
	}
	root.dpkg(t, "-P", "imprint", "imprint-agent")
	for _, p := range []string{data, conf, enabled, root.path("/usr/lib/imprint")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg -P %s is still there (%v)", p, err)
		}
	}
	if got := root.query(t, "${db:Status-Status}", "imprint"); got != "" && got != "not-installed" {
		t.Errorf("after dpkg -P imprint's status is %q", got)
	}
}

// scratchRoot is a directory dpkg treats as the root of another system,
// with its own database; maintainer scripts run on the host's tools with
// DPKG_ROOT set to it.
type scratchRoot struct{ dir string }

func newScratchRoot(t *testing.T, dir string) *scratchRoot {
	t.Helper()
	admin := filepath.Join(dir, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers", "alternatives"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available"} {
		if err := os.WriteFile(filepath.Join(admin, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "var/log", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &scratchRoot{dir: dir}
}

func (r *scratchRoot) path(p string) string { return filepath.Join(r.dir, p) }

// dpkg runs dpkg on the scratch root. --force-depends: the root has none
// of the packages imprint depends on (systemd); the host's tools stand in.
func (r *scratchRoot) dpkg(t *testing.T, args ...string) {
	t.Helper()
	run(t, "", nil, "dpkg", append([]string{"--root=" + r.dir, "--log=" + r.path("/var/log/dpkg.log"),
		"--force-script-chrootless", "--force-depends"}, args...)...)
}

func (r *scratchRoot) query(t *testing.T, format, pkg string) string {
	t.Helper()
	cmd := exec.Command("dpkg-query", "--admindir="+r.path("/var/lib/dpkg"), "-W", "-f="+format, pkg)
	out, _ := cmd.Output() // a package dpkg no longer knows is an error; its empty output says so
	return strings.TrimSpace(string(out))
}

func (r *scratchRoot) wantStatus(t *testing.T, pkg, status, version string) {
	t.Helper()
	if got, want := r.query(t, "${Status} ${Version}", pkg), status+" "+version; got != want {
		t.Fatalf("dpkg-query %s: %q, want %q", pkg, got, want)
	}
}

type account struct{ uid, gid int }

// user reads name's ids from the scratch root's /etc/passwd.
func (r *scratchRoot) user(t *testing.T, name string) account {
	t.Helper()
	f, err := os.Open(r.path("/etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 4 && fields[0] == name {
			uid, err1 := strconv.Atoi(fields[2])
			gid, err2 := strconv.Atoi(fields[3])
			if err1 != nil || err2 != nil {
				t.Fatalf("/etc/passwd: bad line %q", sc.Text())
			}
			return account{uid, gid}
		}
	}
	t.Fatalf("the scratch root's /etc/passwd has no user %s", name)
	return account{}
}

func checkOwner(t *testing.T, path string, uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s is %d:%d %v, want %d:%d %v", path, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, mode)
	}
}

// unitServer is the server started as a unit would start it.
type unitServer struct {
	root *scratchRoot
	cmd  *exec.Cmd
	as   account
	out  *strings.Builder
	done chan error
}

// startUnit starts the server with the ExecStart of the installed unit
// (its absolute paths taken inside the scratch root), as the unit's User
// and Group and with its UMask, on loopback ports given in IMPRINT_*
// variables (which the config file would otherwise set), and waits until
// its admin API answers.
func startUnit(t *testing.T, root *scratchRoot, unit string) *unitServer {
	t.Helper()
	u := readUnit(t, root.path("/usr/lib/systemd/system/"+unit))
	argv := strings.Fields(u.one(t, "ExecStart"))
	for i, a := range argv {
		if strings.HasPrefix(a, "/") {
			argv[i] = root.path(a)
		}
	}
	as := root.user(t, u.one(t, "User"))
	if g := root.user(t, u.one(t, "Group")); g.gid != as.gid {
		t.Fatalf("the unit's Group is not its User's group")
	}
	umask, err := strconv.ParseUint(u.one(t, "UMask"), 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	s := &unitServer{root: root, as: as, out: &strings.Builder{}, done: make(chan error, 1)}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Dir = root.dir
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IMPRINT_LISTEN=" + freePort(t), "IMPRINT_BOOT_LISTEN=" + freePort(t)}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(as.uid), Gid: uint32(as.gid)}}
	old := syscall.Umask(int(umask))
	err = s.cmd.Start()
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			t.Fatalf("%s exited at start: %v\n%s", strings.Join(argv, " "), err, s.out)
		default:
		}
		if _, err := s.tryCLI("content", "list"); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("the server did not answer within 60 s: %v\n%s", err, s.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *unitServer) tryCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.root.path("/usr/bin/imprint"), append([]string{"--data", s.root.path("/var/lib/imprint")}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.as.uid), Gid: uint32(s.as.gid)}}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("imprint %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *unitServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.tryCLI(args...)
	if err != nil {
		t.Fatalf("%v\nserver:\n%s", err, s.out)
	}
	return out
}

// stop sends SIGTERM, as systemctl stop does, and wants a clean exit.
func (s *unitServer) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("the server exited with %v on SIGTERM:\n%s", err, s.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not stop within 60 s of SIGTERM:\n%s", s.out)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// schemaVersion reads the schema version of a SQLite database no server
// has open.
func schemaVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatalf("schema version of %s: %v", path, err)
	}
	return v
}

// newestMigration is the number of the tree's newest SQLite migration.
func newestMigration(t *testing.T, repo string) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(repo, "internal/store/sqlite/migrations/*.sql"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no SQLite migrations (%v)", err)
	}
	n := 0
	for _, name := range names {
		num, _, _ := strings.Cut(filepath.Base(name), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("migration %s has no number", name)
		}
		n = max(n, v)
	}
	return n
}

func goBuild(t *testing.T, src, out, goos, goarch string, pkgs ...string) {
	t.Helper()
	// As make build builds (its build cache serves this one), static.
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	args := []string{"build", "-trimpath", "-o", out + "/"}
	run(t, src, env, "go", append(args, pkgs...)...)
}

func buildDebs(t *testing.T, repo, bin, out, version string) []string {
	t.Helper()
	env := append(os.Environ(), "VERSION="+version, "ARCH="+runtime.GOARCH, "DEB_COMPRESSION=gzip")
	debs := strings.Fields(run(t, repo, env, "scripts/deb.sh", bin, out))
	if len(debs) != 2 {
		t.Fatalf("deb.sh wrote %q, want two packages", debs)
	}
	return debs
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, dir, nil, "git", args...))
}

// run runs name in dir (the current one when empty) with env (the
// test's when nil) and returns its standard output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	if env == nil {
		cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func execCombined(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
