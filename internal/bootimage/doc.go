// Package bootimage builds the Linux boot image that machines network-boot
// (or boot from an ISO) to run the Imprint agent.
//
// A boot image is a kernel (FetchKernel downloads Debian's current generic
// kernel package without installing it; KernelFromDir takes one an admin
// gives) and an initramfs (BuildInitramfs) holding:
//
//   - /init: the static imprint-agent binary;
//   - the kernel modules for common network and storage hardware and their
//     dependencies under /lib/modules/VERSION/, plus modules.dep and
//     modules.builtin, and /etc/imprint/modules listing the load order;
//   - the host tools the disk steps shell out to (mkfs.ext4, mkntfs,
//     wimlib-imagex, …) with their shared libraries and the dynamic loader;
//   - optionally /etc/imprint/boot.json with the server URL and CA
//     fingerprint (the ISO carries them on the kernel command line too).
//
// Build writes vmlinuz, initrd.img and manifest.json to a directory, which
// the server serves under /images/x86_64/. BuildISO wraps an image in a
// hybrid BIOS+UEFI ISO with grub-mkrescue.
//
// # The module list file
//
// /etc/imprint/modules is UTF-8 text with one module path per line,
// relative to /lib/modules/$(uname -r)/, in load order: every module comes
// after all of its dependencies. The agent loads each with finit_module
// (no modprobe). Blank lines and lines starting with '#' are to be ignored.
// Example:
//
//	kernel/drivers/virtio/virtio.ko
//	kernel/drivers/virtio/virtio_ring.ko
//	kernel/drivers/virtio/virtio_pci_legacy_dev.ko
//
// # Initramfs layout
//
// The initramfs uses a merged-/usr layout: /bin, /sbin, /lib and /lib64 are
// symlinks into /usr, so a library or loader found under any of those host
// paths resolves inside the image. The output is deterministic: sorted
// entries, root ownership and zero modification times, so the same inputs
// give the same bytes.
package bootimage
