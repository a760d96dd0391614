//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// Ports of the server inside each test's private network namespace; the
// namespace is new, so they are always free.
const (
	apiPort  = 7281
	bootPort = 7282
	// guestHost is the namespace's loopback as QEMU's user network shows it.
	guestHost = "10.0.2.2"
)

// Artifacts are built once per `go test` run and shared by the tests.
type Artifacts struct {
	Dir       string // holds everything below
	Imprint   string // bin/imprint
	Agent     string // bin/imprint-agent
	OSInit    string // the deployed test OS's /init
	Kernel    *bootimage.Kernel
	BootImage *bootimage.Image
	UKI       string // the deployed test OS's BOOTX64.EFI
	OSInitrd  string // the deployed test OS's initramfs (in the UKI too)
	CacheDir  string // downloads kept across runs
	// Signed is the Secure Boot chain (Debian's shim and signed network
	// GRUB), also in BootImage; SignedGrub is Debian's signed GRUB for
	// disks, which the Secure Boot test OS boots through shim.
	Signed     *bootimage.SignedChain
	SignedGrub string
}

// suite builds the artifacts on first use. It lives at package level
// because artifacts are shared by all tests of one run (building them takes
// most of a minute); TestMain removes Dir.
type suite struct {
	mu   sync.Mutex
	dir  string
	art  *Artifacts
	err  error
	done bool
}

var shared suite

// artifacts returns the shared build, building it on the first call.
func artifacts(t *testing.T) *Artifacts {
	t.Helper()
	requireRoot(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.dir == "" {
		t.Fatal("e2e: no artifact directory (TestMain did not run)")
	}
	if !shared.done {
		start := time.Now()
		shared.art, shared.err = buildArtifacts(t, shared.dir)
		shared.done = true
		t.Logf("artifacts built in %.1fs", time.Since(start).Seconds())
	}
	if shared.err != nil {
		t.Fatalf("build artifacts: %v", shared.err)
	}
	return shared.art
}

func requireRoot(t *testing.T) {
	t.Helper()
	testenv.Root(t, "for the e2e tests (network namespaces)")
	needTools(t, "ip", "qemu-system-x86_64", "apt-get", "dpkg-deb", "depmod", "objcopy", "mkfs.ext4", "zstd", "sgdisk", "e2fsck", "mdir")
}

// cacheDir is where downloads are kept across runs.
func cacheDir() (string, error) {
	if d := os.Getenv("IMPRINT_E2E_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w (set IMPRINT_E2E_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "imprint-e2e"), nil
}

// tlog writes progress lines into the test log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func buildArtifacts(t *testing.T, dir string) (*Artifacts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	a := &Artifacts{Dir: dir, CacheDir: cache,
		Imprint: filepath.Join(dir, "bin", "imprint"),
		Agent:   filepath.Join(dir, "bin", "imprint-agent"),
		OSInit:  filepath.Join(dir, "bin", "osinit"),
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range []struct{ out, pkg string }{
		{a.Imprint, "./cmd/imprint"},
		{a.Agent, "./cmd/imprint-agent"},
		{a.OSInit, "./e2e/osinit"},
	} {
		if err := goBuild(ctx, root, b.out, b.pkg); err != nil {
			return nil, err
		}
	}
	// The Windows agent, beside the server binary where the server looks
	// for it: Prepare operating system stages it on a Windows partition.
	if err := goBuildFor(ctx, "windows", root, filepath.Join(dir, "bin", "imprint-agent.exe"), "./cmd/imprint-agent"); err != nil {
		return nil, err
	}
	a.Kernel, err = bootimage.FetchKernel(ctx, filepath.Join(cache, "kernel"), tlog{t})
	if err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	a.Signed, err = bootimage.FetchSignedChain(ctx, filepath.Join(cache, "signed"), tlog{t})
	if err != nil {
		return nil, err
	}
	// The same package holds the signed GRUB for disks (prefix /EFI/debian).
	a.SignedGrub = filepath.Join(filepath.Dir(a.Signed.Grub), "grubx64.efi.signed")
	a.BootImage, err = bootimage.Build(ctx, bootimage.BuildOptions{
		OutDir:    filepath.Join(dir, "bootimage"),
		Kernel:    a.Kernel,
		AgentPath: a.Agent,
		Signed:    a.Signed,
		Log:       tlog{t},
	})
	if err != nil {
		return nil, err
	}
	if a.UKI, err = buildUKI(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the imprint module")
	}
	return filepath.Dir(mod), nil
}

// goBuild builds a static binary of pkg (relative to the module root).
func goBuild(ctx context.Context, root, out, pkg string) error {
	return goBuildFor(ctx, "linux", root, out, pkg)
}

// goBuildFor builds pkg for goos/amd64.
func goBuildFor(ctx context.Context, goos, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "e2e", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// run runs a host command and returns its combined output, failing with
// that output in the error.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes(), nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Env is one test's world: a network namespace and a running server with
// its own data directory.
type Env struct {
	t    *testing.T
	A    *Artifacts
	Dir  string // per-test scratch (t.TempDir)
	Data string // the server's data directory
	NS   string
	// LAN, when set, is the bridged LAN the server's namespace hangs off
	// (envOptions.LAN); nil means the server listens on loopback.
	LAN    *LAN
	srvLog string
	admin  *http.Client
	// relayed: a branch relay on the LAN answers PXE (envOptions.Relay).
	relayed bool
}

// envOptions change the world newEnvWith makes.
type envOptions struct {
	// LAN puts the server's namespace on a bridged LAN with dnsmasq as the
	// site's DHCP server (lan.go) and runs the server there with its
	// built-in proxyDHCP and TFTP (--pxe).
	LAN bool
	// NextServer makes the LAN's site DHCP server name Imprint as the
	// next server (siaddr), still with no boot file: Debian 12's signed
	// GRUB (2.06) takes its TFTP server from the DHCP ACK alone, ignoring
	// the proxyDHCP offer, so the Secure Boot chain needs it.
	NextServer bool
	// Relay (with LAN) runs `imprint relay --pxe` in its own namespace on
	// the LAN in front of the server, which then answers no PXE itself:
	// machines boot from the relay and reach the server through it.
	Relay bool
}

// newEnv creates the namespace, installs the boot image and starts the
// server; everything is torn down in t.Cleanup.
func newEnv(t *testing.T) *Env {
	t.Helper()
	return newEnvWith(t, envOptions{})
}

// newEnvWith is newEnv with options.
func newEnvWith(t *testing.T, o envOptions) *Env {
	t.Helper()
	a := artifacts(t)
	e := &Env{t: t, A: a, Dir: t.TempDir(), NS: "imprint-e2e-" + randomHex(4), relayed: o.LAN && o.Relay}
	e.Data = filepath.Join(e.Dir, "data")
	t.Cleanup(e.keepLogs)
	ctx := context.Background()
	if _, err := run(ctx, "ip", "netns", "add", e.NS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := run(context.Background(), "ip", "netns", "del", e.NS); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := run(ctx, "ip", "-n", e.NS, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	if o.LAN {
		e.LAN = newLAN(t, e.Dir, e.NS, o.NextServer)
	}
	images := filepath.Join(server.BootImagesDir(e.Data), "x86_64")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	// The whole boot image, as imprint bootimage build leaves it: with
	// the Secure Boot chain, so a server with --pxe (in Secure Boot mode,
	// its default) sends UEFI PXE firmware shim rather than iPXE.
	for _, name := range []string{bootimage.VmlinuzName, bootimage.InitrdName, bootimage.ManifestName,
		bootimage.ShimName, bootimage.GrubName, bootimage.GrubCDName} {
		if err := linkOrCopy(filepath.Join(a.BootImage.Dir, name), filepath.Join(images, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.admin = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(e.Data, "imprint.sock"))
		},
	}}
	e.startServer()
	return e
}

// keepLogs copies the console and server logs of a failed test out of
// t.TempDir (which is removed) into $IMPRINT_E2E_LOGS, default
// /tmp/imprint-e2e-logs/TEST-TIME.
func (e *Env) keepLogs() {
	if !e.t.Failed() {
		return
	}
	base := os.Getenv("IMPRINT_E2E_LOGS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "imprint-e2e-logs")
	}
	dst := filepath.Join(base, strings.ReplaceAll(e.t.Name(), "/", "_")+"-"+time.Now().Format("20060102-150405"))
	logs, _ := filepath.Glob(filepath.Join(e.Dir, "*.log"))
	if len(logs) == 0 || os.MkdirAll(dst, 0o755) != nil {
		return
	}
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			os.WriteFile(filepath.Join(dst, filepath.Base(l)), b, 0o644)
		}
	}
	e.t.Logf("logs kept in %s", dst)
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// serverArgs are the flags of `imprint server`: no boot menu, so the
// deploy entry boots at once.
func (e *Env) serverArgs() []string {
	if e.LAN != nil {
		return append([]string{"--data", e.Data, "server"},
			append(lanServerArgs(e.relayed), "--boot-menu=false", "--log-level", "debug")...)
	}
	return []string{"--data", e.Data, "server",
		"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--boot-listen", fmt.Sprintf("127.0.0.1:%d", bootPort),
		"--cert-host", guestHost,
		"--public-url", fmt.Sprintf("https://%s:%d", guestHost, apiPort),
		"--boot-url", fmt.Sprintf("http://%s:%d", guestHost, bootPort),
		"--boot-menu=false",
		"--log-level", "debug",
	}
}

func (e *Env) startServer() {
	t := e.t
	e.srvLog = filepath.Join(e.Dir, "server.log")
	exited := startDaemon(t, exec.Command("ip", append([]string{"netns", "exec", e.NS, e.A.Imprint}, e.serverArgs()...)...), e.srvLog)
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpServerLog()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			e.dumpServerLog()
			t.Fatalf("server exited during start: %v", err)
		default:
		}
		if err := e.adminDo(context.Background(), "GET", "/healthz", nil, nil); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.dumpServerLog()
			t.Fatal("server did not answer on its admin socket within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startDaemon starts cmd, a long-running program, with its output in
// logPath; t.Cleanup interrupts it (killing it after 20 s). The channel
// receives its exit.
func startDaemon(t *testing.T, cmd *exec.Cmd, logPath string) <-chan error {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return exited
}

func (e *Env) dumpServerLog() {
	b, _ := os.ReadFile(e.srvLog)
	e.t.Logf("server log (%s):\n%s", e.srvLog, b)
}

// adminDo calls the admin API over the Unix socket with a JSON body and
// decodes a JSON answer into out (when not nil).
func (e *Env) adminDo(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://imprint"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.admin.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// imprint runs the imprint CLI against this server and returns stdout.
func (e *Env) imprint(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.A.Imprint, append([]string{"--data", e.Data}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("imprint %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// needTools skips the test when a host program it drives is missing, or
// fails it naming the package under `make test` (testenv.Missing; `make
// deps` installs them all, see e2e/README.md).
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testenv.LookPath(t, tool)
	}
}

// checkLastRun checks the server's newest run of ts: succeeded, with
// exactly the wanted steps, each succeeded.
func (e *Env) checkLastRun(t *testing.T, ctx context.Context, tsID string, want []string) {
	t.Helper()
	run, err := e.lastRun(ctx, tsID)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRun(run, want); err != nil {
		t.Error(err)
	}
}
