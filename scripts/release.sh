#!/bin/sh
# release.sh OUTDIR builds the release binaries into OUTDIR: imprint and
# imprint-agent for each of PLATFORMS (default linux/amd64 linux/arm64),
# as imprint-OS-ARCH and imprint-agent-OS-ARCH, the Windows agent as
# imprint-agent.exe (the name the server looks for), and SHA256SUMS over
# them all. Every binary is static (CGO_ENABLED=0): a Linux binary with a
# program interpreter (a dynamic loader) fails the build.
# Run it from the top of the tree (make release does).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: scripts/release.sh OUTDIR" >&2
	exit 2
fi
out=$1
go=${GO:-go}
platforms=${PLATFORMS:-linux/amd64 linux/arm64}
mkdir -p "$out"
rm -f "$out"/SHA256SUMS
files=""

for p in $platforms; do
	os=${p%/*} arch=${p#*/}
	for cmd in imprint imprint-agent; do
		files="$files $cmd-$os-$arch"
		f=$out/$cmd-$os-$arch
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$go" build -trimpath -o "$f" "./cmd/$cmd"
		if [ "$os" = linux ] && readelf --program-headers "$f" | grep -q INTERP; then
			echo "release.sh: $f is not static: it names a program interpreter" >&2
			exit 1
		fi
	done
done
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 "$go" build -trimpath -o "$out/imprint-agent.exe" ./cmd/imprint-agent

files="$files imprint-agent.exe"

# Only the files built here: dist/ also holds make deb's packages.
cd "$out"
# shellcheck disable=SC2086 # the names hold no spaces
sha256sum $files >SHA256SUMS
cat SHA256SUMS
