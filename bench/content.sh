#!/usr/bin/env bash
# Upload and download a large file through the server, against cp of the
# same file on the same disk. Prints MiB/s for each, the throughput ratio
# (server / cp) and the server's peak RSS (VmHWM).
#
#   bench/content.sh [SIZE_MIB]     (default 2048)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2048}
make -s build
work=$(mktemp -d "${TMPDIR:-/tmp}/imprint-bench.XXXXXX")
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

echo "making a ${size} MiB file of random bytes..."
head -c $((size << 20)) /dev/urandom >"$work/src.bin"
sync

now() { date +%s.%N; }
rate() { awk -v b=$((size << 20)) -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", b / 1048576 / (e - s) }'; }

# Baseline: cp of the same file, flushed to disk like the server's fsync.
t0=$(now); cp "$work/src.bin" "$work/copy.bin"; sync "$work/copy.bin"; t1=$(now)
cp_rate=$(rate "$t0" "$t1")
rm -f "$work/copy.bin"

./bin/imprint --data "$work/data" server --listen 127.0.0.1:0 --boot-listen 127.0.0.1:0 --log-level warn &
pid=$!
sock="$work/data/imprint.sock"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
curl -sf --unix-socket "$sock" http://imprint/healthz >/dev/null

id=$(curl -sf --unix-socket "$sock" -X POST http://imprint/admin/v1/content \
	-d '{"name":"bench","contentItemType":"File","contentItemPurpose":"OperatingSystem"}' |
	sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)

t0=$(now)
curl -sf --unix-socket "$sock" -X POST -H 'Content-Type: application/octet-stream' \
	-T "$work/src.bin" "http://imprint/admin/v1/content/$id/versions" >/dev/null
t1=$(now)
up_rate=$(rate "$t0" "$t1")

t0=$(now)
curl -sf --unix-socket "$sock" -o "$work/down.bin" "http://imprint/admin/v1/content/$id/versions/1/data"
sync "$work/down.bin"
t1=$(now)
down_rate=$(rate "$t0" "$t1")
cmp "$work/src.bin" "$work/down.bin"

rss_kib=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status)
printf 'size            %d MiB\n' "$size"
printf 'cp (baseline)   %s MiB/s\n' "$cp_rate"
printf 'upload          %s MiB/s  ratio %.2f\n' "$up_rate" "$(awk -v a="$up_rate" -v b="$cp_rate" 'BEGIN{print a/b}')"
printf 'download        %s MiB/s  ratio %.2f\n' "$down_rate" "$(awk -v a="$down_rate" -v b="$cp_rate" 'BEGIN{print a/b}')"
printf 'server peak RSS %.1f MiB (target < 100)\n' "$(awk -v k="$rss_kib" 'BEGIN{print k/1024}')"
