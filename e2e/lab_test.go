//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startLab runs `imprint lab` as a user does, in the server's namespace
// (where the server's URLs name 10.0.2.2, the host as QEMU's user network
// shows it): its stdio is the machine's console.
func (e *Env) startLab(name string, args ...string) *VM {
	e.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.NS, e.A.Imprint, "--data", e.Data, "lab",
		"--name", name, "--dir", e.Dir, "--accel", "tcg"}, args...)...)
	e.t.Logf("imprint lab: %v", cmd.Args[4:])
	return e.startConsole("lab-"+name, cmd)
}

// TestLab drives `imprint lab` the way a deployment engineer tries a task
// sequence on a laptop: a UEFI machine on QEMU's private network boots
// from the running server, takes the passcode, runs the Linux template and
// reboots into the deployed OS; the disk is checked on the host. Started
// again with the same name it is the same machine, its disk and UEFI
// variables kept: the deployed OS comes up with no passcode asked.
func TestLab(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	osimg := e.buildTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux lab", imageID, nil)

	vm := e.startLab("try", "--firmware", "uefi", "--disk-size", "1G", "--memory", "1024", "--cpus", "1")
	c := vm.Console
	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	if err := awaitRun(ctx, c, ts.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("run succeeded at %.1fs; rebooting into the deployed disk", c.Elapsed().Seconds())
	i, m, err := c.ExpectFirst(ctx, reDeployed, reOSFailed, rePanic, rePasscode)
	if err != nil {
		t.Fatal(err)
	}
	if want := "IMPRINT-DEPLOYED-OK hostname=" + osimg.Hostname + " marker=" + osimg.Marker; i != 0 || strings.TrimSpace(m) != want {
		t.Fatalf("after the reboot: %q, want %q", m, want)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("imprint lab: %v", err)
	}
	if out := c.Output(); !strings.Contains(out, "lab: try (uefi, 1 GiB disk") {
		t.Errorf("imprint lab did not say what it boots; its output starts:\n%.400s", out)
	}
	e.checkLastRun(t, ctx, ts.ID, linuxSteps)
	disk := filepath.Join(e.Dir, "try", "disk.img")
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}

	// The same machine again: its disk and UEFI variables (with the boot
	// entry Prepare operating system made) are kept.
	again := e.startLab("try")
	i, m, err = again.Console.ExpectFirst(ctx, reDeployed, rePasscode, reOSFailed, rePanic)
	if err != nil {
		t.Fatal(err)
	}
	if i != 0 {
		t.Fatalf("started again, the lab machine did not boot its deployed OS: %q", m)
	}
	if err := again.Wait(ctx); err != nil {
		t.Fatalf("imprint lab, second start: %v", err)
	}
	t.Logf("TestLab took %.1fs", time.Since(start).Seconds())
}
