//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// Firmware is the machine's firmware.
type Firmware int

const (
	UEFI Firmware = iota // OVMF on q35
	BIOS                 // SeaBIOS on i440fx
)

const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// Secure Boot: OVMF built with it (SMM), and variables with
	// Microsoft's keys enrolled (KEK, db with the Windows and UEFI CAs).
	ovmfCodeSecure = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	ovmfVarsMS     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	romDir         = "/usr/lib/ipxe/qemu" // Debian's ipxe-qemu
)

// VMOptions describe the emulated machine.
type VMOptions struct {
	Name     string // names the console log file
	Firmware Firmware
	Disk     string // raw disk image, created sparse with DiskSize when missing
	DiskSize int64
	// NIC is the QEMU network device: virtio-net-pci (default) or e1000.
	NIC string
	// ISO, when set, is attached as a CD that the firmware boots first.
	ISO string
	// NoReboot makes a guest reboot end QEMU instead.
	NoReboot bool
	// LAN puts the NIC on the test's bridged LAN (envOptions.LAN) through
	// its tap, with no boot file given: the firmware learns everything
	// from DHCP. Otherwise the NIC is on QEMU's user network, whose DHCP
	// names the boot script.
	LAN bool
	// NoOptionROM runs the NIC without iPXE's option ROM (UEFI only), so
	// OVMF's own driver and PXE client boot it instead of iPXE.
	NoOptionROM bool
	// SecureBoot runs OVMF's Secure Boot build with Microsoft's keys
	// enrolled on a q35 machine with SMM (UEFI only): the firmware runs
	// only EFI binaries signed by a key in db, such as Debian's shim.
	// iPXE's option ROM is unsigned, so use it with NoOptionROM.
	SecureBoot bool
	// SMBIOS are -smbios arguments (e.g. type=1,manufacturer=M,product=P:
	// the make and model gather reports).
	SMBIOS []string
	// SATA puts the disk on the q35 machine's AHCI controller (UEFI only)
	// instead of virtio-blk, for a Windows with no virtio driver.
	SATA bool
	// MemoryMiB and CPUs size the machine (default 1024 MiB, 1 CPU);
	// Accel is QEMU's -accel (default TCG).
	MemoryMiB, CPUs int
	Accel           string
}

// VM is a running QEMU.
type VM struct {
	Console *Console
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
}

// romFile is the iPXE option ROM for a NIC: for OVMF the efi-*.rom file
// (QEMU's default for q35 too, given explicitly). SeaBIOS never ran the
// ROM when romfile was given (the NIC was not even offered as a boot
// device, with efi-*.rom or pxe-*.rom), so a BIOS machine uses QEMU's
// default and only the file's presence is checked.
func romFile(nic string, fw Firmware) string {
	prefix := "efi-"
	if fw == BIOS {
		prefix = "pxe-"
	}
	switch nic {
	case "e1000", "e1000e":
		return filepath.Join(romDir, prefix+nic+".rom")
	default:
		return filepath.Join(romDir, prefix+"virtio.rom")
	}
}

// StartVM starts QEMU in the test's namespace; it is killed in t.Cleanup
// if still running.
func (e *Env) StartVM(o VMOptions) *VM {
	t := e.t
	t.Helper()
	if o.NIC == "" {
		o.NIC = "virtio-net-pci"
	}
	if o.Name == "" {
		o.Name = "vm"
	}
	o.MemoryMiB, o.CPUs = max(o.MemoryMiB, 1024), max(o.CPUs, 1)
	if _, err := os.Stat(o.Disk); os.IsNotExist(err) {
		f, err := os.Create(o.Disk)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(o.DiskSize); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	rom := romFile(o.NIC, o.Firmware)
	if _, err := os.Stat(rom); err != nil {
		testenv.Missing(t, "%s is not there: apt-get install ipxe-qemu", rom)
	}
	if o.SecureBoot && o.Firmware != UEFI {
		t.Fatal("VMOptions.SecureBoot is for UEFI machines")
	}
	if o.NoOptionROM {
		if o.Firmware != UEFI {
			t.Fatal("VMOptions.NoOptionROM is for UEFI machines: SeaBIOS has no network driver of its own")
		}
		rom = "" // romfile= with no file: QEMU loads none
	}
	ns, netdev := e.NS, fmt.Sprintf("user,id=n0,bootfile=http://%s:%d/boot.ipxe", guestHost, bootPort)
	if o.LAN {
		if e.LAN == nil {
			t.Fatal("VMOptions.LAN needs an Env made with envOptions{LAN: true}")
		}
		ns, netdev = e.LAN.NS, "tap,id=n0,ifname="+lanTap+",script=no,downscript=no"
	}
	args := []string{"netns", "exec", ns, "qemu-system-x86_64",
		"-cpu", "max", // RDRAND: without it the guest's getrandom blocks DHCP for minutes
		"-m", strconv.Itoa(o.MemoryMiB), "-smp", strconv.Itoa(o.CPUs),
		"-nographic", "-serial", "stdio", "-monitor", "none",
		"-netdev", netdev,
		"-drive", "file=" + o.Disk + ",if=none,id=d0,format=raw",
	}
	nicIndex, diskIndex := 2, 1
	if o.ISO != "" {
		args = append(args, "-drive", "file="+o.ISO+",if=none,id=cd0,media=cdrom,readonly=on")
		nicIndex, diskIndex = 3, 2
	}
	switch o.Firmware {
	case UEFI:
		code, varsTemplate, machine := ovmfCode, ovmfVars, []string{"-machine", "q35"}
		if o.SecureBoot {
			code, varsTemplate = ovmfCodeSecure, ovmfVarsMS
			// SMM, and flash writable only from SMM: the Secure Boot
			// build refuses to run without them.
			machine = []string{"-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"}
		}
		for _, f := range []string{code, varsTemplate} {
			if _, err := os.Stat(f); err != nil {
				testenv.Missing(t, "%s is not there: apt-get install ovmf", f)
			}
		}
		vars := filepath.Join(e.Dir, o.Name+"-vars.fd")
		b, err := os.ReadFile(varsTemplate)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, machine...)
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,file="+vars)
		if o.ISO != "" {
			args = append(args, "-device", "ide-cd,drive=cd0,bootindex=1")
		}
		disk := fmt.Sprintf("virtio-blk-pci,drive=d0,bootindex=%d", diskIndex)
		if o.SATA {
			disk = fmt.Sprintf("ide-hd,drive=d0,bus=ide.0,bootindex=%d", diskIndex)
		}
		args = append(args,
			"-device", disk,
			"-device", fmt.Sprintf("%s,netdev=n0,bootindex=%d,romfile=%s", o.NIC, nicIndex, rom))
	case BIOS:
		args = append(args, "-machine", "pc")
		if o.ISO != "" {
			args = append(args, "-device", "ide-cd,drive=cd0,bootindex=1",
				"-device", fmt.Sprintf("virtio-blk-pci,drive=d0,bootindex=%d", diskIndex),
				"-device", o.NIC+",netdev=n0")
		} else {
			// -boot n: SeaBIOS tries the network first, so the empty disk
			// is not even considered.
			args = append(args, "-boot", "n",
				"-device", "virtio-blk-pci,drive=d0",
				"-device", o.NIC+",netdev=n0")
		}
	}
	if o.NoReboot {
		args = append(args, "-no-reboot")
	}
	if o.Accel != "" {
		args = append(args, "-accel", o.Accel)
	}
	for _, sm := range o.SMBIOS {
		args = append(args, "-smbios", sm)
	}
	cmd := exec.Command("ip", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // QEMU's own warnings go into the console log too
	t.Logf("qemu: %v", cmd.Args[4:])
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	con, err := newConsole(t, stdin, stdout, filepath.Join(e.Dir, o.Name+"-console.log"))
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	vm := &VM{Console: con, cmd: cmd, exited: make(chan struct{})}
	go func() {
		<-con.done // stdout must be drained before Wait closes it
		vm.err = cmd.Wait()
		close(vm.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-vm.exited:
		default:
			cmd.Process.Kill()
		}
		con.close(10 * time.Second)
		<-vm.exited
		if t.Failed() {
			t.Logf("console log kept in %s", con.logf.Name())
		}
	})
	return vm
}

// Wait waits for QEMU to exit and returns its exit error.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.exited:
		return vm.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for QEMU to exit after %.0fs: %w", vm.Console.Elapsed().Seconds(), ctx.Err())
	}
}
