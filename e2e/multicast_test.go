//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
)

// TestMulticastLAN: a QEMU machine on the bridged LAN joins a multicast
// session for its OS image. The boot image's udp-receiver takes the image
// from the server's udp-sender and the agent writes it to the disk; the
// run record says every byte came by multicast, and the host checks the
// disk.
func TestMulticastLAN(t *testing.T) {
	start := time.Now()
	needTools(t, multicast.SenderProgram, multicast.ReceiverProgram) // the boot image takes udp-receiver from the host
	e := newEnvWith(t, envOptions{LAN: true})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// The iPXE chain: proxyDHCP alone is enough for it (TestSecureBootPXE
	// covers shim).
	if _, err := e.imprint(ctx, "", "security", "set", "secure-boot", "off"); err != nil {
		t.Fatal(err)
	}
	osimg := e.buildTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e multicast OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E multicast", imageID, nil)
	e.setStepOption(ctx, ts, "Apply operating system", "Multicast", "true")

	out, err := e.imprint(ctx, "", "--json", "multicast", "start", "--content", imageID+":1", "--machines", "1", "--wait", "60s")
	if err != nil {
		t.Fatal(err)
	}
	var sess multicast.Session
	if err := jsonUnmarshal(out, &sess); err != nil || sess.Interface != "eth0" {
		t.Fatalf("multicast start answered %q (%v); want a session on the PXE interface eth0", out, err)
	}

	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "multicast", Firmware: UEFI, Disk: disk, DiskSize: 1 << 30, LAN: true, NoReboot: true})
	deployToEnd(t, ctx, vm, ts.Name)

	run, err := e.lastRun(ctx, ts.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRun(run, linuxSteps); err != nil {
		t.Error(err)
	}
	var apply string
	for _, s := range run.Steps {
		if s.Name == "Apply operating system" {
			apply = s.OutputTail
		}
	}
	fi, err := os.Stat(osimg.Zst)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d bytes by multicast, 0 by unicast", fi.Size()); !strings.Contains(apply, want) {
		t.Errorf("Apply operating system said %q, want %q", apply, want)
	}
	var list []multicast.Session
	if err := e.adminDo(ctx, "GET", "/admin/v1/multicast", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != multicast.StateDone || list[0].Joined != 1 {
		t.Errorf("session after the run = %+v, want done with 1 machine joined", list)
	}
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}
	t.Logf("TestMulticastLAN took %.1fs", time.Since(start).Seconds())
}

// setStepOption sets option key of the step named name in the sequence's
// newest version.
func (e *Env) setStepOption(ctx context.Context, ts *deploy.TaskSequence, name, key, value string) {
	t := e.t
	t.Helper()
	var cur deploy.TaskSequence
	if err := e.adminDo(ctx, "GET", "/admin/v1/tasksequences/"+ts.ID, nil, &cur); err != nil {
		t.Fatal(err)
	}
	v := &cur.Versions[len(cur.Versions)-1]
	found := false
	var walk func([]deploy.Step)
	walk = func(steps []deploy.Step) {
		for i := range steps {
			if steps[i].Name == name {
				if steps[i].Settings == nil {
					steps[i].Settings = map[string]string{}
				}
				steps[i].Settings[key] = value
				found = true
			}
			walk(steps[i].GroupMembers)
		}
	}
	walk(v.Steps)
	if !found {
		t.Fatalf("task sequence %s has no step %q", ts.Name, name)
	}
	if err := e.adminDo(ctx, "PUT", "/admin/v1/tasksequences/"+ts.ID, &cur, nil); err != nil {
		t.Fatal(err)
	}
}
