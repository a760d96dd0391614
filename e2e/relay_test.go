//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startRelay runs `imprint relay --pxe` in its own namespace on the LAN
// (lanRelayIP), in front of the server; its log goes to DIR/relay.log.
func (e *Env) startRelay() string {
	t := e.t
	t.Helper()
	ns := e.NS + "-relay"
	if _, err := run(context.Background(), "ip", "netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := run(context.Background(), "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	e.LAN.addLANHost(t, ns, "lan-relay", lanRelayIP)
	logPath := filepath.Join(e.Dir, "relay.log")
	exited := startDaemon(t, exec.Command("ip", "netns", "exec", ns, e.A.Imprint, "--data", filepath.Join(e.Dir, "relay"), "relay",
		"--upstream", fmt.Sprintf("https://%s:%d", lanServerIP, apiPort),
		"--upstream-boot", fmt.Sprintf("http://%s:%d", lanServerIP, bootPort),
		"--ca", filepath.Join(e.Data, "tls", "ca.crt"),
		"--listen", fmt.Sprintf("%s:%d", lanRelayIP, apiPort), "--boot-listen", fmt.Sprintf("%s:%d", lanRelayIP, bootPort),
		"--public-url", fmt.Sprintf("https://%s:%d", lanRelayIP, apiPort), "--boot-url", fmt.Sprintf("http://%s:%d", lanRelayIP, bootPort),
		"--cert-host", lanRelayIP,
		"--pxe", "--pxe-address", lanRelayIP, "--pxe-interface", "eth0", "--log-level", "debug"), logPath)
	// Ready when its boot port answers, asked from inside its namespace.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("relay exited during start: %v\n%s", err, b)
		default:
		}
		out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sf", "-o", "/dev/null", "-w", "%{http_code}",
			fmt.Sprintf("http://%s:%d/boot.ipxe", lanRelayIP, bootPort)).Output()
		if err == nil && string(out) == fmt.Sprint(http.StatusOK) {
			return logPath
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("relay's boot port did not answer within 30s:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRelayPXE is a machine at a branch: a UEFI machine on a LAN whose
// site DHCP server knows nothing of Imprint network-boots from `imprint
// relay --pxe` (its proxyDHCP, its boot port with the central boot image),
// logs in and deploys through the relay, reboots with its run recorded on
// the central server, and its image is then in the relay's cache. The
// central server answers no PXE and serves no boot script.
func TestRelayPXE(t *testing.T) {
	start := time.Now()
	e := newEnvWith(t, envOptions{LAN: true, Relay: true})
	relayLog := e.startRelay()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	osimg := e.buildTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux at a branch", imageID, nil)

	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "branch", Firmware: UEFI, Disk: disk, DiskSize: 1 << 30, LAN: true, NoReboot: true})
	reRelayScript := regexp.MustCompile(`http://` + regexp.QuoteMeta(lanRelayIP) + `:\d+/boot\.ipxe`)
	if _, err := expectOrFail(ctx, vm.Console, reRelayScript); err != nil {
		t.Fatalf("iPXE did not fetch the relay's boot script: %v", err)
	}
	t.Logf("iPXE fetched the relay's boot script at %.1fs", vm.Console.Elapsed().Seconds())
	deployToEnd(t, ctx, vm, ts.Name)
	e.checkLastRun(t, ctx, ts.ID, linuxSteps)
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}
	if got := vm.Console.Output(); !strings.Contains(got, "imprint.server=https://"+lanRelayIP) {
		t.Errorf("the boot image was not pointed at the relay (no imprint.server=https://%s on the console)", lanRelayIP)
	}
	srvLog, _ := os.ReadFile(e.srvLog)
	if strings.Contains(string(srvLog), `msg="boot script"`) {
		t.Errorf("the central server served a boot script; the relay should have")
	}
	zst, err := os.ReadFile(osimg.Zst)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(zst))
	if _, err := os.Stat(filepath.Join(e.Dir, "relay", "content", "sha256", sum[:2], sum)); err != nil {
		rlog, _ := os.ReadFile(relayLog)
		t.Errorf("the image (SHA-256 %s) is not in the relay's cache: %v; relay log:\n%s", sum, err, rlog)
	}
	t.Logf("TestRelayPXE took %.1fs", time.Since(start).Seconds())
}
