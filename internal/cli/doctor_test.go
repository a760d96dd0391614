//go:build linux

package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// runDoctorWith runs `imprint doctor` with env and returns its exit
// status and output.
func runDoctorWith(t *testing.T, env doctorEnv, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" },
		now: time.Now, isTerminal: func(io.Writer) bool { return false }}
	code := a.report(a.dispatchDoctor(context.Background(), args, env))
	return code, out.String()
}

// dispatchDoctor parses the global flags as dispatch does, then runs doctor.
func (a *app) dispatchDoctor(ctx context.Context, args []string, env doctorEnv) error {
	fs := a.flagSet("imprint", "")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] != "doctor" {
		return fmt.Errorf("test: want the doctor command, got %q", rest)
	}
	return a.doctor(ctx, rest[1:], env)
}

func testDoctorEnv(free uint64, synced bool) doctorEnv {
	env := hostDoctorEnv()
	env.agent = ""
	env.statfs = func(string) (uint64, error) { return free, nil }
	env.clock = func() (bool, time.Duration, error) { return synced, 20 * time.Millisecond, nil }
	return env
}

// writeCerts writes a CA and a server certificate for names, valid from
// notBefore to notAfter, into dir/tls.
func writeCerts(t *testing.T, dir string, names []string, notBefore, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: notBefore.Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: names, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(dir, "tls")
	os.MkdirAll(tdir, 0o700)
	for name, der := range map[string][]byte{"ca.crt": caDER, "server.crt": leafDER} {
		if err := os.WriteFile(filepath.Join(tdir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDoctorBrokenSetup: every fault of a deliberately broken set-up is
// named with what to do, and the exit status is 1.
func TestDoctorBrokenSetup(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCerts(t, dir, []string{"wrong.example"}, time.Now().AddDate(-2, 0, 0), time.Now().AddDate(0, 0, -3))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	code, out := runDoctorWith(t, testDoctorEnv(10<<20, false), "--data", dir, "doctor",
		"--listen", busy.Addr().String(), "--boot-listen", "127.0.0.1:0", "--cert-host", "imprint.example.org",
		"--interface", "lo", "--timeout", "1s")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"FAIL  data directory: " + dir + " is mode 0755",
		"fix: chmod 700 " + dir,
		"FAIL  free disk: 10.0 MiB free",
		"FAIL  API port: " + busy.Addr().String() + " is in use by another program",
		"ok    boot port:",
		"FAIL  server certificate: expired on",
		"FAIL  certificate names: does not cover imprint.example.org (it covers wrong.example)",
		"fix: start the server with --cert-host",
		"FAIL  boot image: none in",
		"fix: build it: imprint bootimage build",
		"FAIL  proxyDHCP on lo:",
		"warn  clock: the kernel reports the clock not synchronised",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// TestDoctorGoodSetup: a running server with its certificate names, a
// boot image built with the agent beside imprint, room and a
// synchronised clock: every check ok, exit 0.
func TestDoctorGoodSetup(t *testing.T) {
	srv := servertest.Start(t, func(c *server.Config) { c.CertHosts = []string{"imprint.test"} })
	dir := srv.DataDir()
	agent := filepath.Join(t.TempDir(), "imprint-agent")
	os.WriteFile(agent, []byte("agent v1"), 0o755)
	writeBootImage(t, filepath.Join(server.BootImagesDir(dir), "x86_64"), []byte("agent v1"))
	env := testDoctorEnv(100<<30, true)
	env.agent = agent
	args := []string{"--data", dir, "doctor", "--listen", srv.APIAddr().String(), "--boot-listen", srv.BootAddr().String(),
		"--cert-host", "imprint.test"}
	code, out := runDoctorWith(t, env, args...)
	if code != 0 || strings.Contains(out, "FAIL") || strings.Contains(out, "warn") {
		t.Errorf("good set-up: exit %d, want 0 and no FAIL or warn:\n%s", code, out)
	}
	for _, want := range []string{"ok    server: running", "ok    API port: " + srv.APIAddr().String() + " answers",
		"ok    certificate names: covers", "imprint.test", "ok    boot image agent"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}

	// The agent beside imprint changed: the image is stale.
	os.WriteFile(agent, []byte("agent v2"), 0o755)
	if code, out := runDoctorWith(t, env, args...); code != 1 || !strings.Contains(out, "FAIL  boot image agent: the image holds another imprint-agent") {
		t.Errorf("stale agent: exit %d:\n%s", code, out)
	}
	// A socket others may use is named.
	os.WriteFile(agent, []byte("agent v1"), 0o755)
	if err := os.Chmod(server.SocketPath(dir), 0o666); err != nil {
		t.Fatal(err)
	}
	if code, out := runDoctorWith(t, env, args...); code != 1 || !strings.Contains(out, "FAIL  admin socket:") {
		t.Errorf("socket 0666: exit %d:\n%s", code, out)
	}
}

// writeBootImage writes a minimal boot image whose manifest matches its
// kernel and initrd and names agent's hash.
func writeBootImage(t *testing.T, dir string, agent []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := bootimage.Manifest{KernelVersion: "6.1.0-test", SHA256: map[string]string{}}
	for _, name := range []string{bootimage.VmlinuzName, bootimage.InitrdName} {
		b := []byte("content of " + name)
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
		h := sha256.Sum256(b)
		m.SHA256[name] = hex.EncodeToString(h[:])
	}
	h := sha256.Sum256(agent)
	m.AgentSHA256 = hex.EncodeToString(h[:])
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, bootimage.ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{{"1G", 1 << 30, true}, {"512M", 512 << 20, true}, {"2GiB", 2 << 30, true}, {"100", 100, true}, {"x", 0, false}, {"", 0, false}} {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v", tt.in, got, err)
		}
	}
}

// TestDoctorProxyDHCP: the probe gets the built-in proxyDHCP's offer
// across a veth pair between two network namespaces, and names the
// missing answer when no server runs.
func TestDoctorProxyDHCP(t *testing.T) {
	testenv.Root(t, "to create network namespaces and broadcast DHCP")
	testenv.LookPath(t, "ip")
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1000000)
	srvNS, cliNS := "srv-doc-"+id, "cli-doc-"+id
	if out, err := exec.Command("ip", "netns", "add", srvNS).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot create a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", srvNS).Run() })
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", cliNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", cliNS).Run() })
	run("-n", srvNS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", cliNS)
	run("-n", srvNS, "addr", "add", "10.79.0.1/24", "dev", "eth0")
	run("-n", srvNS, "link", "set", "eth0", "up")
	run("-n", cliNS, "link", "set", "eth0", "up")

	probe := func() (string, error) {
		t.Helper()
		type res struct {
			s   string
			err error
		}
		c := make(chan res, 1)
		go func() {
			runtime.LockOSThread() // the thread is discarded: it stays in cliNS
			if err := enterNetns(cliNS); err != nil {
				c <- res{err: err}
				return
			}
			s, err := probeProxyDHCP(context.Background(), "eth0", 2*time.Second)
			c <- res{s, err}
		}()
		r := <-c
		return r.s, r.err
	}
	if _, err := probe(); err == nil || !strings.Contains(err.Error(), "no answer on eth0") {
		t.Errorf("no server: probe error %v, want no answer", err)
	}

	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.PXE, cfg.PXEInterface, cfg.PXEServerIP = true, "eth0", "10.79.0.1"
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, cfg, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enterNetns(srvNS); err != nil {
			done <- err
			return
		}
		done <- s.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	var got string
	for range 5 { // the server may still be binding
		if got, err = probe(); err == nil {
			break
		}
	}
	if err != nil || !strings.Contains(got, "10.79.0.1 answered") {
		t.Errorf("with the server: %q, %v; want an answer from 10.79.0.1", got, err)
	}
}

func enterNetns(name string) error {
	f, err := os.Open(filepath.Join("/var/run/netns", name))
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}
