#!/usr/bin/env bash
# The agent's raw-image path (internal/disk.ApplyRaw: zstd decode, write,
# fsync, SHA-256 of the stored image; optionally read-back verification) against
# `zstd -dc IMAGE | dd of=DISK bs=4M` on the same 256 MiB image and disk
# file, in one benchmark process. Prints MB/s of each, the ratio, and the
# bytes allocated per image (-benchmem).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
out=$(go test -run '^$' -bench 'BenchmarkApplyZstd' -benchmem -benchtime 3x -count "$count" ./internal/disk/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
	function mbs() { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") return $i }
	/ApplyZstd\/imprint-no-readback/ { d += mbs(); dn++; next }
	/ApplyZstd\/imprint-/ { v += mbs(); vn++; next }
	/ApplyZstd\/zstd-dd/ { b += mbs(); bn++ }
	END {
		if (dn == 0 || vn == 0 || bn == 0) { print "no results"; exit 1 }
		printf "zstd -dc | dd                         %4.0f MB/s (mean of %d)\n", b/bn, bn
		printf "ApplyRaw (the step default)           %4.0f MB/s  ratio %.2f (target 0.9)\n", d/dn, (d/dn)/(b/bn)
		printf "ApplyRaw with VerifyWrite read-back   %4.0f MB/s  ratio %.2f\n", v/vn, (v/vn)/(b/bn)
	}'
