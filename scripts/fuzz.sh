#!/usr/bin/env bash
# Runs every Go fuzz target in the tree (found by name, so a new one is
# never left out) for FUZZTIME each; `make fuzz` calls it.
#
# A target fails the run when go test fails, with one exception: Go 1.26's
# fuzz coordinator can report a bare "context deadline exceeded" when
# -fuzztime runs out while a worker is mid-call (golang/go#75804, fixed in
# Go 1.27). That is no finding: a real one always prints "Failing input
# written to testdata/fuzz/…" (or a panic or test error). Such a run is
# reported as a coordinator timeout and the next target runs.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
cd "$(dirname "$0")/.."
status=0
for f in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd); do
	pkg=./$(dirname "$f")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz $pkg $name for $FUZZTIME"
		out=$("$GO" test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=100x "$pkg" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		if [ "$rc" -ne 0 ]; then
			if grep -q 'context deadline exceeded' <<<"$out" &&
				! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' <<<"$out"; then
				echo "fuzz $pkg $name: the fuzz coordinator's deadline race (golang/go#75804), no failing input: not a finding"
				continue
			fi
			echo "fuzz $pkg $name FAILED: fix the bug and commit the input in $pkg/testdata/fuzz/$name as a seed"
			status=1
		fi
	done
done
exit $status
