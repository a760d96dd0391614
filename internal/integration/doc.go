// Package integration runs Imprint's real binaries as processes on
// loopback: `imprint server`, the `imprint` admin CLI and `imprint-agent`,
// with nothing faked. The QEMU tests that boot whole machines are in e2e/.
package integration
