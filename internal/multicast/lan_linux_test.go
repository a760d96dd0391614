package multicast_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/multicast"
	"github.com/imprint-osd/imprint/internal/netlab"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// helperEnv makes the test binary act as one end of a session inside a
// namespace (TestHelperProcess) instead of running the tests.
const helperEnv = "IMPRINT_MULTICAST_HELPER"

// result is what a receiving helper prints.
type result struct {
	SHA256             string
	Multicast, Unicast int64
	Lost               string
}

// TestHelperProcess is not a test: run with helperEnv set, inside a
// namespace, it is udp-sender's or a machine's side of a session.
//
//	send FILE PORTBASE MACHINES WAIT RETRIES-UNTIL-DROP
//	recv FILE OUT PORTBASE START-TIMEOUT (FILE stands in for the server's Range fallback)
func TestHelperProcess(t *testing.T) {
	args := filepathList(os.Getenv(helperEnv))
	if len(args) == 0 {
		return
	}
	ctx := context.Background()
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	switch args[0] {
	case "send":
		f, err := os.Open(args[1])
		if err != nil {
			fail(err)
		}
		cfg := multicast.SendConfig{Interface: "eth0", Portbase: atoi(args[2]), Machines: atoi(args[3]),
			Wait: time.Duration(atoi(args[4])) * time.Second, RetriesUntilDrop: atoi(args[5])}
		if err := multicast.Send(ctx, f, cfg, func(ev multicast.Event, line string) {
			fmt.Fprintf(os.Stderr, "sender: %d %s\n", ev, line)
		}); err != nil {
			fail(err)
		}
	case "recv":
		src, out := args[1], args[2]
		fi, err := os.Stat(src)
		if err != nil {
			fail(err)
		}
		rc, err := multicast.Receive(ctx, multicast.ReceiveConfig{Interface: "eth0", Portbase: atoi(args[3]),
			StartTimeout: time.Duration(atoi(args[4])) * time.Second, ReceiveTimeout: 5 * time.Second})
		if err != nil {
			fail(err)
		}
		fallback := func(_ context.Context, off int64) (io.ReadCloser, error) {
			f, err := os.Open(src)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "falling back to unicast at byte %d\n", off)
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return nil, err
			}
			return f, nil
		}
		r := multicast.NewReader(ctx, rc, fallback, fi.Size())
		w, err := os.Create(out)
		if err != nil {
			fail(err)
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
			fail(err)
		}
		r.Close()
		res := result{SHA256: hex.EncodeToString(h.Sum(nil)), Multicast: r.Multicast, Unicast: r.Unicast}
		if r.Lost != nil {
			res.Lost = r.Lost.Error()
		}
		json.NewEncoder(os.Stdout).Encode(res)
	}
	os.Exit(0)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "helper:", err)
	os.Exit(1)
}

func filepathList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, f := range bytes.Split([]byte(s), []byte{0x1f}) {
		out = append(out, string(f))
	}
	return out
}

// helper starts the test binary in h's namespace as one end of a session.
func helper(t *testing.T, ctx context.Context, h netlab.Host, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := h.Command(ctx, netlab.Self(t), "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(bytes.Join(toBytes(args), []byte{0x1f})))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func image(t *testing.T, size int) (string, string) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "image.bin")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

func decode(t *testing.T, name string, cmd *exec.Cmd, out, errb *bytes.Buffer) result {
	t.Helper()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, errb)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%s printed %q: %v\n%s", name, out, err, errb)
	}
	return r
}

// TestSessionOnALAN sends one image to four machines on a bridged LAN
// with the real udpcast: every machine writes the exact bytes, the sender
// puts about one image on the wire rather than four, and nothing came by
// the unicast fallback.
func TestSessionOnALAN(t *testing.T) {
	testenv.LookPath(t, multicast.SenderProgram)
	testenv.LookPath(t, multicast.ReceiverProgram)
	lan := netlab.New(t, 5)
	const size = 32 << 20
	src, sum := image(t, size)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	before := lan.Hosts[0].TxBytes(t)
	type recv struct {
		cmd       *exec.Cmd
		out, errb *bytes.Buffer
	}
	var rs []recv
	for i := 1; i <= 4; i++ {
		cmd, out, errb := helper(t, ctx, lan.Hosts[i], "recv", src, filepath.Join(t.TempDir(), "disk"), "9000", "60")
		rs = append(rs, recv{cmd, out, errb})
	}
	send, _, sendErr := helper(t, ctx, lan.Hosts[0], "send", src, "9000", "4", "30", "0")
	defer func() {
		if t.Failed() {
			t.Logf("sender:\n%s", sendErr)
		}
	}()
	for i, r := range rs {
		got := decode(t, fmt.Sprintf("receiver %d", i+1), r.cmd, r.out, r.errb)
		if got.SHA256 != sum {
			t.Errorf("receiver %d wrote SHA-256 %s, want %s", i+1, got.SHA256, sum)
		}
		// On a loaded 2-core machine udpcast may drop a slow receiver near
		// the end; it then finishes by unicast, which the hash above
		// covers. Most of the image must still come by multicast.
		if got.Multicast < size*3/4 {
			t.Errorf("receiver %d: %d bytes by multicast, %d by unicast; want most of %d by multicast (lost: %s)\n%s", i+1, got.Multicast, got.Unicast, size, got.Lost, r.errb)
		}
		t.Logf("receiver %d: %d bytes by multicast, %d by unicast", i+1, got.Multicast, got.Unicast)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("sender: %v\n%s", err, sendErr)
	}
	sent := lan.Hosts[0].TxBytes(t) - before
	t.Logf("sender put %d bytes on the wire for 4 machines: %.2f× the image", sent, float64(sent)/size)
	// Unicast would be 4×. Retransmissions on a loaded machine cost up
	// to about half an image more; 2× means multicast is not working.
	if sent > size*2 {
		t.Errorf("sender sent %d bytes for a %d-byte image to 4 machines: more than 2× the image", sent, size)
	}
}

// TestStalledAndLateMachinesFallBack: a machine that stops reading in the
// middle is dropped (after the server's default RetriesUntilDrop) without
// holding the others up for long (the time is logged), and finishes by
// unicast from the byte it had reached; a machine that joins after the
// transfer started waits StartTimeout, then takes it all by unicast.
func TestStalledAndLateMachinesFallBack(t *testing.T) {
	testenv.LookPath(t, multicast.SenderProgram)
	testenv.LookPath(t, multicast.ReceiverProgram)
	lan := netlab.New(t, 4)
	const size = 48 << 20
	src, sum := image(t, size)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	good, goodOut, goodErr := helper(t, ctx, lan.Hosts[1], "recv", src, filepath.Join(t.TempDir(), "disk"), "9000", "60")
	stallDisk := filepath.Join(t.TempDir(), "disk")
	stall, stallOut, stallErr := helper(t, ctx, lan.Hosts[2], "recv", src, stallDisk, "9000", "60")
	send, _, sendErr := helper(t, ctx, lan.Hosts[0], "send", src, "9000", "2", "30", "0")
	// Stop the stalled machine's whole process group (the helper and its
	// udp-receiver) once it has written 4 MiB.
	for {
		if fi, err := os.Stat(stallDisk); err == nil && fi.Size() >= 4<<20 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the machine to stall never wrote 4 MiB: %v\n%s\n%s", ctx.Err(), stallErr, sendErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-stall.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g := decode(t, "running machine", good, goodOut, goodErr)
	if err := send.Wait(); err != nil {
		t.Fatalf("sender: %v\n%s", err, sendErr)
	}
	t.Logf("the running machine and the sender finished %.1fs after the other machine stalled", time.Since(start).Seconds())
	// Under heavy load udpcast may drop the running machine too; it then
	// finishes by unicast, and its bytes must still be right.
	if g.SHA256 != sum {
		t.Errorf("running machine: SHA-256 %s, want %s", g.SHA256, sum)
	}
	t.Logf("running machine: %d bytes by multicast, %d by unicast", g.Multicast, g.Unicast)
	if err := syscall.Kill(-stall.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s := decode(t, "stalled machine", stall, stallOut, stallErr)
	if s.SHA256 != sum {
		t.Errorf("stalled machine wrote SHA-256 %s, want %s", s.SHA256, sum)
	}
	if s.Multicast == 0 || s.Unicast == 0 || s.Lost == "" {
		t.Errorf("stalled machine took %d bytes by unicast (lost: %q); want the rest after the stall by unicast", s.Unicast, s.Lost)
	}
	t.Logf("stalled machine: %d bytes by multicast, %d by unicast (%s)", s.Multicast, s.Unicast, s.Lost)

	// A late machine: no sender is waiting any more.
	late, lateOut, lateErr := helper(t, ctx, lan.Hosts[3], "recv", src, filepath.Join(t.TempDir(), "disk"), "9000", "2")
	l := decode(t, "late machine", late, lateOut, lateErr)
	if l.SHA256 != sum || l.Multicast != 0 || l.Unicast != size {
		t.Errorf("late machine: SHA-256 %s, %d multicast, %d unicast; want all %d by unicast", l.SHA256, l.Multicast, l.Unicast, size)
	}
}
