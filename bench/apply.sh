#!/usr/bin/env bash
# The agent's raw-image path (internal/disk.ApplyRaw: zstd decode, write,
# fsync, SHA-256 of input and output, read-back verification) against
# `zstd -dc IMAGE | dd of=DISK bs=4M` on the same 256 MiB image and disk
# file, in one benchmark process. Prints MB/s of each and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
out=$(go test -run '^$' -bench 'BenchmarkApplyZstd' -benchtime 3x -count "$count" ./internal/disk/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
	/ApplyZstd\/imprint/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") { s += $i; n++ } }
	/ApplyZstd\/zstd-dd/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") { b += $i; m++ } }
	END {
		if (n == 0 || m == 0) { print "no results"; exit 1 }
		printf "imprint ApplyRaw  %.0f MB/s (mean of %d)\nzstd -dc | dd     %.0f MB/s (mean of %d)\nratio             %.2f (target 0.9)\n", s/n, n, b/m, m, (s/n)/(b/m)
	}'
