#!/usr/bin/env bash
# Machines reporting run events, and the per-machine iPXE script, against
# the server built from this tree and against a baseline built from BASE
# (default: the commit before the single-writer change), in the same run,
# with the load client on the same machine. Prints p50/p99/errors for each
# load and the ratios.
#
#   bench/events.sh                      1,000 and 5,000 machines, 20 s each
#   MACHINES="1000" DURATION=10s BASE=<commit> bench/events.sh
#   BASE_ALL=1 BASE=37cec2f bench/events.sh   the baseline at every count too
#   NEXTBOOT=500 bench/events.sh         an operator's next-boot choice ("local")
#                                        for 500 of the machines before the boot
#                                        script load (set through the admin API)
#
# With nginx installed (Debian nginx-light), the boot script is also
# measured against nginx serving a file of the script's size, the issue's
# yardstick; without it, only against Imprint's own static boot file.
#
# The baseline runs only the first machine count unless BASE_ALL=1 (with
# the default BASE, at 5,000 its setup alone, thousands of fsync'd logins
# fighting for the lock, takes minutes). The server's connection cap is
# printed when it lowered --max-conns to fit the open-file limit: each
# machine holds one connection, so past that cap machines are refused.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE:-d5e5b47}
machines=${MACHINES:-1000 5000}
duration=${DURATION:-20s}
conns=${CONNS:-200}
work=$(mktemp -d "${TMPDIR:-/tmp}/imprint-events.XXXXXX")
pid=
npid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$npid" ] && kill "$npid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
nginx=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
[ -n "$nginx" ] || echo "nginx not found (apt-get install nginx-light): the boot script is compared with Imprint's static file only"

echo "building this tree and the baseline ($base)..."
go build -o "$work/imprint-new" ./cmd/imprint
go build -o "$work/events" ./bench/events
mkdir "$work/base-src"
git archive "$base" | tar -x -C "$work/base-src"
(cd "$work/base-src" && go build -o "$work/imprint-base" ./cmd/imprint)

api=127.0.0.1:${API_PORT:-17281}
boot=127.0.0.1:${BOOT_PORT:-17282}
ngx=127.0.0.1:${NGINX_PORT:-17283}
ts='{"id":"b0000000-0000-4000-8000-000000000001","name":"Bench","architecture":"Any","versions":[{"id":"v","taskSequenceId":"b0000000-0000-4000-8000-000000000001","versionNo":1,"status":"Active","steps":[]}]}'

# serve BINARY: a fresh server with anonymous logins and the sequence.
serve() {
	local data="$work/data-$1"
	rm -rf "$data"
	"$work/imprint-$1" --data "$data" server --listen "$api" --boot-listen "$boot" \
		--max-conns 20000 --max-conns-per-addr 64 --log-level warn 2>>"$work/server-$1.log" &
	pid=$!
	local sock="$data/imprint.sock"
	for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.1; done
	curl -sf --unix-socket "$sock" -X PUT http://imprint/admin/v1/security/anonymous -d '{"on":true}' >/dev/null
	curl -sf --unix-socket "$sock" -X POST http://imprint/admin/v1/tasksequences/import -d "$ts" >/dev/null
	mkdir -p "$data/boot/images/x86_64"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
# choices WHICH N: the next boot of N of the devices set to local, as an
# operator on the devices page would.
choices() {
	local sock="$work/data-$1/imprint.sock" id
	curl -sf --unix-socket "$sock" http://imprint/admin/v1/devices | jq -r ".[:$2][].id" |
		while read -r id; do
			curl -sf --unix-socket "$sock" -X PUT "http://imprint/admin/v1/devices/$id/nextboot" \
				-d '{"nextBoot":"local"}' >/dev/null
		done
}
# nginx_start DIR: nginx serving DIR on its port, as a site would serve a
# static file: every core, sendfile, no access log, keep-alive kept.
nginx_start() {
	mkdir -p "$work/nginx-tmp"
	cat >"$work/nginx.conf" <<-EOF
		daemon off;
		$([ "$(id -u)" = 0 ] && echo "user root;")
		worker_processes auto;
		pid $work/nginx.pid;
		error_log $work/nginx-error.log warn;
		events { worker_connections 4096; }
		http {
			access_log off;
			sendfile on;
			tcp_nopush on;
			keepalive_requests 100000;
			client_body_temp_path $work/nginx-tmp/body;
			proxy_temp_path $work/nginx-tmp/proxy;
			fastcgi_temp_path $work/nginx-tmp/fastcgi;
			uwsgi_temp_path $work/nginx-tmp/uwsgi;
			scgi_temp_path $work/nginx-tmp/scgi;
			server { listen $ngx; root $1; }
		}
	EOF
	"$nginx" -c "$work/nginx.conf" -e "$work/nginx-error.log" 2>>"$work/nginx-error.log" &
	npid=$!
	for _ in $(seq 50); do curl -s -o /dev/null "http://$ngx/" && return; sleep 0.1; done
	echo "nginx did not start:" >&2
	cat "$work/nginx-error.log" >&2
	exit 1
}
field() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p" "$2"; }

for which in base new; do
	for n in $machines; do
		echo
		echo "== $which: $n machines, one step event each every 2 s, $duration =="
		serve "$which"
		"$work/events" -api "https://$api" -ca "$work/data-$which/tls/ca.crt" -machines "$n" -duration "$duration" |
			tee "$work/$which-$n.events"
		if [ "${NEXTBOOT:-0}" -gt 0 ]; then
			choices "$which" "$NEXTBOOT"
			echo "next boot set to local for $NEXTBOOT devices"
		fi
		echo "-- boot script vs static file of its size (and nginx), $conns connections, 15 s each in 3 rounds taken in turn --"
		nflag=()
		if [ -n "$nginx" ]; then
			nginx_start "$work/data-$which/boot/images/x86_64"
			nflag=(-nginx "http://$ngx")
		fi
		"$work/events" -boot "http://$boot" -static "$work/data-$which/boot/images/x86_64/vmlinuz" \
			-machines "$n" -conns "$conns" -duration 15s -rounds 3 "${nflag[@]}" | tee "$work/$which-$n.boot"
		if [ -n "$npid" ]; then kill "$npid"; wait "$npid" 2>/dev/null || true; npid=; fi
		stop
		grep -h "max-conns lowered" "$work/server-$which.log" | sed 's/^/server: /' | head -1 || true
		[ "$which" = base ] && [ -z "${BASE_ALL:-}" ] && break
	done
done

echo
echo "== summary =="
first=${machines%% *}
for which in new base; do
	for n in $machines; do
		f="$work/$which-$n.events"
		[ -f "$f" ] || continue
		printf '%-4s %5d machines: errors %s  p50 %s ms  p99 %s ms   boot script %s× static, %s× nginx\n' "$which" "$n" \
			"$(field errors "$f")" "$(field p50_ms "$f")" "$(field p99_ms "$f")" "$(field ratio "$work/$which-$n.boot")" \
			"$(field nginx_ratio "$work/$which-$n.boot")"
	done
done
b="$work/base-$first"
awk -v nb="$(field p99_ms "$b.events")" -v nn="$(field p99_ms "$work/new-$first.events")" \
	-v sb="$(field script_rps "$b.boot")" -v sn="$(field script_rps "$work/new-$first.boot")" \
	'BEGIN { printf "at %s machines: p99 new/base %.3f, boot script rate new/base %.2f\n", "'"$first"'", nn / nb, sn / sb }'
