#!/usr/bin/env bash
# Upload and download a large file through the server with the imprint CLI
# (the admin socket), against cp of the same file on the same disk. Prints MiB/s for each, the throughput ratio
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
sync; sleep 2
t0=$(now); cp "$work/src.bin" "$work/copy.bin"; sync "$work/copy.bin"; t1=$(now)
cp_rate=$(rate "$t0" "$t1")
rm -f "$work/copy.bin"
# A second baseline that copies through user space as the server must
# (cp may use copy_file_range and never touch the bytes).
sync; sleep 2
t0=$(now); dd if="$work/src.bin" of="$work/copy.bin" bs=4M status=none; sync "$work/copy.bin"; t1=$(now)
dd_rate=$(rate "$t0" "$t1")
rm -f "$work/copy.bin"

./bin/imprint --data "$work/data" server --listen 127.0.0.1:0 --boot-listen 127.0.0.1:0 --log-level warn &
pid=$!
sock="$work/data/imprint.sock"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
curl -sf --unix-socket "$sock" http://imprint/healthz >/dev/null

id=$(curl -sf --unix-socket "$sock" -X POST http://imprint/admin/v1/content \
	-d '{"name":"bench","contentItemType":"File","contentItemPurpose":"OperatingSystem"}' |
	sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)

sync; sleep 2
t0=$(now)
./bin/imprint --data "$work/data" content version "$id" "$work/src.bin" >/dev/null 2>&1
t1=$(now)
up_rate=$(rate "$t0" "$t1")

# The server alone: the same download into /dev/null.
t0=$(now)
curl -sf --unix-socket "$sock" -o /dev/null "http://imprint/admin/v1/content/$id/versions/1/data"
t1=$(now)
serve_rate=$(rate "$t0" "$t1")

sync; sleep 2
t0=$(now)
./bin/imprint --data "$work/data" content get "$id" --version 1 -o "$work/down.bin" >/dev/null 2>&1
sync "$work/down.bin"
t1=$(now)
down_rate=$(rate "$t0" "$t1")
cmp "$work/src.bin" "$work/down.bin"

rss_kib=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status)
printf 'size            %d MiB\n' "$size"
printf 'cp (baseline)   %s MiB/s\n' "$cp_rate"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'dd bs=4M        %s MiB/s\n' "$dd_rate"
printf 'upload          %s MiB/s  ratio %s against cp, %s against dd\n' "$up_rate" "$(ratio "$up_rate" "$cp_rate")" "$(ratio "$up_rate" "$dd_rate")"
printf 'download        %s MiB/s  ratio %s against cp, %s against dd\n' "$down_rate" "$(ratio "$down_rate" "$cp_rate")" "$(ratio "$down_rate" "$dd_rate")"
printf 'download, served %s MiB/s into /dev/null (the server alone)\n' "$serve_rate"
printf 'server peak RSS %.1f MiB (target < 100)\n' "$(awk -v k="$rss_kib" 'BEGIN{print k/1024}')"
