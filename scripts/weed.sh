#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (Apache-2.0), the S3 server the content tests
# run against (internal/content/s3store/s3test), into bin/tools/weed, once:
# a second run with the same version does nothing. `make deps` calls it.
#
# It is built from the Go module proxy outside Imprint's module, so
# SeaweedFS never enters our go.mod. `go install pkg@version` refuses a
# module whose go.mod has replace directives (SeaweedFS's has one), so the
# build runs inside the downloaded module with its own go.mod and go.sum.
# It is a long build on 2 cores (docs/performance.md has the figure);
# the Go build cache makes a rebuild quick.
set -euo pipefail
VERSION=v0.0.0-20261109003541-7506e5f91cd6
GO=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bin/tools/weed
if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$VERSION" ]; then
	exit 0
fi
mkdir -p "$root/bin/tools"
echo "building weed (SeaweedFS $VERSION) into bin/tools: a long build, once"
# Outside any module, so our go.mod and go.sum are not touched.
dir=$(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS= "$GO" mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/weed" ]; then
	echo "weed.sh: could not download github.com/seaweedfs/seaweedfs@$VERSION" >&2
	exit 1
fi
start=$(date +%s)
(cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly "$GO" build -buildvcs=false -trimpath -o "$out.tmp" ./weed)
mv "$out.tmp" "$out"
echo "$VERSION" >"$out.version"
echo "built bin/tools/weed in $(($(date +%s) - start)) s"
