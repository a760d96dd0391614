// Package pe is what imprint-agent needs when it runs as /init (PID 1) of the
// Imprint boot image: reading the kernel command line, mounting the early
// filesystems, loading kernel modules, bringing up the network with DHCP or a
// static address, setting the clock from the server, opening the console, and
// rebooting or powering off. It is a library: cmd/imprint-agent and
// internal/agent decide the order and the policy.
//
// Everything that touches the kernel lives in *_linux.go files. On other
// systems those functions return ErrNotLinux so that the module still builds
// for every GOOS; the parsing and decision logic is portable and tested
// everywhere.
//
// # Boot order for /init
//
//  1. MountEarly: the Debian kernel has DEVTMPFS but not DEVTMPFS_MOUNT, so
//     /dev is empty until /init mounts it.
//  2. OpenConsole, LoadBoot(/proc/cmdline, /etc/imprint/boot.json).
//  3. LoadModules(/lib/modules/VERSION, contents of /etc/imprint/modules):
//     finit_module in the listed order (dependencies first; nothing in the
//     initramfs answers request_module, so e.g. crc32c_generic must precede
//     ext4).
//  4. BringUp: interfaces appear only after their driver is loaded, and e1000
//     reports carrier a few seconds after link-up, so BringUp waits for both.
//     DHCP (nclient4) needs random numbers: under QEMU without a hardware RNG
//     the crng may not be initialised and getrandom blocks (QEMU: use
//     -cpu max, which offers RDRAND, or a virtio-rng device).
//  5. PinnedTimeClient + FetchServerTime + SetClock, before any other TLS
//     request: a boot image's RTC may be far off.
//  6. Authenticate and run; then Reboot or PowerOff.
//
// # Console order
//
// /dev/console is the LAST console= given on the kernel command line. With
// "console=tty0 console=ttyS0,115200" kernel messages go to both, and
// /dev/console (where the agent prompts for the passcode and reads the
// answer) is the serial port. With "console=ttyS0,115200 console=tty0" the
// prompt appears only on the screen. A boot command line that must be
// driven over the serial console (QEMU -serial stdio, IPMI SOL) therefore
// puts ttyS0 last.
package pe
