// Package packaging holds the tests of what `make deb` and `make release`
// build (scripts/deb.sh, scripts/release.sh, scripts/debversion.sh and the
// files in packaging/): the packages install, upgrade and purge in a
// scratch root, the systemd units pass systemd-analyze, the server starts
// with the unit's own command line, and the release binaries are static.
// It has no code of its own.
package packaging
