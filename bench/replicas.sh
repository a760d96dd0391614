#!/usr/bin/env bash
# Machines reporting run events to one replica and to two replicas on one
# PostgreSQL database, in the same run, with PostgreSQL and the load
# client on the same machine. With two, machine i logs in on replica
# i mod 2 and sends each event to the other replica in turn, as a load
# balancer without session affinity would (bench/events -api A,B).
# Prints p50/p99/errors for each and the ratio.
#
#   bench/replicas.sh                    1,000 machines, 20 s each
#   MACHINES="1000 5000" DURATION=10s bench/replicas.sh
#
# Needs PostgreSQL's initdb/pg_ctl (Debian: postgresql); the server runs
# in a temporary directory on a unix socket, as the tests' pgtest does
# (as the postgres user when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
machines=${MACHINES:-1000}
duration=${DURATION:-20s}
work=$(mktemp -d "${TMPDIR:-/tmp}/imprint-replicas.XXXXXX")
chmod 755 "$work"
pids=()
pgbin=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -f "$work/pg/data/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building this tree..."
go build -o "$work/imprint" ./cmd/imprint
go build -o "$work/events" ./bench/events

echo "starting PostgreSQL ($pgbin)..."
mkdir "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres -A trust >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
	-o "-k $work/pg -c listen_addresses= -c max_connections=200" start >/dev/null

ts='{"id":"b0000000-0000-4000-8000-000000000001","name":"Bench","architecture":"Any","versions":[{"id":"v","taskSequenceId":"b0000000-0000-4000-8000-000000000001","versionNo":1,"status":"Active","steps":[]}]}'

# replicas N DB: N fresh servers on a fresh database DB; sets $apis.
replicas() {
	local n=$1 db=$2 i
	as_pg "$pgbin/createdb" -h "$work/pg" -U postgres "$db"
	local dsn="postgres://postgres@/$db?host=$work/pg"
	apis=
	for i in $(seq "$n"); do
		local data="$work/data-$db-$i" api=127.0.0.1:$((17279 + 2 * i)) boot=127.0.0.1:$((17280 + 2 * i))
		"$work/imprint" --data "$data" server --db "$dsn" --listen "$api" --boot-listen "$boot" \
			--max-conns 20000 --max-conns-per-addr 64 --log-level error 2>>"$work/server-$db-$i.log" &
		pids+=($!)
		for _ in $(seq 300); do [ -S "$data/imprint.sock" ] && break; sleep 0.1; done
		apis=${apis:+$apis,}https://$api
	done
	local sock="$work/data-$db-1/imprint.sock"
	curl -sf --unix-socket "$sock" -X PUT http://imprint/admin/v1/security/anonymous -d '{"on":true}' >/dev/null
	curl -sf --unix-socket "$sock" -X POST http://imprint/admin/v1/tasksequences/import -d "$ts" >/dev/null
}
stop() {
	for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
	pids=()
}
field() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p" "$2"; }

for m in $machines; do
	for n in 1 2; do
		echo
		echo "== $n replica(s) on one PostgreSQL: $m machines, one step event each every 2 s, $duration =="
		replicas "$n" "r${n}m$m"
		"$work/events" -api "$apis" -ca "$work/data-r${n}m$m-1/tls/ca.crt" -machines "$m" -duration "$duration" |
			tee "$work/r$n-$m.events"
		stop
	done
done

echo
echo "== summary =="
for m in $machines; do
	for n in 1 2; do
		f="$work/r$n-$m.events"
		printf '%d replica(s) %5d machines: errors %s  p50 %s ms  p99 %s ms\n' "$n" "$m" \
			"$(field errors "$f")" "$(field p50_ms "$f")" "$(field p99_ms "$f")"
	done
	awk -v a="$(field p99_ms "$work/r1-$m.events")" -v b="$(field p99_ms "$work/r2-$m.events")" \
		'BEGIN { printf "at %s machines: p99 two replicas / one %.3f\n", "'"$m"'", b / a }'
done
