//go:build e2e

// Package e2e holds Imprint's end-to-end tests: a real machine, emulated by
// QEMU (TCG, no KVM needed), network-boots from an Imprint server, the
// harness answers the passcode prompt on the serial console, the agent
// deploys a disk, and the machine reboots into what was deployed. The host
// then checks the disk and the server's run record.
//
// Every file carries the build tag e2e, so `go test ./...` skips the
// package. Run it as root (network namespaces) with
//
//	go test -tags e2e -v -timeout 20m ./e2e/
//
// Isolation: each test creates its own network namespace holding only a
// loopback interface; the server listens on 127.0.0.1 inside it and QEMU's
// user-mode network, started in the same namespace, shows that loopback
// to the guest as 10.0.2.2. Nothing leaves the machine. TestLANProxyDHCP
// and the Secure Boot network tests instead build a bridged LAN of three
// namespaces (lan.go): the machine on a tap, dnsmasq as the site's DHCP
// server, and the server with its built-in proxyDHCP and TFTP.
//
// Caches: the Debian kernel, systemd-boot's EFI stub, shim-signed and
// grub-efi-amd64-signed are downloaded (not installed) once into
// $IMPRINT_E2E_CACHE, default ~/.cache/imprint-e2e. The host packages the tests need are listed in
// README.md.
package e2e
