// Command testinit is a stand-in /init for boot image tests: it mounts the
// pseudo filesystems, loads the modules /etc/imprint/modules lists with
// finit_module, runs a tool from the image, prints markers on the console
// and powers the machine off.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

const sysFinitModule = 313 // x86-64

func main() {
	syscall.Mount("proc", "/proc", "proc", 0, "")
	syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	fmt.Println("TESTINIT-START")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	fmt.Printf("CMDLINE %s", cmdline)
	var uts syscall.Utsname
	syscall.Uname(&uts)
	rel := int8sToString(uts.Release[:])
	loaded, failed := loadModules("/lib/modules/" + rel)
	fmt.Printf("MODULES loaded=%d failed=%d\n", loaded, failed)
	if out, err := exec.Command("/usr/sbin/mkfs.ext4", "-V").CombinedOutput(); err != nil {
		fmt.Printf("TOOL-FAIL %v %s\n", err, out)
	} else {
		fmt.Printf("TOOL-OK %s\n", strings.SplitN(string(out), "\n", 2)[0])
	}
	if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
		fmt.Println("NIC eth0")
	}
	fmt.Println("TESTINIT-END")
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

func loadModules(dir string) (loaded, failed int) {
	f, err := os.Open("/etc/imprint/modules")
	if err != nil {
		fmt.Println("MODULES-FAIL", err)
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
			fmt.Println("MODULE-FAIL", line, err)
			failed++
			continue
		}
		empty := []byte{0}
		_, _, e := syscall.Syscall(sysFinitModule, m.Fd(), uintptrOf(empty), 0)
		m.Close()
		if e != 0 && e != syscall.EEXIST {
			fmt.Println("MODULE-FAIL", line, e)
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
