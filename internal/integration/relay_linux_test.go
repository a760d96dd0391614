package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/netlab"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestBranchRelay is issue 15's relay test: a central server and a relay
// in separate namespaces, machines (real agent processes) behind the
// relay. The first machine's image comes through the relay's cache; the
// relay's uplink is cut while that machine runs its next step and restored
// later, and no event is lost; a second machine's image comes from the
// cache, so the central server sends next to nothing.
func TestBranchRelay(t *testing.T) {
	testenv.LookPath(t, "sgdisk")
	lan := netlab.New(t, 4)
	central, relayHost := lan.Hosts[0], lan.Hosts[1]
	const size = 32 << 20

	imprintBin, agentBin := binaries(t)
	srv := startLabServer(t, central, imprintBin, "--trusted-proxy", relayHost.IP+"/32")
	work := t.TempDir()
	item, sum := addLabImage(t, srv, filepath.Join(work, "os.img"), "Branch image", size)
	// A Folder (a driver pack, say) goes through the relay's cache too,
	// file by file.
	folder := filepath.Join(work, "drivers")
	os.MkdirAll(filepath.Join(folder, "net"), 0o755)
	bigSum := randomFile(t, filepath.Join(folder, "net", "big.bin"), 6<<20)
	os.WriteFile(filepath.Join(folder, "readme.txt"), []byte("branch drivers\n"), 0o644)
	os.WriteFile(filepath.Join(folder, "empty.cat"), nil, 0o644)
	var pack deploy.ContentItem
	srv.cliJSON(t, &pack, "content", "add", "--name", "Branch drivers", "--type", "Folder", "--purpose", "DriverPack")
	srv.cli(t, "", "content", "version", pack.ID, folder, "--status", "Active")
	const tsID = "b0000000-0000-4000-8000-000000000016"
	gate := filepath.Join(work, "gate")
	os.MkdirAll(gate, 0o755)
	ts := taskSequence(tsID, "Branch image",
		step("a1", "Apply operating system", typeApplyOS,
			map[string]string{"ImageFormat": "Raw", "TargetPartition": "%LabDisk%#1"},
			map[string]string{"Image": item.ID + ":1"}),
		step("a15", "Check the folder", typeCommandLine,
			map[string]string{"CommandLine": "echo '" + bigSum + "  net/big.bin' | sha256sum -c - && test -f empty.cat && grep -q branch readme.txt"},
			map[string]string{"Content": pack.ID + ":1"}),
		step("a2", "Wait at the branch", typeCommandLine,
			map[string]string{"CommandLine": "touch " + gate + "/%Machine%-started; while [ ! -e " + gate + "/%Machine%-go ]; do sleep 0.2; done"}, nil),
		step("a3", "After the wait", typeCommandLine, map[string]string{"CommandLine": "true"}, nil))
	writeJSON(t, filepath.Join(work, "ts.json"), ts)
	srv.cli(t, "", "ts", "import", filepath.Join(work, "ts.json"))

	relayData := filepath.Join(work, "relay")
	startRelay(t, relayHost, imprintBin, relayData, "--upstream", "https://"+central.IP+":7281",
		"--ca", filepath.Join(srv.data, "tls", "ca.crt"),
		"--listen", relayHost.IP+":7281", "--boot-listen", relayHost.IP+":7282", "--cert-host", relayHost.IP)

	machine := func(h netlab.Host, name string) (*exec.Cmd, *lockedBuffer, string) {
		disk := newDisk(t, filepath.Join(work, name+".img"), size)
		cmd := exec.Command("ip", "netns", "exec", h.NS, agentBin, "run",
			"--server", "https://"+relayHost.IP+":7281", "--ca", filepath.Join(relayData, "tls", "ca.crt"),
			"--ts", "Branch image", "--var", "Passcode="+labPasscode, "--var", "LabDisk="+disk, "--var", "Machine="+name,
			"--state", filepath.Join(work, name+"-state"), "--power", "exit")
		b := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr, cmd.Stdin = b, b, strings.NewReader("")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, b, disk
	}
	waitFile := func(p string, cmd *exec.Cmd, log *lockedBuffer) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if _, err := os.Stat(p); err == nil {
				return
			}
			if cmd.ProcessState != nil || time.Now().After(deadline) {
				t.Fatalf("%s never appeared:\n%s", p, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Machine A: its image through the relay, then the uplink is cut
	// while it waits, and restored after it has finished its steps.
	before := central.TxBytes(t)
	a, aLog, aDisk := machine(lan.Hosts[2], "a")
	waitFile(filepath.Join(gate, "a-started"), a, aLog)
	firstBytes := central.TxBytes(t) - before
	cut := exec.Command("ip", "-n", relayHost.NS, "route", "add", "unreachable", central.IP+"/32")
	if out, err := cut.CombinedOutput(); err != nil {
		t.Fatalf("cut the uplink: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(gate, "a-go"), nil, 0o644)
	// The machine runs its last step with the uplink down; its reports
	// wait (the relay cannot reach the central server).
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(aLog.String(), "Step 4 of 4") {
		if time.Now().After(deadline) {
			t.Fatalf("machine a did not reach its last step with the uplink down:\n%s", aLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	var during deploy.Run
	var runs []deploy.Run
	srv.cliJSON(t, &runs, "runs", "list")
	if len(runs) != 1 {
		t.Fatalf("central server has %d runs during the cut, want 1", len(runs))
	}
	srv.cliJSON(t, &during, "runs", "show", runs[0].ID)
	if during.State.Terminal() || len(during.Steps) >= 4 {
		t.Errorf("the central server saw the run %s with %d steps while the uplink was down: the cut did not happen", during.State, len(during.Steps))
	}
	if out, err := exec.Command("ip", "-n", relayHost.NS, "route", "del", "unreachable", central.IP+"/32").CombinedOutput(); err != nil {
		t.Fatalf("restore the uplink: %v\n%s", err, out)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("machine a: %v\n%s", err, aLog)
	}
	if got := partitionSHA256(t, aDisk, size); got != sum {
		t.Errorf("machine a's disk holds SHA-256 %s, want %s", got, sum)
	}
	t.Logf("machine a: the central server sent %d bytes up to its second step (image %d)", firstBytes, size)
	if firstBytes < size {
		t.Errorf("the central server sent %d bytes for machine a, less than the image: the image did not come from it", firstBytes)
	}

	// Machine B: the same image and folder, from the relay's cache.
	os.WriteFile(filepath.Join(gate, "b-go"), nil, 0o644)
	before = central.TxBytes(t)
	b, bLog, bDisk := machine(lan.Hosts[3], "b")
	if err := b.Wait(); err != nil {
		t.Fatalf("machine b: %v\n%s", err, bLog)
	}
	secondBytes := central.TxBytes(t) - before
	if got := partitionSHA256(t, bDisk, size); got != sum {
		t.Errorf("machine b's disk holds SHA-256 %s, want %s", got, sum)
	}
	t.Logf("machine b: the central server sent %d bytes for the whole run (%.3f× the image)", secondBytes, float64(secondBytes)/size)
	if secondBytes > size/20 {
		t.Errorf("the central server sent %d bytes for machine b: its %d-byte image and 6 MiB folder did not come from the relay's cache", secondBytes, size)
	}

	// Both runs are recorded in full on the central server.
	runs = nil
	srv.cliJSON(t, &runs, "runs", "list")
	if len(runs) != 2 {
		t.Fatalf("central server has %d runs, want 2", len(runs))
	}
	for _, r := range runs {
		var run deploy.Run
		srv.cliJSON(t, &run, "runs", "show", r.ID)
		var names []string
		for _, s := range run.Steps {
			if s.Outcome == deploy.StepSucceeded {
				names = append(names, s.Name)
			}
			// The run record says the image came from the relay.
			for _, d := range s.Downloads {
				if d.Relay != size || d.Bytes != size {
					t.Errorf("run %s: download %+v, want all %d bytes from the relay", run.ID, d, size)
				}
			}
		}
		if len(run.Steps) == 0 || len(run.Steps[0].Downloads) != 1 {
			t.Errorf("run %s: the Apply step's record has no download", run.ID)
		}
		if run.State != deploy.RunSucceeded || len(names) != 4 {
			t.Errorf("run %s: state %s, succeeded steps %q; want succeeded with all 4 (no event lost)", run.ID, run.State, names)
		}
	}

	// The relay's boot script carries the central server's decision: a
	// machine whose run succeeded boots its disk, an unknown one deploys.
	mac, uuid := "02-00-00-00-00-99", runs[0].DeviceID
	if m, ok := strings.CutPrefix(uuid, "mac-"); ok {
		mac, uuid = m, ""
	}
	script := func(mac, uuid string) string {
		t.Helper()
		u := "http://" + relayHost.IP + ":7282/ipxe?arch=x86_64&platform=efi&mac=" + mac + "&uuid=" + uuid
		out, err := exec.Command("ip", "netns", "exec", lan.Hosts[2].NS, "curl", "-sS", "--max-time", "20", u).CombinedOutput()
		if err != nil {
			t.Fatalf("boot script from the relay: %v\n%s", err, out)
		}
		return string(out)
	}
	if got := script(mac, uuid); !strings.Contains(got, "goto local") {
		t.Errorf("the relay's boot script for deployed machine %s does not boot its disk:\n%s", runs[0].DeviceID, got)
	}
	if got := script("02-00-00-00-00-98", ""); !strings.Contains(got, "goto deploy") {
		t.Errorf("the relay's boot script for an unknown machine does not deploy:\n%s", got)
	}
}

// startRelay runs `imprint relay` in h's namespace until the test ends.
func startRelay(t *testing.T, h netlab.Host, bin, data string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	argv := append([]string{"netns", "exec", h.NS, bin, "--data", data, "relay", "--log-format", "json"}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	started := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var rec struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "imprint relay started" {
				started <- struct{}{}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("relay log:\n%s", log.String())
		}
	})
	select {
	case <-started:
	case <-done:
		t.Fatalf("relay exited:\n%s", log.String())
	case <-time.After(60 * time.Second):
		t.Fatal(fmt.Errorf("relay did not start"))
	}
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
