//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/imprint-osd/imprint/internal/lab"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// Firmware is the machine's firmware (internal/lab, which `imprint lab`
// uses too).
type Firmware = lab.Firmware

const (
	UEFI = lab.UEFI // OVMF on q35
	BIOS = lab.BIOS // SeaBIOS on i440fx
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

// StartVM starts QEMU in the test's namespace; it is killed in t.Cleanup
// if still running. The machine is built by internal/lab, as `imprint
// lab` builds it.
func (e *Env) StartVM(o VMOptions) *VM {
	t := e.t
	t.Helper()
	if o.Name == "" {
		o.Name = "vm"
	}
	ns, netdev := e.NS, lab.UserNet(fmt.Sprintf("http://%s:%d/boot.ipxe", guestHost, bootPort))
	if o.LAN {
		if e.LAN == nil {
			t.Fatal("VMOptions.LAN needs an Env made with envOptions{LAN: true}")
		}
		ns, netdev = e.LAN.NS, "tap,id=n0,ifname="+lanTap+",script=no,downscript=no"
	}
	m := lab.Machine{Firmware: o.Firmware, Disk: o.Disk, DiskSize: o.DiskSize, NIC: o.NIC, Net: netdev, ISO: o.ISO,
		NoReboot: o.NoReboot, NoOptionROM: o.NoOptionROM, SecureBoot: o.SecureBoot, SATA: o.SATA, SMBIOS: o.SMBIOS,
		MemoryMiB: o.MemoryMiB, CPUs: o.CPUs, Accel: o.Accel}
	if o.Firmware == UEFI {
		m.Vars = filepath.Join(e.Dir, o.Name+"-vars.fd")
		os.Remove(m.Vars) // a fresh machine each start, as before
	}
	if err := m.Prepare(); err != nil {
		var miss *lab.MissingError
		if errors.As(err, &miss) {
			testenv.Missing(t, "%v", miss)
		}
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "qemu-system-x86_64"}, m.Args()...)...)
	t.Logf("qemu: %v", cmd.Args[4:])
	return e.startConsole(o.Name, cmd)
}

// startConsole starts cmd, a program whose stdio is a machine's serial
// console (QEMU, or `imprint lab` running it), in its own process group,
// which t.Cleanup kills if it is still running.
func (e *Env) startConsole(name string, cmd *exec.Cmd) *VM {
	t := e.t
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // QEMU's own warnings go into the console log too
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Args[0], err)
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	con, err := newConsole(t, stdin, stdout, filepath.Join(e.Dir, name+"-console.log"))
	if err != nil {
		kill()
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
			kill()
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
