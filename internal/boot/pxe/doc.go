// Package pxe holds the network-boot services that sit in front of the
// HTTP boot chain: a small read-only TFTP server (RFC 1350 with the
// blksize, tsize and timeout options of RFC 2347-2349) for firmware that
// can only fetch its first binary by TFTP.
//
// The proxyDHCP responder for `imprint server --pxe` is not written yet.
package pxe
