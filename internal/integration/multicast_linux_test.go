package integration_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
	"github.com/imprint-osd/imprint/internal/netlab"
	"github.com/imprint-osd/imprint/internal/testenv"
)

const typeApplyOS = "00000001-0000-0000-0000-000000000103"

// TestLabOfEightMachines is issue 15's measure: one server and eight
// machines on a bridged LAN, each a real imprint-agent process applying the
// same image to its own disk-image file. It deploys three times — by
// unicast, with a multicast session, and with peer sharing — checks every
// disk's bytes, and prints the bytes the server put on its interface per
// machine for each. The image is IMPRINT_LAB_MIB MiB (default 64;
// docs/performance.md has the 512 MiB run).
func TestLabOfEightMachines(t *testing.T) {
	testenv.LookPath(t, multicast.SenderProgram)
	testenv.LookPath(t, multicast.ReceiverProgram)
	testenv.LookPath(t, "sgdisk")
	const machines = 8
	lan := netlab.New(t, machines+1)
	srvHost := lan.Hosts[0]
	mib := 64
	if v, err := strconv.Atoi(os.Getenv("IMPRINT_LAB_MIB")); err == nil && v > 0 {
		mib = v
	}
	size := int64(mib) << 20

	imprintBin, agentBin := binaries(t)
	srv := startLabServer(t, srvHost, imprintBin)
	work := t.TempDir()
	item, sum := addLabImage(t, srv, filepath.Join(work, "os.img"), "Lab image", size)

	const tsID = "b0000000-0000-4000-8000-000000000015"
	apply := step("a1", "Apply operating system", typeApplyOS,
		map[string]string{"ImageFormat": "Raw", "TargetPartition": "%LabDisk%#1", "Multicast": "%LabMulticast%"},
		map[string]string{"Image": item.ID + ":1"})
	// The machines start one by one (eight agents log in on two cores);
	// a gate before Apply lets them take the image together, as a lab
	// does, even when the image is small enough to deploy in the time
	// they take to start.
	gate := step("g1", "Wait for the lab", typeCommandLine,
		map[string]string{"CommandLine": "touch %LabGate%/%LabMachine%; while [ ! -e %LabGate%/go ]; do sleep 0.1; done"}, nil)
	writeJSON(t, filepath.Join(work, "ts.json"), taskSequence(tsID, "Lab image", gate, apply))
	srv.cli(t, "", "ts", "import", filepath.Join(work, "ts.json"))
	ca := filepath.Join(srv.data, "tls", "ca.crt")

	deployAll := func(name string, useMulticast, peering bool) float64 {
		t.Helper()
		gateDir := filepath.Join(work, name+"-gate")
		if err := os.MkdirAll(gateDir, 0o755); err != nil {
			t.Fatal(err)
		}
		before := srvHost.TxBytes(t)
		var wg sync.WaitGroup
		logs := make([]string, machines)
		errs := make([]error, machines)
		disks := make([]string, machines)
		for i := range machines {
			disks[i] = newDisk(t, filepath.Join(work, fmt.Sprintf("%s-m%d.img", name, i+1)), size)
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := lan.Hosts[i+1]
				cmd := exec.Command("ip", "netns", "exec", h.NS, agentBin, "run",
					"--server", "https://"+srvHost.IP+":7281", "--ca", ca, "--ts", "Lab image",
					"--var", "Passcode="+labPasscode, "--var", "LabDisk="+disks[i],
					"--var", "LabMulticast="+strconv.FormatBool(useMulticast), "--var", "Peering="+strconv.FormatBool(peering),
					"--var", "LabGate="+gateDir, "--var", fmt.Sprintf("LabMachine=m%d", i+1),
					"--state", filepath.Join(work, fmt.Sprintf("%s-state%d", name, i+1)), "--power", "exit")
				var b bytes.Buffer
				cmd.Stdout, cmd.Stderr, cmd.Stdin = &b, &b, strings.NewReader("")
				errs[i] = cmd.Run()
				logs[i] = b.String()
			}()
		}
		// Open the gate once every machine waits at it (or has failed).
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
	wait:
		for {
			if n, _ := filepath.Glob(filepath.Join(gateDir, "m*")); len(n) == machines {
				break
			}
			select {
			case <-done:
				break wait
			case <-time.After(100 * time.Millisecond):
			}
		}
		if err := os.WriteFile(filepath.Join(gateDir, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		sent := srvHost.TxBytes(t) - before
		for i := range machines {
			if errs[i] != nil {
				t.Fatalf("%s: machine %d: %v\n%s", name, i+1, errs[i], logs[i])
			}
			if got := partitionSHA256(t, disks[i], size); got != sum {
				t.Errorf("%s: machine %d's disk holds SHA-256 %s, want %s\n%s", name, i+1, got, sum, logs[i])
			}
		}
		per := float64(sent) / float64(size) / machines
		t.Logf("%s: the server sent %d bytes for %d machines and a %d MiB image: %.2f× the image in all, %.3f× per machine",
			name, sent, machines, mib, float64(sent)/float64(size), per)
		return float64(sent) / float64(size)
	}

	uni := deployAll("unicast", false, false)
	if uni < machines {
		t.Errorf("unicast sent %.2f× the image for %d machines: the count of server bytes is wrong", uni, machines)
	}
	var sess multicast.Session
	srv.cliJSON(t, &sess, "multicast", "start", "--content", item.ID+":1", "--machines", strconv.Itoa(machines),
		"--wait", "60s", "--interface", "eth0")
	start := time.Now()
	multi := deployAll("multicast", true, false)
	t.Logf("multicast deployment took %.1fs; unicast/multicast server bytes: %.1f", time.Since(start).Seconds(), uni/multi)
	// The goal is 1.5× the image for 8 machines; on a loaded 2-core
	// machine udpcast's retransmissions can push past it, so the test
	// fails only where multicast clearly did not happen (2×).
	if multi > 2 {
		t.Errorf("multicast sent %.2f× the image for %d machines; want at most 2× (goal 1.5×)", multi, machines)
	}
	// Each machine's run record says where its image came from.
	if n := downloadsFrom(t, srv, size, func(d deploy.Download) bool { return d.Multicast > 0 }); n != machines {
		t.Errorf("%d run records say bytes came by multicast, want %d", n, machines)
	}
	var list []multicast.Session
	srv.cliJSON(t, &list, "multicast", "list")
	if len(list) != 1 || list[0].State != multicast.StateDone || list[0].Joined != machines {
		t.Errorf("sessions after the run = %+v, want one done with %d joined", list, machines)
	}

	start = time.Now()
	peers := deployAll("peers", false, true)
	t.Logf("peer-sharing deployment took %.1fs; unicast/peers server bytes: %.1f", time.Since(start).Seconds(), uni/peers)
	// The goal is 1.5× the image; the test fails where sharing clearly
	// did not happen.
	if peers > 2 {
		t.Errorf("peer sharing: the server sent %.2f× the image for %d machines; want at most 2× (goal 1.5×)", peers, machines)
	}
	if n := downloadsFrom(t, srv, size, func(d deploy.Download) bool { return d.Peers > 0 }); n < machines-1 {
		t.Errorf("%d run records say bytes came from peers, want at least %d", n, machines-1)
	}
}

// downloadsFrom counts the runs whose Apply step's download record matches
// fn; every download must add up to the image's size.
func downloadsFrom(t *testing.T, srv *server, size int64, fn func(deploy.Download) bool) int {
	t.Helper()
	var runs []deploy.Run
	srv.cliJSON(t, &runs, "runs", "list")
	n := 0
	for _, r := range runs {
		var run deploy.Run
		srv.cliJSON(t, &run, "runs", "show", r.ID)
		for _, st := range run.Steps {
			for _, d := range st.Downloads {
				if d.Bytes != size || d.Server+d.Relay+d.Peers+d.Multicast != d.Bytes {
					t.Errorf("run %s: download %+v does not add up to %d bytes", run.ID, d, size)
				}
				if fn(d) {
					n++
					t.Logf("run %s: %+v", run.ID, d)
				}
			}
		}
	}
	return n
}

// labPasscode is the passcode of the servers the lab tests start.
const labPasscode = "Lab-Bench-Orbit-4417"

// startLabServer starts `imprint server` in h's namespace on h's address
// (API 7281, boot 7282) with labPasscode set; args are added.
func startLabServer(t *testing.T, h netlab.Host, bin string, args ...string) *server {
	t.Helper()
	srv := startServerWith(t, []string{"ip", "netns", "exec", h.NS}, bin,
		append([]string{"--listen", h.IP + ":7281", "--boot-listen", h.IP + ":7282", "--cert-host", h.IP}, args...)...)
	srv.cli(t, labPasscode+"\n"+labPasscode+"\n", "passcode", "set")
	return srv
}

// addLabImage writes size random bytes to path and makes them the Active
// version 1 of a new File item; it returns the item and the bytes' SHA-256.
func addLabImage(t *testing.T, srv *server, path, name string, size int64) (deploy.ContentItem, string) {
	t.Helper()
	sum := randomFile(t, path, size)
	var item deploy.ContentItem
	srv.cliJSON(t, &item, "content", "add", "--name", name, "--type", "File", "--purpose", "OperatingSystem")
	srv.cli(t, "", "content", "version", item.ID, path, "--status", "Active")
	return item, sum
}

func randomFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newDisk makes a sparse GPT disk image with one partition of size bytes
// starting at 1 MiB.
func newDisk(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size + 4<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sectors := size / 512
	if out, err := exec.Command("sgdisk", "-n", fmt.Sprintf("1:2048:%d", 2048+sectors-1), path).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	return path
}

func partitionSHA256(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 1<<20, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
