package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/server"
)

const usageDoctor = `usage: imprint doctor [server flags] [--interface IFACE] [--min-free SIZE]

Checks the set-up of the server on this host and says what to do about
each problem: one line per check, ok, warn or FAIL, and the exit status is
1 when any check FAILs. It reads the configuration as 'imprint server'
does (the same flags, IMPRINT_* variables and --config file), so give it
the server's.

Checks: the data directory (present, mode 0700, owned by the user running
doctor) and the admin socket (0600); free space in the data directory;
the API and boot ports (answering when the server runs, free to bind when
it does not) and, with --pxe, UDP 67, 69 and 4011; the server and CA
certificates (valid, not expiring within 30 days, covering every
--cert-host and the --public-url host); the boot image (present, kernel
and initrd matching its manifest, built with the imprint-agent beside
this binary); with --interface, whether a proxyDHCP answers a PXE
DHCPDISCOVER broadcast on that interface (needs root or CAP_NET_RAW); and
whether the kernel reports the clock synchronised (NTP).

  --interface IFACE   broadcast a PXE DHCPDISCOVER on IFACE and wait for a
                      proxyDHCP offer (run it on a machine of the PXE
                      network, or on the server itself)
  --min-free SIZE     free space the data directory needs, in bytes or with
                      K, M, G (default 1G; below 4 times it is a warning)
  --timeout DUR       how long to wait for the proxyDHCP answer (default 3s)
`

// Check outcomes.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "FAIL"
)

// checkResult is one line of the report.
type checkResult struct {
	Status string `json:"status"`
	Check  string `json:"check"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctorEnv is what doctor asks of the host; tests replace parts of it.
type doctorEnv struct {
	// statfs returns the bytes available to an unprivileged user in the
	// file system holding path.
	statfs func(path string) (uint64, error)
	// clock reports whether the kernel's clock is synchronised and its
	// estimated maximum error.
	clock func() (synced bool, maxErr time.Duration, err error)
	// proxyDHCP broadcasts a PXE DISCOVER on iface and returns a
	// description of the proxyDHCP offer, or an error.
	proxyDHCP func(ctx context.Context, iface string, timeout time.Duration) (string, error)
	// owner returns the uid owning a file, and ok false where unknown.
	owner func(fi os.FileInfo) (uid int, ok bool)
	euid  int
	now   func() time.Time
	// agent is the path of the imprint-agent binary the boot image
	// should hold; empty when none is found.
	agent string
}

func hostDoctorEnv() doctorEnv {
	env := platformDoctorEnv()
	env.euid = os.Geteuid()
	env.now = time.Now
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "imprint-agent")
		if _, err := os.Stat(p); err == nil {
			env.agent = p
		}
	}
	return env
}

func runDoctor(ctx context.Context, a *app, args []string) error {
	return a.doctor(ctx, args, hostDoctorEnv())
}

func (a *app) doctor(ctx context.Context, args []string, env doctorEnv) error {
	fs, fl := serverFlagSet(a)
	fs.FlagSet.Init("imprint doctor", 0)
	fs.usage = usageDoctor
	iface := fs.String("interface", "", "")
	minFree := fs.String("min-free", "1G", "")
	timeout := fs.Duration("timeout", 3*time.Second, "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	need, err := parseSize(*minFree)
	if err != nil {
		return usagef("imprint doctor: --min-free: "+err.Error(), usageDoctor)
	}
	cfg, err := serverConfig(a.dataDir, *fl, a.getenv, os.ReadFile)
	if err != nil {
		return usagef(err.Error(), "run 'imprint doctor -h' for usage")
	}
	d := &doctorRun{cfg: cfg, env: env}
	d.checkDataDir()
	d.checkDisk(need)
	up := d.checkSocket()
	d.checkPorts(up)
	d.checkCerts()
	d.checkBootImage()
	if *iface != "" {
		d.checkProxyDHCP(ctx, *iface, *timeout)
	}
	d.checkClock()

	failed := false
	for _, r := range d.results {
		failed = failed || r.Status == statusFail
	}
	if a.jsonOut {
		if err := a.printJSON(d.results); err != nil {
			return err
		}
	} else {
		for _, r := range d.results {
			fmt.Fprintf(a.stdout, "%-4s  %s: %s\n", r.Status, r.Check, safe(r.Detail))
			if r.Fix != "" {
				fmt.Fprintf(a.stdout, "      fix: %s\n", safe(r.Fix))
			}
		}
	}
	if failed {
		return &silentError{status: exitError}
	}
	return nil
}

// doctorRun collects the results of one run.
type doctorRun struct {
	cfg     server.Config
	env     doctorEnv
	results []checkResult
}

func (d *doctorRun) add(status, check, detail, fix string) {
	d.results = append(d.results, checkResult{Status: status, Check: check, Detail: detail, Fix: fix})
}

func (d *doctorRun) checkDataDir() {
	dir := d.cfg.DataDir
	st, err := os.Stat(dir)
	if err != nil {
		d.add(statusFail, "data directory", fmt.Sprintf("%s: %v", dir, err),
			"start the server once (it creates the directory), or give doctor the server's --data or --config")
		return
	}
	if !st.IsDir() {
		d.add(statusFail, "data directory", dir+" is not a directory", "point --data at the server's data directory")
		return
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		d.add(statusFail, "data directory", fmt.Sprintf("%s is mode %04o: other users can read the database and the CA key", dir, perm),
			"chmod 700 "+dir+" (the server also tightens it when it starts)")
	} else {
		d.add(statusOK, "data directory", fmt.Sprintf("%s is mode %04o", dir, st.Mode().Perm()), "")
	}
	if uid, ok := d.env.owner(st); ok && uid != d.env.euid {
		d.add(statusWarn, "data directory owner", fmt.Sprintf("%s belongs to uid %d, doctor runs as uid %d", dir, uid, d.env.euid),
			"run doctor as the service user (sudo -u imprint imprint doctor …), or chown -R the directory to it")
	}
}

func (d *doctorRun) checkDisk(need uint64) {
	if d.env.statfs == nil {
		d.add(statusWarn, "free disk", "not checked on this system", "")
		return
	}
	free, err := d.env.statfs(d.cfg.DataDir)
	if err != nil {
		d.add(statusWarn, "free disk", fmt.Sprintf("cannot read the free space of %s: %v", d.cfg.DataDir, err), "")
		return
	}
	detail := fmt.Sprintf("%s free in %s", humanBytes(int64(free)), d.cfg.DataDir)
	fix := "free space there, or move the data directory (--data) to a larger disk: uploads, run logs and the database need room"
	switch {
	case free < need:
		d.add(statusFail, "free disk", detail+fmt.Sprintf(" (less than %s)", humanBytes(int64(need))), fix)
	case free < 4*need:
		d.add(statusWarn, "free disk", detail+fmt.Sprintf(" (less than 4 × %s)", humanBytes(int64(need))), fix)
	default:
		d.add(statusOK, "free disk", detail, "")
	}
}

// checkSocket reports whether the server runs (its socket answers) and
// checks the socket's mode.
func (d *doctorRun) checkSocket() bool {
	sock := server.SocketPath(d.cfg.DataDir)
	st, err := os.Lstat(sock)
	if err != nil {
		d.add(statusWarn, "server", "not running (no "+sock+")", "start it: imprint server (or systemctl start imprint)")
		return false
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		d.add(statusFail, "admin socket", fmt.Sprintf("%s is mode %04o: other users can administer the server", sock, perm),
			"chmod 600 "+sock+", and restart the server (it creates the socket 0600)")
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		d.add(statusWarn, "server", "not running ("+sock+" does not answer)", "start it: imprint server (or systemctl start imprint)")
		return false
	}
	c.Close()
	d.add(statusOK, "server", "running (its admin socket answers)", "")
	return true
}

func (d *doctorRun) checkPorts(up bool) {
	for _, p := range []struct{ name, addr, flag string }{
		{"API port", d.cfg.Listen, "--listen"},
		{"boot port", d.cfg.BootListen, "--boot-listen"},
	} {
		d.checkTCP(p.name, p.addr, p.flag, up)
	}
	if !d.cfg.PXE {
		return
	}
	for _, p := range []struct {
		port int
		what string
	}{{67, "proxyDHCP"}, {4011, "PXE boot service"}, {69, "TFTP"}} {
		name := fmt.Sprintf("UDP %d (%s)", p.port, p.what)
		pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", p.port))
		switch {
		case err == nil:
			pc.Close()
			if up {
				d.add(statusFail, name, "free while the server runs: the server is not serving PXE", "restart the server with --pxe, and read its log for why PXE did not start")
			} else {
				d.add(statusOK, name, "free to bind", "")
			}
		case errors.Is(err, syscall.EADDRINUSE) && up:
			d.add(statusOK, name, "bound (by the running server)", "")
		case errors.Is(err, syscall.EADDRINUSE):
			d.add(statusFail, name, "in use by another program (a DHCP or TFTP server such as dnsmasq?)",
				fmt.Sprintf("find it with: ss -lunp 'sport = :%d', and stop it or turn its PXE part off", p.port))
		case errors.Is(err, syscall.EACCES):
			d.add(statusFail, name, "binding it needs root or CAP_NET_BIND_SERVICE",
				"run the server with CAP_NET_BIND_SERVICE (the Debian package's unit adds it with --pxe), and doctor as root to check")
		default:
			d.add(statusFail, name, err.Error(), "")
		}
	}
}

func (d *doctorRun) checkTCP(name, addr, flag string, up bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		d.add(statusFail, name, fmt.Sprintf("%q is not HOST:PORT", addr), "fix "+flag)
		return
	}
	if up {
		dial := host
		if dial == "" || net.ParseIP(dial) != nil && net.ParseIP(dial).IsUnspecified() {
			dial = "127.0.0.1"
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(dial, port), 2*time.Second)
		if err != nil {
			d.add(statusFail, name, fmt.Sprintf("the server runs but %s does not answer: %v", addr, err),
				"check that "+flag+" is the running server's, and the server's log")
			return
		}
		c.Close()
		d.add(statusOK, name, addr+" answers", "")
		return
	}
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		ln.Close()
		d.add(statusOK, name, addr+" is free to bind", "")
	case errors.Is(err, syscall.EADDRINUSE):
		d.add(statusFail, name, addr+" is in use by another program",
			fmt.Sprintf("find it with: ss -ltnp 'sport = :%s', and stop it, or give the server another %s", port, flag))
	case errors.Is(err, syscall.EACCES):
		d.add(statusFail, name, "binding "+addr+" needs root or CAP_NET_BIND_SERVICE", "use a port above 1023, or give the server CAP_NET_BIND_SERVICE")
	default:
		d.add(statusFail, name, fmt.Sprintf("cannot bind %s: %v", addr, err), "fix "+flag)
	}
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func (d *doctorRun) checkCerts() {
	tdir := filepath.Join(d.cfg.DataDir, "tls")
	restart := "restart the server: it issues a new server certificate from its CA when the old one expires within 30 days or misses a name"
	ca, err := readCert(filepath.Join(tdir, "ca.crt"))
	if errors.Is(err, os.ErrNotExist) {
		d.add(statusWarn, "certificates", "none yet in "+tdir, "start the server once: it creates its CA and certificate")
		return
	} else if err != nil {
		d.add(statusFail, "CA certificate", err.Error(), "restore "+tdir+" from a backup (imprint restore): machines pin this CA")
		return
	}
	now := d.env.now()
	if now.After(ca.NotAfter) {
		d.add(statusFail, "CA certificate", "expired on "+ca.NotAfter.Format(time.DateOnly),
			"a new CA means every machine and boot image must trust it anew: move "+tdir+" aside, restart the server and rebuild the boot image")
	} else {
		d.add(statusOK, "CA certificate", "valid until "+ca.NotAfter.Format(time.DateOnly), "")
	}
	leaf, err := readCert(filepath.Join(tdir, "server.crt"))
	if err != nil {
		d.add(statusFail, "server certificate", err.Error(), "remove server.crt and server.key from "+tdir+" and restart the server")
		return
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: leaf.NotBefore.Add(time.Second)}); err != nil {
		d.add(statusFail, "server certificate", "not issued by the CA in "+tdir+": machines will refuse it",
			"remove server.crt and server.key from "+tdir+" and restart the server")
	}
	switch {
	case now.After(leaf.NotAfter):
		d.add(statusFail, "server certificate", "expired on "+leaf.NotAfter.Format(time.DateOnly), restart)
	case now.Add(30 * 24 * time.Hour).After(leaf.NotAfter):
		d.add(statusWarn, "server certificate", "expires on "+leaf.NotAfter.Format(time.DateOnly), restart)
	default:
		d.add(statusOK, "server certificate", "valid until "+leaf.NotAfter.Format(time.DateOnly), "")
	}
	hosts := append([]string(nil), d.cfg.CertHosts...)
	if u, err := url.Parse(d.cfg.PublicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	var missing []string
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			missing = append(missing, h)
		}
	}
	names := append(append([]string(nil), leaf.DNSNames...), ipStrings(leaf.IPAddresses)...)
	if len(missing) > 0 {
		d.add(statusFail, "certificate names", fmt.Sprintf("does not cover %s (it covers %s)", strings.Join(missing, ", "), strings.Join(names, ", ")),
			"start the server with --cert-host for each name machines use ("+strings.Join(missing, ", ")+"): it reissues the certificate")
	} else {
		d.add(statusOK, "certificate names", "covers "+strings.Join(names, ", "), "")
	}
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

func (d *doctorRun) checkBootImage() {
	dir := filepath.Join(server.BootImagesDir(d.cfg.DataDir), "x86_64")
	build := "build it: imprint bootimage build"
	img, err := bootimage.LoadImage(dir)
	if errors.Is(err, os.ErrNotExist) {
		d.add(statusFail, "boot image", "none in "+dir+": machines cannot boot", build)
		return
	} else if err != nil {
		d.add(statusFail, "boot image", err.Error(), build)
		return
	}
	d.add(statusOK, "boot image", fmt.Sprintf("kernel %s and initrd match the manifest", img.Manifest.KernelVersion), "")
	if d.env.agent == "" {
		d.add(statusWarn, "boot image agent", "no imprint-agent beside this imprint binary: the image's agent was not compared",
			"install imprint-agent next to imprint to have it compared")
		return
	}
	f, err := os.Open(d.env.agent)
	if err != nil {
		d.add(statusWarn, "boot image agent", err.Error(), "")
		return
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		d.add(statusWarn, "boot image agent", err.Error(), "")
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != img.Manifest.AgentSHA256 {
		d.add(statusFail, "boot image agent", "the image holds another imprint-agent than "+d.env.agent+" (an older release?)", build)
	} else {
		d.add(statusOK, "boot image agent", "the image holds "+d.env.agent, "")
	}
}

func (d *doctorRun) checkProxyDHCP(ctx context.Context, iface string, timeout time.Duration) {
	name := "proxyDHCP on " + iface
	if d.env.proxyDHCP == nil {
		d.add(statusWarn, name, "not checked on this system", "")
		return
	}
	got, err := d.env.proxyDHCP(ctx, iface, timeout)
	if err != nil {
		d.add(statusFail, name, err.Error(),
			"is the server running with --pxe (and --pxe-interface, if set, the interface facing this network)? Is UDP 67 open in its firewall? Across routers, the DHCP relay (ip helper) must forward to the server too")
		return
	}
	d.add(statusOK, name, got, "")
}

func (d *doctorRun) checkClock() {
	if d.env.clock == nil {
		d.add(statusWarn, "clock", "not checked on this system", "")
		return
	}
	synced, maxErr, err := d.env.clock()
	fix := "turn on NTP (timedatectl set-ntp true, or chrony): certificate validity, session expiry and audit times depend on the clock"
	switch {
	case err != nil:
		d.add(statusWarn, "clock", "cannot read the clock's state: "+err.Error(), "")
	case !synced:
		d.add(statusWarn, "clock", "the kernel reports the clock not synchronised", fix)
	case maxErr > time.Second:
		d.add(statusWarn, "clock", fmt.Sprintf("synchronised, but the estimated error is %s", maxErr), fix)
	default:
		d.add(statusOK, "clock", fmt.Sprintf("synchronised (estimated error %s)", maxErr), "")
	}
}

// parseSize parses a size in bytes with an optional K, M, G or T suffix
// (powers of 1024).
func parseSize(s string) (uint64, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := uint64(1)
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGT", s[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			s = s[:n-1]
		}
	}
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || s == "" {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M, G or T)", s)
	}
	return n * mult, nil
}
