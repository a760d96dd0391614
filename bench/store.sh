#!/usr/bin/env bash
# The SQLite store's hot paths (a machine's event post under many
# concurrent machines: group commit; the boot script's read) in this tree
# and in BASE (default: the commit before the shared SQL layer), in the same
# run, alternating, and the ratio new/base of ns/op (below 1: faster).
#
#   bench/store.sh                  3 rounds of 2 s per benchmark
#   ROUNDS=5 BASE=<commit> bench/store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE:-fd151fc}
rounds=${ROUNDS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/imprint-storebench.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir "$work/base-src"
git archive "$base" | tar -x -C "$work/base-src"
cp internal/store/sqlite/bench_test.go "$work/base-src/internal/store/sqlite/"
(cd "$work/base-src" && go test -c -o "$work/base.test" ./internal/store/sqlite/)
go test -c -o "$work/new.test" ./internal/store/sqlite/

for i in $(seq "$rounds"); do
	for which in base new; do
		"$work/$which.test" -test.run '^$' -test.bench . -test.benchtime 2s |
			awk -v w="$which" '/^Benchmark/ { sub(/-[0-9]+$/, "", $1); print w, $1, $3 }' >>"$work/results"
	done
done
awk '{ sum[$1" "$2] += $3; n[$1" "$2]++ } END {
	for (k in sum) { split(k, p, " "); if (p[1] == "new") {
		b = sum["base "p[2]] / n["base "p[2]]; v = sum[k] / n[k]
		printf "%-22s base %10.0f ns/op  new %10.0f ns/op  new/base %.2f\n", p[2], b, v, v / b } } }' "$work/results" | sort
