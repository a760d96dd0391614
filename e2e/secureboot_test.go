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

// Console lines that show Secure Boot was on, from the guest's own
// kernel: it prints this only when the firmware reports Secure Boot
// enabled (and then locks itself down).
var (
	reSecureBootOn  = regexp.MustCompile(`secureboot: Secure boot enabled`)
	reSecureBootOff = regexp.MustCompile(`secureboot: Secure boot (disabled|could not be determined)`)
	// OVMF's boot manager refusing an image that fails verification.
	reFwDenied = regexp.MustCompile(`failed to load Boot\d+ "UEFI PXEv4[^"]*" from [^\r\n]*: Access Denied`)
)

// serverLogHas reports which of the patterns the server log lacks.
func (e *Env) serverLogLacks(res ...*regexp.Regexp) []string {
	b, err := os.ReadFile(e.srvLog)
	if err != nil {
		return []string{err.Error()}
	}
	var lack []string
	for _, re := range res {
		if !re.Match(b) {
			lack = append(lack, re.String())
		}
	}
	return lack
}

// TestSecureBootPXE is the Secure Boot promise: an empty UEFI machine
// whose firmware has Secure Boot on with Microsoft's keys enrolled (OVMF's
// Secure Boot build, q35 with SMM) network-boots on a LAN where dnsmasq is
// the site's DHCP server (addresses, and Imprint as next server: Debian
// 12's signed GRUB ignores proxyDHCP answers) and `imprint server --pxe`
// (Secure Boot mode is on by default) sends it Debian's shim; shim loads Debian's signed
// network GRUB, which fetches the machine's config and then Debian's
// signed kernel and our initramfs over Imprint's TFTP. The kernel must say
// Secure Boot is enabled; the agent asks for the passcode (a wrong one
// first), runs the Linux template, and the machine reboots from its disk,
// again through shim and signed GRUB, into the deployed OS, whose kernel
// must say Secure Boot is enabled again before it prints this run's
// marker.
func TestSecureBootPXE(t *testing.T) {
	start := time.Now()
	e := newEnvWith(t, envOptions{LAN: true, NextServer: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	osimg := e.buildSecureBootTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e Secure Boot test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux Secure Boot", imageID, nil)

	disk := filepath.Join(e.Dir, "disk.img")
	vm := e.StartVM(VMOptions{Name: "secureboot", Firmware: UEFI, SecureBoot: true, Disk: disk, DiskSize: 1 << 30,
		LAN: true, NoOptionROM: true})
	c := vm.Console
	m, err := expectOrFail(ctx, c, reFwNBP)
	if err != nil {
		t.Fatal(err)
	}
	if f := reFwNBP.FindStringSubmatch(m)[1]; f != "bootx64.efi" {
		t.Fatalf("firmware's boot file is %q, want bootx64.efi (shim)", f)
	}
	t.Logf("firmware got shim's name at %.1fs", c.Elapsed().Seconds())
	if i, m, err := c.ExpectFirst(ctx, reSecureBootOn, reSecureBootOff, reFwDenied, rePanic, rePasscode); err != nil {
		t.Fatal(err)
	} else if i != 0 {
		t.Fatalf("boot image: want the kernel's %q first, got %q", reSecureBootOn, strings.TrimSpace(m))
	}
	t.Logf("boot image kernel running with Secure Boot at %.1fs", c.Elapsed().Seconds())
	if err := authenticate(ctx, c, passcode); err != nil {
		t.Fatal(err)
	}
	t.Logf("passcode accepted at %.1fs", c.Elapsed().Seconds())
	if err := awaitRun(ctx, c, ts.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("run succeeded at %.1fs; rebooting into the deployed disk", c.Elapsed().Seconds())
	if i, m, err := c.ExpectFirst(ctx, reSecureBootOn, reSecureBootOff, reDeployed, reOSFailed, rePanic, rePasscode); err != nil {
		t.Fatal(err)
	} else if i != 0 {
		t.Fatalf("deployed OS: want the kernel's %q first, got %q", reSecureBootOn, strings.TrimSpace(m))
	}
	i, m, err := c.ExpectFirst(ctx, reDeployed, reOSFailed, rePanic, rePasscode)
	if err != nil {
		t.Fatal(err)
	}
	if i != 0 {
		t.Fatalf("after the reboot the machine did not come up in the deployed OS: %s", m)
	}
	if want := "IMPRINT-DEPLOYED-OK hostname=" + osimg.Hostname + " marker=" + osimg.Marker; strings.TrimSpace(m) != want {
		t.Fatalf("deployed OS printed %q, want %q", m, want)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Logf("deployed OS booted with Secure Boot and powered off at %.1fs", c.Elapsed().Seconds())

	// The chain came from Imprint: shim, GRUB, the machine's GRUB config
	// (the server's decision), kernel and initrd, all over its TFTP.
	for _, lack := range e.serverLogLacks(
		regexp.MustCompile(`msg="tftp: read".* name=bootx64\.efi`),
		regexp.MustCompile(`msg="tftp: read".* name=grubx64\.efi`),
		regexp.MustCompile(`msg="tftp: read".* name=grub/grub\.cfg`),
		regexp.MustCompile(`msg="grub config".* entry=deploy`),
		regexp.MustCompile(`msg="tftp: read".* name=images/x86_64/vmlinuz`),
		regexp.MustCompile(`msg="tftp: read".* name=images/x86_64/initrd\.img`),
	) {
		t.Errorf("server log lacks %s", lack)
	}
	e.checkLastRun(t, ctx, ts.ID, linuxSteps)
	for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
		t.Error(p)
	}
	t.Logf("TestSecureBootPXE took %.1fs", time.Since(start).Seconds())
}

// TestSecureBootRefusesUnsigned shows the firmware really enforces: the
// same Secure Boot machine on the same LAN, but with the server's Secure
// Boot mode turned off, is sent iPXE (unsigned), downloads it from
// Imprint's TFTP, and the firmware refuses to run it.
func TestSecureBootRefusesUnsigned(t *testing.T) {
	start := time.Now()
	e := newEnvWith(t, envOptions{LAN: true, NextServer: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := e.imprint(ctx, "", "security", "set", "secure-boot", "off"); err != nil {
		t.Fatal(err)
	}
	vm := e.StartVM(VMOptions{Name: "unsigned", Firmware: UEFI, SecureBoot: true, Disk: filepath.Join(e.Dir, "disk.img"),
		DiskSize: 64 << 20, LAN: true, NoOptionROM: true})
	c := vm.Console
	m, err := expectOrFail(ctx, c, reFwNBP)
	if err != nil {
		t.Fatal(err)
	}
	if f := reFwNBP.FindStringSubmatch(m)[1]; f != "ipxe.efi" {
		t.Fatalf("firmware's boot file is %q, want ipxe.efi (Secure Boot mode is off)", f)
	}
	i, m, err := c.ExpectFirst(ctx, reFwDenied, reIPXEConfig, reSecureBootOn, rePasscode)
	if err != nil {
		t.Fatal(err)
	}
	if i != 0 {
		t.Fatalf("the unsigned iPXE was not refused: %q", strings.TrimSpace(m))
	}
	t.Logf("firmware refused it at %.1fs: %s", c.Elapsed().Seconds(), strings.TrimSpace(m))
	if lack := e.serverLogLacks(reTFTPIPXE); len(lack) > 0 {
		t.Errorf("server log has no TFTP read of ipxe.efi: the firmware did not get the binary it refused")
	}
	t.Logf("TestSecureBootRefusesUnsigned took %.1fs", time.Since(start).Seconds())
}

// TestSecureBootISO boots `imprint bootimage iso` as a CD with Secure
// Boot on (shim and Debian's signed CD GRUB on the ISO's EFI boot image,
// then Debian's signed kernel): the kernel must say Secure Boot is
// enabled, and the agent runs the Linux template to the end. The same ISO
// must still boot a BIOS machine (SeaBIOS) to the agent's passcode prompt.
func TestSecureBootISO(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	needTools(t, "grub-mkrescue", "grub-mkimage", "xorriso", "mformat", "mkfs.fat")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	iso := filepath.Join(e.Dir, "imprint.iso")
	if _, err := e.imprint(ctx, "", "bootimage", "iso", "--out", iso); err != nil {
		t.Fatal(err)
	}
	osimg := e.buildSecureBootTestOS(ctx, 64)
	imageID := e.uploadImage(ctx, "e2e Secure Boot test OS", osimg.Zst)
	e.setPasscode(ctx, passcode)
	ts := e.newTaskSequence(ctx, "linux-bare-metal", "E2E Linux Secure Boot ISO", imageID, nil)

	t.Run("UEFI Secure Boot", func(t *testing.T) {
		disk := filepath.Join(e.Dir, "disk.img")
		vm := e.StartVM(VMOptions{Name: "sb-iso", Firmware: UEFI, SecureBoot: true, Disk: disk, DiskSize: 1 << 30,
			ISO: iso, NoReboot: true, NoOptionROM: true})
		if i, m, err := vm.Console.ExpectFirst(ctx, reSecureBootOn, reSecureBootOff, rePanic, rePasscode); err != nil {
			t.Fatal(err)
		} else if i != 0 {
			t.Fatalf("want the kernel's %q first, got %q", reSecureBootOn, strings.TrimSpace(m))
		}
		t.Logf("kernel from the ISO running with Secure Boot at %.1fs", vm.Console.Elapsed().Seconds())
		deployToEnd(t, ctx, vm, ts.Name)
		e.checkLastRun(t, ctx, ts.ID, linuxSteps)
		for _, p := range linuxDiskProblems(ctx, disk, osimg, UEFI) {
			t.Error(p)
		}
	})
	t.Run("BIOS", func(t *testing.T) {
		vm := e.StartVM(VMOptions{Name: "bios-iso", Firmware: BIOS, Disk: filepath.Join(e.Dir, "bios-disk.img"),
			DiskSize: 64 << 20, ISO: iso, NoReboot: true})
		if _, err := expectOrFail(ctx, vm.Console, rePasscode); err != nil {
			t.Fatal(err)
		}
		t.Logf("BIOS machine reached the passcode prompt from the ISO at %.1fs", vm.Console.Elapsed().Seconds())
	})
	if b, _ := os.ReadFile(e.srvLog); strings.Contains(string(b), "boot script") || strings.Contains(string(b), "tftp: read") {
		t.Errorf("a machine network-booted; it should have booted from the ISO")
	}
	t.Logf("TestSecureBootISO took %.1fs", time.Since(start).Seconds())
}
