package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

// recordingQEMU is a stand-in for qemu-system-x86_64 (a program we do not
// own; the QEMU run itself is e2e's TestLab) that writes its arguments,
// one per line, to the file beside it.
func recordingQEMU(t *testing.T) (prog, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	prog, argsFile = filepath.Join(dir, "qemu"), filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + argsFile + "\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, argsFile
}

// TestLabRefusesLoopbackServer: a server whose URLs name localhost (the
// default without --cert-host) cannot be reached from a VM, and lab says
// what to change instead of booting a machine that would fail later.
func TestLabRefusesLoopbackServer(t *testing.T) {
	dir := startServer(t)
	qemu, argsFile := recordingQEMU(t)
	r := imprint(t, dir, nil, "lab", "--qemu", qemu, "--dir", t.TempDir())
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	wantContains(t, "stderr", r.stderr, "names localhost", "--cert-host ADDRESS")
	if _, err := os.Stat(argsFile); err == nil {
		t.Error("QEMU was started for a server the VM cannot reach")
	}
}

// TestLabMachine: against a server on a host address, lab boots a named
// machine from the server's boot URL with a stable MAC and UUID, a sparse
// disk of the size asked and its own UEFI variables under --dir; the same
// name gives the same machine, --fresh a new disk.
func TestLabMachine(t *testing.T) {
	srv := servertest.Start(t, func(c *server.Config) { c.CertHosts = []string{"192.0.2.10"} })
	dir := srv.DataDir()
	qemu, argsFile := recordingQEMU(t)
	labDir := t.TempDir()
	start := func(extra ...string) []string {
		t.Helper()
		r := imprint(t, dir, nil, append([]string{"lab", "--qemu", qemu, "--dir", labDir, "--name", "bench7", "--accel", "tcg"}, extra...)...)
		if r.code != 0 {
			t.Fatalf("imprint lab: exit %d\nstderr: %s", r.code, r.stderr)
		}
		b, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	args := start("--disk-size", "8G", "--smbios", "type=1,manufacturer=Dell Inc.,product=Latitude 7440")
	joined := strings.Join(args, " ")
	wantContains(t, "qemu arguments", joined,
		"user,id=n0,bootfile="+srv.BootURL()+"/boot.ipxe",
		"-machine q35", "-serial stdio -monitor none", "-accel tcg",
		"file="+filepath.Join(labDir, "bench7", "disk.img")+",if=none",
		"file="+filepath.Join(labDir, "bench7", "vars.fd"),
		"-smbios type=1,manufacturer=Dell Inc.,product=Latitude 7440")
	mac := regexp.MustCompile(`mac=(52:54:00:[0-9a-f:]{8})`).FindStringSubmatch(joined)
	uuid := regexp.MustCompile(`-uuid ([0-9a-f-]{36})`).FindStringSubmatch(joined)
	if mac == nil || uuid == nil {
		t.Fatalf("no MAC or UUID for the machine in %q", joined)
	}
	fi, err := os.Stat(filepath.Join(labDir, "bench7", "disk.img"))
	if err != nil || fi.Size() != 8<<30 {
		t.Fatalf("disk: %v, size %v", err, fi)
	}
	// A deployment on the disk survives the next start of the machine.
	os.WriteFile(filepath.Join(labDir, "bench7", "disk.img"), []byte("deployed"), 0o644)
	again := strings.Join(start(), " ")
	if !strings.Contains(again, mac[0]) || !strings.Contains(again, "-uuid "+uuid[1]) {
		t.Errorf("the same name started another machine: %q", again)
	}
	if b, _ := os.ReadFile(filepath.Join(labDir, "bench7", "disk.img")); string(b) != "deployed" {
		t.Error("starting the machine again reset its disk")
	}
	start("--fresh", "--disk-size", "2G")
	if fi, err := os.Stat(filepath.Join(labDir, "bench7", "disk.img")); err != nil || fi.Size() != 2<<30 {
		t.Errorf("--fresh: disk %v, want a new 2 GiB one", fi)
	}
	if got := strings.Join(start("--firmware", "bios", "--name", "old"), " "); !strings.Contains(got, "-boot n") || strings.Contains(got, "pflash") || strings.Contains(got, mac[0]) {
		t.Errorf("a BIOS machine named old: %q", got)
	}

	for _, bad := range [][]string{{"--firmware", "coreboot"}, {"--name", "../x"}, {"--disk-size", "big"}, {"--nic", "rtl8139"}, {"--firmware", "bios", "--secure-boot"}} {
		r := imprint(t, dir, nil, append([]string{"lab", "--qemu", qemu, "--dir", labDir}, bad...)...)
		if r.code == 0 {
			t.Errorf("imprint lab %v succeeded", bad)
		}
	}
}
