// Package disksteps holds the built-in disk steps of the Linux boot image:
// Format disk, Apply operating system, Prepare operating system, Apply
// ChromeOS Flex, Apply IGEL image and Capture image. They call
// internal/disk for the work and take the option names of the built-in
// catalogue (internal/stepdefs), case-insensitively.
//
// # Streaming
//
// Operating-system images are never staged in the boot image's RAM: the
// agent tells the engine not to fetch the Image option of these steps
// (sequence.Engine.StreamOption, see Streamed), and the step opens it with
// Content.OpenContent, a stream that resumes a cut transfer by itself, and
// hands it to disk.ApplyRaw with the version's SHA-256 to verify.
//
// # Partitions between steps
//
// Format disk sets OSDisk, OSDiskLayout, OSPartition, ESPPartition,
// BootPartition and DiskIndex. A partition is named by its device node
// (/dev/vda2) on a real disk, and as "IMAGE#N" (partition N of the disk
// image file IMAGE) when the target is an image file, which is how the
// tests run every step without root or loop devices.
//
// # Prepare operating system
//
// For a Linux UEFI target the image must carry its boot loader under
// /boot/efi in the root filesystem (for example EFI/BOOT/BOOTX64.EFI, a
// unified kernel image or shim+grub); the step copies that tree into the
// ESP. The root filesystem is mounted read-only (as root on a block device)
// or, for an image file, read with `debugfs -R "rdump /boot/efi DIR"`. A
// Linux BIOS target must carry its boot loader in the image's own first
// sectors (a whole-disk or MBR-embedded grub): Prepare then only checks that
// the partition is marked active.
//
// A Windows UEFI target is made bootable the way `bcdboot /f UEFI` does it,
// without any Windows tool (internal/winboot): the Windows partition is
// mounted (kernel ntfs3 or ntfs-3g; through a loop device for an image
// file), its Windows\Boot files are copied to the ESP with the fallback
// \EFI\Boot\bootx64.efi, a new BCD store is written whose loader names the
// partition by the disk's and partition's GPT GUIDs, and, when the machine
// has efivars, a "Windows Boot Manager" firmware entry is put first. A
// Windows BIOS (MBR) target is refused: not built yet.
//
// # Continuing in the deployed OS
//
// When the sequence has steps after a Reboot (HD), the agent in the boot
// image stages itself into the deployed Linux root just before restarting
// (StageResume): the binary to /usr/local/sbin/imprint-agent, the state
// directory (journal, variables, logs) to /var/lib/imprint-agent and an
// enabled imprint-agent-resume.service. It is done at the reboot rather
// than in Prepare operating system so that the journal copied is the one
// that records every step before the reboot as done.
package disksteps
