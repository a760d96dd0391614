#!/usr/bin/env bash
# Every benchmark with its baseline; results go into docs/performance.md by hand.
set -euo pipefail
cd "$(dirname "$0")"
echo "== content store through the server (2 GiB) =="
./content.sh "${1:-2048}"
echo
echo "== raw image apply =="
./apply.sh
echo
echo "== hostile network (20,000 idle connections, 1,000 slow bodies) =="
./hostile.sh
echo
echo "== machines reporting events, the per-machine boot script (against the base commit) =="
./events.sh
echo
echo "== content download over HTTP/1.1 and HTTP/2 (against the base commit) =="
./h2.sh
