package content_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
)

const (
	helperEnv    = "IMPRINT_CONTENT_HELPER"
	helperDirEnv = "IMPRINT_CONTENT_HELPER_DIR"
	helperChunk  = 256 << 10
)

// stallReader hands out one chunk, then blocks as a stalled client would.
type stallReader struct{ sent bool }

func (r *stallReader) Read(p []byte) (int, error) {
	if r.sent {
		time.Sleep(time.Hour) // the parent kills us long before
		return 0, io.ErrUnexpectedEOF
	}
	r.sent = true
	n := min(len(p), helperChunk)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	return n, nil
}

// TestHelperProcess is not a test: TestKilledUpload runs the test binary
// again with only this test and helperEnv set, as the process to kill.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "put" {
		t.Skip("helper process for TestKilledUpload")
	}
	s, err := content.Open(os.Getenv(helperDirEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	_, err = s.Put(t.Context(), &stallReader{}, content.PutOptions{})
	fmt.Fprintln(os.Stderr, "helper: Put returned:", err)
	os.Exit(3) // never reached when killed
}

// TestKilledUpload kills (SIGKILL on Unix) a process in the middle of a Put
// and checks that no blob became visible and that the next Open removes the
// orphaned temp file.
func TestKilledUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := filepath.Join(t.TempDir(), "store")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=put", helperDirEnv+"="+dir)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	// Wait until the child has written its first chunk to a temp file.
	tmp := filepath.Join(dir, "tmp")
	waitFor(t, exited, &out, func() bool {
		ents, err := os.ReadDir(tmp)
		if err != nil || len(ents) != 1 {
			return false
		}
		fi, err := ents[0].Info()
		return err == nil && fi.Size() >= helperChunk
	})
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	err := <-exited
	exited <- err // for the cleanup
	if cmd.ProcessState.Success() || cmd.ProcessState.ExitCode() == 3 {
		t.Fatalf("child was not killed mid-Put: %v\n%s", err, out.String())
	}

	if got := files(t, dir, "sha256"); len(got) != 0 {
		t.Errorf("blobs visible after killed upload: %v", got)
	}
	s, err := content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Cleaned != 1 {
		t.Errorf("Cleaned = %d, want 1", s.Cleaned)
	}
	if got := files(t, dir, "tmp"); len(got) != 0 {
		t.Errorf("temp files left after Open: %v", got)
	}
}

// waitFor polls cond until it holds, failing if the child exits first. The
// long deadline only guards against a hung test; it asserts no timing.
func waitFor(t *testing.T, exited chan error, out *lockedBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("child exited early: %v\n%s", err, out.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never wrote its temp file\n%s", out.String())
		}
	}
}

// lockedBuffer collects the child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
