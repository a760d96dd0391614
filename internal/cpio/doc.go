// Package cpio writes the "newc" (SVR4, no CRC) cpio archives that the
// Linux kernel unpacks as an initramfs.
//
// The writer is deliberately small and deterministic: every entry is owned
// by root, has a zero modification time and gets the next inode number, so
// the same calls produce the same bytes. Callers decide the entry order.
package cpio
