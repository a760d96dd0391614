//go:build e2e && windowsiso

package e2e

// `make e2e-windows WINDOWS_ISO=path`: the Windows bare metal template with
// a real install.wim, for anyone with Windows media. Not part of `make
// test` (there is no Windows media here): the windowsiso build tag keeps it
// out of `make e2e`.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

var reRestarting = regexp.MustCompile(`Restarting the machine; the sequence continues after boot\.`)

// winISOEnv returns the environment variable name's value, or def.
func winISOEnv(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// extractInstallWIM copies sources/install.wim (or install.esd) out of the
// ISO with xorriso and exports image index into a pipable WIM, which Apply
// operating system streams (a non-pipable one would be staged in the boot
// image's RAM).
func (e *Env) extractInstallWIM(ctx context.Context, iso string, index int) string {
	t := e.t
	t.Helper()
	needTools(t, "xorriso", "wimlib-imagex")
	var src string
	for _, name := range []string{"install.wim", "install.esd"} {
		dst := filepath.Join(e.Dir, name)
		if _, err := run(ctx, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/sources/"+name, dst); err == nil {
			src = dst
			break
		}
	}
	if src == "" {
		t.Fatalf("%s has neither /sources/install.wim nor /sources/install.esd: is it Windows installation media?", iso)
	}
	info, err := run(ctx, "wimlib-imagex", "info", src, strconv.Itoa(index))
	if err != nil {
		t.Fatalf("image %d of %s: %v", index, filepath.Base(src), err)
	}
	t.Logf("Windows image %d:\n%s", index, info)
	out := filepath.Join(e.Dir, "install-pipable.wim")
	if _, err := run(ctx, "wimlib-imagex", "export", src, strconv.Itoa(index), out, "--pipable", "--compress=LZX"); err != nil {
		t.Fatal(err)
	}
	os.Remove(src)
	return out
}

// fullOSInWindows replaces the template's Full OS steps (DeployR scripts
// Imprint does not have) with a command line that only Windows can run:
// the run finishes inside Windows when it succeeds.
func fullOSInWindows(steps []deploy.Step) []deploy.Step {
	for i := range steps {
		g := &steps[i]
		if !g.IsGroup || g.Name != stepdefs.GroupFullOS {
			continue
		}
		g.GroupMembers = []deploy.Step{{ID: uuid.NewString(), Name: "Windows version", Description: deploy.StrPtr(""),
			GroupID: deploy.StrPtr(g.ID), TypeID: deploy.StrPtr(stepdefs.TypeRunCommandLine), Enabled: true, Condition: deploy.StrPtr(""),
			Settings:     map[string]string{"CommandLine": `cmd.exe /c ver && reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion" /v ProductName`},
			ContentItems: map[string]string{}}}
	}
	return steps
}

// TestWindowsISO runs the Windows bare metal template with the ISO's
// install.wim on a UEFI machine (OVMF, SATA disk and e1000e NIC, which
// Windows drives without extra drivers) and passes when the server's run
// record shows the run finished inside Windows.
func TestWindowsISO(t *testing.T) {
	iso := os.Getenv("IMPRINT_WINDOWS_ISO")
	if iso == "" {
		t.Fatal("IMPRINT_WINDOWS_ISO is not set: run `make e2e-windows WINDOWS_ISO=path/to/windows.iso`")
	}
	if _, err := os.Stat(iso); err != nil {
		t.Fatalf("IMPRINT_WINDOWS_ISO: %v", err)
	}
	index, err := strconv.Atoi(winISOEnv("IMPRINT_WINDOWS_INDEX", "1"))
	if err != nil || index < 1 {
		t.Fatalf("IMPRINT_WINDOWS_INDEX %q is not an image index", os.Getenv("IMPRINT_WINDOWS_INDEX"))
	}
	timeout, err := time.ParseDuration(winISOEnv("IMPRINT_WINDOWS_TIMEOUT", "3h"))
	if err != nil {
		t.Fatalf("IMPRINT_WINDOWS_TIMEOUT: %v", err)
	}
	start := time.Now()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	wim := e.extractInstallWIM(ctx, iso, index)
	imageID := e.uploadImage(ctx, "Windows from "+filepath.Base(iso), wim)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequenceEdit(ctx, "windows-bare-metal", "E2E Windows ISO", imageID,
		map[string]string{"ImageIndex": "1"}, func(steps []deploy.Step) []deploy.Step { return fullOSInWindows(addWinPESteps(steps)) })
	t.Logf("image uploaded at %.0fs", time.Since(start).Seconds())

	accel := ""
	if _, err := os.Stat("/dev/kvm"); err == nil {
		accel = "kvm"
	} else {
		t.Logf("no /dev/kvm: Windows runs under TCG and takes hours (IMPRINT_WINDOWS_TIMEOUT, default 3h)")
	}
	vm := e.StartVM(VMOptions{Name: "windows-iso", Firmware: UEFI, Disk: filepath.Join(e.Dir, "disk.img"), DiskSize: 64 << 30,
		NIC: "e1000e", SATA: true, MemoryMiB: 4096, CPUs: 2, Accel: accel,
		SMBIOS: []string{"type=1,manufacturer=" + winMake + ",product=" + winModel}})
	c := vm.Console
	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		i, m, err := c.ExpectFirst(ctx, reRestarting, reFailed, rePanic, rePicker, reArrangeFailed)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			done = true
		case 3:
			n, err := pickerChoice(m, ts.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Send(n + "\r"); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("in the boot image: %s", strings.TrimSpace(m))
		}
	}
	t.Logf("boot image done at %.0fs; waiting for the run to finish inside Windows", time.Since(start).Seconds())

	// Windows prints nothing on the serial console: the server's run
	// record is what says the run went on and finished inside Windows.
	var run deploy.Run
	for {
		var runs []*deploy.Run
		if err := e.adminDo(ctx, "GET", "/admin/v1/runs?ts="+ts.ID, nil, &runs); err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].State.Terminal() {
			if err := e.adminDo(ctx, "GET", "/admin/v1/runs/"+runs[0].ID, nil, &run); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-ctx.Done():
			state := "no run"
			if len(runs) > 0 {
				state = fmt.Sprintf("run %s %s at step %q", runs[0].ID, runs[0].State, runs[0].CurrentStep)
			}
			t.Fatalf("the run did not finish within %s: %s", timeout, state)
		case <-time.After(30 * time.Second):
		}
	}
	if run.State != deploy.RunSucceeded {
		t.Fatalf("run %s: %s (%s)", run.ID, run.State, run.Error)
	}
	var inWindows *deploy.StepResult
	for i := range run.Steps {
		if run.Steps[i].Name == "Windows version" {
			inWindows = &run.Steps[i]
		}
	}
	if inWindows == nil || inWindows.Outcome != deploy.StepSucceeded || !strings.Contains(inWindows.OutputTail, "Microsoft Windows") {
		t.Fatalf("the step only Windows can run did not succeed there: %+v", inWindows)
	}
	t.Logf("the run finished inside Windows: %s", strings.TrimSpace(inWindows.OutputTail))
	t.Logf("TestWindowsISO took %s", time.Since(start).Round(time.Second))
}
