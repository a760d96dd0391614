// Command testinit is a stand-in /init for boot image tests: it mounts the
// pseudo filesystems, loads the modules /etc/imprint/modules lists with
// finit_module, runs a tool from the image, prints markers on the console
// and powers the machine off.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

const sysFinitModule = 313 // x86-64

func main() {
	syscall.Mount("proc", "/proc", "proc", 0, "")
	syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	// With "console=ttyS0,115200 console=tty0" /dev/console is the screen;
	// the markers must reach the serial port the test reads too.
	var out io.Writer = os.Stdout
	if tty, err := os.OpenFile("/dev/ttyS0", os.O_WRONLY, 0); err == nil {
		out = io.MultiWriter(os.Stdout, tty)
	}
	run(out)
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

func run(out io.Writer) {
	fmt.Fprintln(out, "TESTINIT-START")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	fmt.Fprintf(out, "CMDLINE %s", cmdline)
	var uts syscall.Utsname
	syscall.Uname(&uts)
	rel := int8sToString(uts.Release[:])
	loaded, failed := loadModules(out, "/lib/modules/"+rel)
	fmt.Fprintf(out, "MODULES loaded=%d failed=%d\n", loaded, failed)
	if b, err := exec.Command("/usr/sbin/mkfs.ext4", "-V").CombinedOutput(); err != nil {
		fmt.Fprintf(out, "TOOL-FAIL %v %s\n", err, b)
	} else {
		fmt.Fprintf(out, "TOOL-OK %s\n", strings.SplitN(string(b), "\n", 2)[0])
	}
	if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
		fmt.Fprintln(out, "NIC eth0")
	}
	fmt.Fprintln(out, "TESTINIT-END")
}

func loadModules(out io.Writer, dir string) (loaded, failed int) {
	f, err := os.Open("/etc/imprint/modules")
	if err != nil {
		fmt.Fprintln(out, "MODULES-FAIL", err)
		return 0, 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m, err := os.Open(dir + "/" + line)
		if err != nil {
			fmt.Fprintln(out, "MODULE-FAIL", line, err)
			failed++
			continue
		}
		empty := []byte{0}
		_, _, e := syscall.Syscall(sysFinitModule, m.Fd(), uintptrOf(empty), 0)
		m.Close()
		// efivarfs refuses to load without UEFI (this is a direct kernel
		// boot); the agent ignores that too (pe.LoadModules).
		if e == syscall.ENODEV && strings.HasPrefix(filepath.Base(line), "efivarfs.") {
			continue
		}
		if e != 0 && e != syscall.EEXIST {
			fmt.Fprintln(out, "MODULE-FAIL", line, e)
			failed++
			continue
		}
		loaded++
	}
	return loaded, failed
}

func int8sToString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
