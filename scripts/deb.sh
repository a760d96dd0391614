#!/bin/sh
# deb.sh BINDIR OUTDIR builds the Debian packages imprint and imprint-agent
# with dpkg-deb from the binaries in BINDIR (imprint, imprint-agent and,
# when there, imprint-agent.exe) and the files in packaging/, and prints
# the paths of the two .deb files it wrote to OUTDIR.
#
# VERSION defaults to scripts/debversion.sh's (from git), ARCH to dpkg's.
# DEB_COMPRESSION is dpkg-deb's -Z (default xz; the tests use gzip, faster).
# Run it from the top of the tree (make deb does).
#
# The binaries go in /usr/lib/imprint, with links in /usr/bin: the server
# looks for imprint-agent and imprint-agent.exe beside its own executable
# (for boot images and the Windows agent it serves), and a Windows .exe
# has no place in /usr/bin.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: scripts/deb.sh BINDIR OUTDIR" >&2
	exit 2
fi
bin=$1
out=$2
version=${VERSION:-$(scripts/debversion.sh)}
arch=${ARCH:-$(dpkg --print-architecture)}
for f in imprint imprint-agent; do
	if [ ! -x "$bin/$f" ]; then
		echo "deb.sh: $bin/$f is missing or not executable (make build makes it)" >&2
		exit 1
	fi
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
umask 022

# control PACKAGE ROOT DESCRIPTION [FIELD...]: writes ROOT/DEBIAN/control.
control() {
	pkg=$1 root=$2 desc=$3
	shift 3
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	{
		echo "Package: $pkg"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: Imprint maintainers <maintainers@imprint-osd.invalid>"
		echo "Installed-Size: $size"
		echo "Section: admin"
		echo "Priority: optional"
		for field in "$@"; do
			echo "$field"
		done
		echo "Description: $desc"
		echo " Imprint is an open-source operating-system deployment server: machines"
		echo " network-boot into its boot image or start its agent in an installed OS,"
		echo " and the agent runs task sequences (DeployR-compatible) that the server"
		echo " records step by step."
	} >"$root/DEBIAN/control"
}

# imprint: the server, its units, user, data directory and config.
r=$stage/imprint
install -d "$r/DEBIAN" "$r/usr/bin" "$r/usr/lib/imprint" "$r/usr/lib/systemd/system" \
	"$r/usr/lib/sysusers.d" "$r/usr/lib/tmpfiles.d" "$r/etc" "$r/usr/share/doc/imprint"
install -m 0755 "$bin/imprint" "$r/usr/lib/imprint/imprint"
ln -s ../lib/imprint/imprint "$r/usr/bin/imprint"
install -m 0644 packaging/imprint.service "$r/usr/lib/systemd/system/imprint.service"
# imprint-pxe.service is imprint.service with --pxe and the one
# capability proxyDHCP and TFTP need to bind UDP 67, 69 and 4011.
sed -e 's|^Description=.*|& with proxyDHCP and TFTP (--pxe)|' \
	-e 's|^Conflicts=imprint-pxe.service$|Conflicts=imprint.service|' \
	-e 's|^\(ExecStart=.* server .*\)$|\1 --pxe|' \
	-e 's|^CapabilityBoundingSet=$|CapabilityBoundingSet=CAP_NET_BIND_SERVICE|' \
	-e 's|^AmbientCapabilities=$|AmbientCapabilities=CAP_NET_BIND_SERVICE|' \
	-e '/^# With --pxe/,/^# capability those ports need/d' \
	packaging/imprint.service >"$r/usr/lib/systemd/system/imprint-pxe.service"
chmod 0644 "$r/usr/lib/systemd/system/imprint-pxe.service"
install -m 0644 packaging/sysusers.conf "$r/usr/lib/sysusers.d/imprint.conf"
install -m 0644 packaging/tmpfiles.conf "$r/usr/lib/tmpfiles.d/imprint.conf"
install -m 0644 packaging/imprint.conf "$r/etc/imprint.conf"
install -m 0644 docs/packaging.md "$r/usr/share/doc/imprint/packaging.md"
echo /etc/imprint.conf >"$r/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$r/DEBIAN/"
control imprint "$r" "OS deployment server" \
	"Depends: systemd | systemd-standalone-sysusers | systemd-sysusers, systemd | systemd-standalone-tmpfiles" \
	"Recommends: imprint-agent (= $version)"

# imprint-agent: the agent for Linux and, when built, for Windows (which
# the server hands to Windows machines).
a=$stage/imprint-agent
install -d "$a/DEBIAN" "$a/usr/bin" "$a/usr/lib/imprint"
install -m 0755 "$bin/imprint-agent" "$a/usr/lib/imprint/imprint-agent"
ln -s ../lib/imprint/imprint-agent "$a/usr/bin/imprint-agent"
if [ -f "$bin/imprint-agent.exe" ]; then
	install -m 0644 "$bin/imprint-agent.exe" "$a/usr/lib/imprint/imprint-agent.exe"
fi
control imprint-agent "$a" "OS deployment agent of Imprint"

for p in imprint imprint-agent; do
	deb=$out/${p}_${version}_${arch}.deb
	dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$stage/$p" "$deb" >/dev/null
	echo "$deb"
done
