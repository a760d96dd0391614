//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ipv4Group captures a whole IPv4 address: the character after it must
// have arrived too, or a console read cut short would match a prefix.
const ipv4Group = `(\d+\.\d+\.\d+\.\d+)[^\d.]`

// Console lines of OVMF's PXE client and of iPXE on the way to the boot
// script.
var (
	reFwPXEStart = regexp.MustCompile(`Start PXE over IPv4`)
	reFwStation  = regexp.MustCompile(`Station IP address is ` + ipv4Group)
	reFwServer   = regexp.MustCompile(`Server IP address is ` + ipv4Group)
	// The name must end its line: the console arrives in chunks, and a
	// chunk boundary inside "ipxe.efi" must not match as "ipxe.e".
	reFwNBP      = regexp.MustCompile(`NBP filename is (\S+)[ \t]*\r?\n`)
	reIPXEConfig = regexp.MustCompile(`Configuring \(net\d`)
	reIPXEServer = regexp.MustCompile(`Next server: [^\r\n]*?` + ipv4Group)
	reIPXEScript = regexp.MustCompile(`http://` + regexp.QuoteMeta(lanServerIP) + `:\d+/boot\.ipxe`)
	reIPXEAddr   = regexp.MustCompile(`net\d: (\d+\.\d+\.\d+\.\d+)/`)
	// reTFTPIPXE is the server's log line of a TFTP download of ipxe.efi.
	reTFTPIPXE = regexp.MustCompile(`msg="tftp: read".* name=ipxe\.efi`)
	// dnsmasq's range is 10.77.0.50-150.
	reDNSMasqLease = regexp.MustCompile(`^10\.77\.0\.([5-9]\d|1[0-4]\d|150)$`)
)

// TestLANProxyDHCP network-boots an empty UEFI machine on a bridged LAN
// where dnsmasq is the site's DHCP server, unchanged (addresses only), and
// Imprint's own proxyDHCP and TFTP (`imprint server --pxe`) supply the
// boot. Two ways in:
//   - "firmware PXE": the NIC has no option ROM, so OVMF's own PXE client
//     gets its address from dnsmasq and ipxe.efi over TFTP from Imprint;
//     that iPXE asks again and is sent the boot script;
//   - "iPXE ROM": the NIC runs iPXE's efi-virtio.rom, which already is
//     iPXE, so the proxy sends it the boot script at once.
//
// Either way the boot image's agent must ask for the passcode and, once
// it is given, offer the task sequences. The server's Secure Boot mode is
// turned off: with it, OVMF's own PXE client would get shim instead.
func TestLANProxyDHCP(t *testing.T) {
	start := time.Now()
	for _, tc := range []struct {
		name     string
		firmware bool // OVMF's PXE client, no iPXE option ROM
	}{
		{"firmware PXE", true},
		{"iPXE ROM", false},
	} {
		t.Run(tc.name, func(t *testing.T) { lanProxyDHCP(t, tc.firmware) })
	}
	t.Logf("TestLANProxyDHCP took %.1fs", time.Since(start).Seconds())
}

func lanProxyDHCP(t *testing.T, firmwarePXE bool) {
	e := newEnvWith(t, envOptions{LAN: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// This test is about the iPXE path: without Secure Boot mode (on by
	// default) firmware PXE gets ipxe.efi; TestSecureBootPXE covers shim.
	if _, err := e.imprint(ctx, "", "security", "set", "secure-boot", "off"); err != nil {
		t.Fatal(err)
	}

	payload := filepath.Join(e.Dir, "payload.bin")
	if err := os.WriteFile(payload, []byte("not deployed by this test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	imageID := e.uploadImage(ctx, "e2e LAN payload", payload)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E LAN proxyDHCP", imageID, nil)

	vm := e.StartVM(VMOptions{Name: "lan", Firmware: UEFI, Disk: filepath.Join(e.Dir, "disk.img"), DiskSize: 64 << 20,
		LAN: true, NoOptionROM: firmwarePXE})
	c := vm.Console
	expect := func(re *regexp.Regexp) (string, time.Duration) {
		t.Helper()
		m, err := expectOrFail(ctx, c, re)
		if err != nil {
			t.Fatal(err)
		}
		// The group, as a terminal shows it: iPXE colours its output.
		sub := re.FindStringSubmatch(m)[re.NumSubexp()]
		return strings.TrimSpace(ansiRE.ReplaceAllString(sub, "")), c.Elapsed()
	}
	if firmwarePXE {
		_, fwStart := expect(reFwPXEStart)
		if ip, _ := expect(reFwStation); !reDNSMasqLease.MatchString(ip) {
			t.Errorf("firmware's address %s is not from dnsmasq's range 10.77.0.50-150", ip)
		}
		if ip, _ := expect(reFwServer); ip != lanServerIP {
			t.Errorf("firmware's boot server is %s, want Imprint at %s", ip, lanServerIP)
		}
		f, fwNBP := expect(reFwNBP)
		if f != "ipxe.efi" {
			t.Errorf("firmware's boot file is %q, want ipxe.efi", f)
		}
		t.Logf("firmware PXE: %.1fs from its start to the boot file's name", (fwNBP - fwStart).Seconds())
	}
	_, cfgStart := expect(reIPXEConfig)
	if ip, _ := expect(reIPXEAddr); !reDNSMasqLease.MatchString(ip) {
		t.Errorf("iPXE's address %s is not from dnsmasq's range 10.77.0.50-150", ip)
	}
	if ip, _ := expect(reIPXEServer); ip != lanServerIP {
		t.Errorf("iPXE's next server is %s, want Imprint at %s", ip, lanServerIP)
	}
	// About 16 s of this is not DHCP: iPXE's "Configuring" also waits for
	// an IPv6 router advertisement, and this LAN, like the site in
	// feasibility §6, has no IPv6 router; its solicitations time out after
	// 1+2+4+8 s. With dnsmasq sending RAs it took 3.3 s.
	_, script := expect(reIPXEScript)
	t.Logf("iPXE: %.1fs from \"Configuring\" (DHCP, proxyDHCP, IPv6 autoconfiguration) to fetching the boot script at %.1fs",
		(script - cfgStart).Seconds(), script.Seconds())

	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	t.Logf("passcode prompt answered at %.1fs", c.Elapsed().Seconds())
	listing, err := expectOrFail(ctx, c, rePicker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pickerChoice(listing, ts.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("agent offered the task sequences at %.1fs", c.Elapsed().Seconds())
	b, err := os.ReadFile(e.srvLog)
	if err != nil {
		t.Fatal(err)
	}
	if firmwarePXE && !reTFTPIPXE.Match(b) {
		t.Errorf("server log has no TFTP read of ipxe.efi: the firmware's boot file did not come from Imprint")
	}
}
