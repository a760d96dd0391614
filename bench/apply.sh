#!/usr/bin/env bash
# The agent's raw-image path (internal/disk.ApplyRaw: zstd decode, write,
# fsync, SHA-256 of the stored image; optionally read-back verification) against
# `zstd -dc IMAGE | dd of=DISK bs=4M` on the same image and disk file, in one
# benchmark process, for two images: half-entropy bytes (256 MiB, the hardest
# case for a decoder) and an ext4 file system holding the Go distribution
# (512 MiB, like an OS image). The variants take turns in every iteration.
# Prints MB/s of each and the ratios, per run and as a mean.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
out=$(go test -run '^$' -bench 'BenchmarkApplyZstd' -benchmem -benchtime 3x -count "$count" ./internal/disk/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
	function metric(name) { for (i = 1; i <= NF; i++) if ($(i+1) == name) return $i }
	/^BenchmarkApplyZstd\// {
		split($1, p, "/"); img = p[2]; sub(/-[0-9]+$/, "", img); imgs[img] = 1; n[img]++
		base[img] += metric("zstd-dd-MB/s"); ours[img] += metric("imprint-MB/s"); ver[img] += metric("imprint-verify-MB/s")
		r[img] += metric("ratio"); vr[img] += metric("verify-ratio")
	}
	END {
		if (length(imgs) == 0) { print "no results"; exit 1 }
		for (img in imgs) {
			printf "%s (mean of %d runs):\n", img, n[img]
			printf "  zstd -dc | dd                         %5.0f MB/s\n", base[img]/n[img]
			printf "  ApplyRaw (the step default)           %5.0f MB/s  ratio %.2f (target 0.9)\n", ours[img]/n[img], r[img]/n[img]
			printf "  ApplyRaw with VerifyWrite read-back   %5.0f MB/s  ratio %.2f\n", ver[img]/n[img], vr[img]/n[img]
		}
	}'
