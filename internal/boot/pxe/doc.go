// Package pxe holds the network-boot services that sit in front of the
// HTTP boot chain, for `imprint server --pxe`:
//
//   - Proxy decides proxyDHCP answers (PXE 2.1, RFC 4578): it never hands
//     out addresses, only the boot file by client architecture — the iPXE
//     binary over TFTP for PXE firmware, its HTTP URL for UEFI HTTP boot,
//     and the boot port's /boot.ipxe for a client that already is iPXE,
//     which ends the chainloading loop.
//   - Service runs Proxy on UDP 67 (beside the site's unchanged DHCP
//     server) and 4011 (where iPXE sends its ProxyDHCPREQUEST), and
//     TFTPServer on UDP 69 serving only the iPXE binaries.
//   - TFTPServer is a small read-only TFTP server (RFC 1350 with the
//     blksize, tsize and timeout options of RFC 2347-2349), its transfers
//     capped in number, per source address and in lifetime.
package pxe
