#!/usr/bin/env bash
# A machine's content download over HTTP/1.1 and over HTTP/2 (curl, as a
# machine with a session), against the server built from this tree and a
# baseline built from BASE (default: the commit before this change). Prints
# MiB/s for each (best of 3) and the HTTP/2 : HTTP/1.1 ratio.
#
#   bench/h2.sh [SIZE_MIB]     (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE:-d5e5b47}
size=${1:-512}
work=$(mktemp -d "${TMPDIR:-/tmp}/imprint-h2.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

go build -o "$work/imprint-new" ./cmd/imprint
mkdir "$work/base-src"
git archive "$base" | tar -x -C "$work/base-src"
(cd "$work/base-src" && go build -o "$work/imprint-base" ./cmd/imprint)
head -c $((size << 20)) /dev/urandom >"$work/src.bin"

port=${API_PORT:-17381}
for which in base new; do
	data="$work/data-$which"
	"$work/imprint-$which" --data "$data" server --listen "127.0.0.1:$port" --boot-listen 127.0.0.1:0 \
		--log-level error 2>>"$work/server.log" &
	pid=$!
	sock="$data/imprint.sock"
	for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.1; done
	adm() { curl -sf --unix-socket "$sock" "$@"; }
	adm -X PUT http://imprint/admin/v1/security/anonymous -d '{"on":true}' >/dev/null
	id=$(adm -X POST http://imprint/admin/v1/content \
		-d '{"name":"bench","contentItemType":"File","contentItemPurpose":"Application"}' |
		sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
	"$work/imprint-$which" --data "$data" content version "$id" "$work/src.bin" >/dev/null 2>&1
	tsid=c0000000-0000-4000-8000-000000000001
	adm -X POST http://imprint/admin/v1/tasksequences/import -d '{"id":"'$tsid'","name":"H2","architecture":"Any","versions":[{"id":"v","taskSequenceId":"'$tsid'","versionNo":1,"status":"Active","steps":[{"id":"s1","name":"App","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000b","settings":{},"contentItems":{"Application":"'$id':1"},"enabled":true,"continueOnError":false,"condition":null}]}]}' >/dev/null
	c=(curl -sf --cacert "$data/tls/ca.crt" --resolve "localhost:$port:127.0.0.1")
	tok=$("${c[@]}" -X POST "https://localhost:$port/v1/auth/token" \
		-d '{"method":"anonymous","device":{"uuid":"00000000-0000-4000-8000-000000000001"}}' |
		sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
	"${c[@]}" -H "Authorization: Bearer $tok" -X POST "https://localhost:$port/v1/runs" \
		-d '{"taskSequenceId":"'$tsid'","versionNo":1}' >/dev/null
	for proto in http1.1 http2; do
		best=0
		for _ in 1 2 3; do
			out=$("${c[@]}" --$proto -H "Authorization: Bearer $tok" -o /dev/null \
				-w '%{speed_download} %{http_version}' "https://localhost:$port/v1/content/$id/1/data")
			read -r speed ver <<<"$out"
			best=$(awk -v a="$best" -v b="$speed" 'BEGIN { print (b > a) ? b : a }')
		done
		printf '%-4s curl --%-7s negotiated HTTP/%s  %7.1f MiB/s\n' "$which" "$proto" "$ver" \
			"$(awk -v b="$best" 'BEGIN { print b / 1048576 }')"
		eval "rate_${which}_${proto//./}=$best"
	done
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
awk -v b1="$rate_base_http11" -v b2="$rate_base_http2" -v n1="$rate_new_http11" -v n2="$rate_new_http2" 'BEGIN {
	printf "ratio --http2 : --http1.1   base %.2f   new %.2f\n", b2 / b1, n2 / n1 }'
