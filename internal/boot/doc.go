// Package boot serves network boot over the plain-HTTP boot port: a
// two-stage iPXE chain, the boot image's kernel and initrd, and the iPXE
// binaries for chainloading.
//
// Stage one (GET /boot.ipxe) is the same for every machine: it makes iPXE
// report the booting NIC's MAC, the SMBIOS UUID and serial, the CPU
// architecture and the firmware platform to stage two (GET /ipxe), which
// writes a per-machine script (stage2.go; stage one and the error script
// are the embedded templates/*.ipxe): a menu
// (deploy with Imprint, boot from local disk, iPXE shell) or the default
// entry alone. The deploy entry boots the Imprint boot image with the
// server's HTTPS URL and the CA fingerprint on the kernel command line.
//
// Nothing served here is secret. Every value that reaches a script is either
// a validated, normalised query parameter (MAC, UUID, architecture,
// platform) or operator configuration checked against a conservative
// character set, so no request can inject iPXE commands or ${...} settings
// expansions. A stage-two request that fails validation gets HTTP 200 with a
// script that prints what is wrong (naming the parameter, never echoing it)
// and offers the iPXE shell: iPXE shows only a numeric error for non-2xx
// responses, and the person at the console needs the message.
//
// The Secure Boot chain (shim → Debian's signed network GRUB → Debian's
// signed kernel) carries the same decisions in GRUB's language:
// grub/grub.cfg (templates/bootstrap.grub, the same for every machine)
// asks for grub/machine.cfg?mac=…&uuid=… (templates/machine.grub), built
// from the same per-machine data as stage two. Every value is single-quoted
// and drawn from the same conservative character sets, so no request can
// add GRUB commands. Debian's signed GRUB 2.06 has no HTTP module (and
// lockdown forbids loading one), so the PXE service serves these, the
// kernel and the initrd over TFTP through Handler.TFTPOpen; the boot port
// serves the configs over HTTP too, for GRUBs that have it.
package boot
