// Package disk is the Linux disk library the agent's disk steps call: it finds
// and selects the target disk, writes partition layouts, streams raw images
// onto disks and partitions, builds ext4 from root-filesystem tarballs, applies
// WIM images onto NTFS, and captures partitions as zstd images.
//
// Everything works on a block device or on a plain image file, so tests run
// on image files in a temporary directory without root or loop devices.
//
// # Disk rules
//
// ParseRule reads comma-separated terms; every term must hold:
//
//	index=N            the Nth disk in List's order (sorted by kernel name, from 0)
//	size>=N size<=N    inclusive bounds; also size>N, size<N, size=N,
//	                   minsize=N and maxsize=N
//	bus=PATTERN        nvme, sata, scsi, virtio, usb, mmc (or unknown)
//	model=PATTERN      the model string from sysfs
//	removable=true     allow removable disks (excluded by default)
//	boot=true          allow the disk holding the running system (excluded by default)
//
// Sizes take binary suffixes: K, M, G, T, P (or KiB, GB, ...), all powers of
// 1024, decimals allowed ("1.5T"). A PATTERN with *, ? or [ is a glob over the
// whole lower-cased value; otherwise it is a case-insensitive substring. For
// example: "size>=100G,bus=nvme,model=*Samsung*". Select never guesses: if
// several disks fit it fails listing them, and if none fits it says why each
// disk was excluded. Read-only disks never match.
//
// # Layouts
//
// Format writes one of four layouts (see Layout), wiping the first and last
// MiB of the disk and the first MiB of every new partition so stale
// signatures do not survive. The ESP is FAT32 made by go-diskfs (500 MiB for
// Windows, 260 MiB for Linux: go-diskfs makes broken FAT32 at 32 and 64 MiB,
// so anything under 100 MiB is refused); NTFS partitions are made by mkntfs.
// Linux root partitions are left empty for ApplyRaw or ApplyTar.
//
// # Filesystems inside image files
//
// mkntfs, mkfs.ext4 and wimlib-imagex cannot address a partition inside an
// image file. When a Partition has no Device (image-file mode) the
// filesystem is built in a sparse temporary file of the partition's size and
// its data extents are then copied into the image at the partition's offset;
// this needs free temporary space equal to the data written. On a block device
// the tools run on the partition node directly.
//
// # Tools
//
// At run time: mkntfs (ntfs-3g), mkfs.ext4 (e2fsprogs), wimlib-imagex
// (wimtools), tar is not needed (archive/tar is used). Tests also use sgdisk
// (gdisk), sfdisk (fdisk), mdir (mtools), fsck.fat (dosfstools), e2fsck,
// debugfs, zstd, gzip and xz.
package disk
