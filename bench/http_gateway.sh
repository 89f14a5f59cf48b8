#!/usr/bin/env bash
# HTTP gateway overhead, side by side in one run on this machine: wrk against
#   direct  - a small upstream (nginx returning a fixed 100-byte body),
#   nginx   - nginx as a plain reverse proxy to it (no auth; upstream keep-alive),
#   warden  - Warden's HTTP gateway to it (API key auth + grant check + credential injection +
#             the request durably on the ledger before forwarding + its outcome after),
# first at -c64 for throughput, then at -c1 for the latency each proxy adds.
# Installs nginx and wrk if missing; builds Warden in release mode; uses the SQLite backend.
#
# Usage: bench/http_gateway.sh [duration=10s] [connections=64] [low-concurrency duration=5s]
# BENCH_WARDEN=path/to/warden skips the build and benchmarks that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-10s}
CONNECTIONS=${2:-64}
LOW_DURATION=${3:-5s}
THREADS=2

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null
fi
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
WARDEN=$(warden_binary)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    stop_pids
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_http() { # url [header]
    for _ in $(seq 1 100); do
        curl -s -o /dev/null ${2:+-H "$2"} "$1" && return 0
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    exit 1
}

# nginx with its own prefix, config, pid file and logs under $WORK; $2 is the http {} body.
start_nginx() { # name http-body
    local dir=$WORK/$1
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$2
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    PIDS+=($!)
}

UPSTREAM_PORT=$(free_port)
BODY=$(printf 'x%.0s' $(seq 1 99))
start_nginx upstream "
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / { default_type text/plain; return 200 '$BODY
'; }
    }"
NGINX_PORT=$(free_port)
start_nginx proxy "
    upstream backend { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

# Warden, in a data directory of its own; port 0 and addresses.json.
mkdir -p "$WORK/warden"
if "$WARDEN" serve --help | grep -q -- '--http-addr'; then
    HTTP_FLAG=(--http-addr 127.0.0.1:0)
else
    HTTP_FLAG=()
    export WARDEN_HTTP_ADDR=127.0.0.1:0
fi
(cd "$WORK/warden" && exec "$WARDEN" serve --api-addr 127.0.0.1:0 "${HTTP_FLAG[@]}" \
    >"$WORK/warden/out" 2>"$WORK/warden/err") &
PIDS+=($!)
ADDRESSES=$WORK/warden/warden-data/addresses.json
for _ in $(seq 1 100); do [ -s "$ADDRESSES" ] && break; sleep 0.1; done
[ -s "$ADDRESSES" ] || { echo "warden did not start:" >&2; cat "$WORK/warden/err" >&2; exit 1; }
address() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$ADDRESSES"; }
API=http://$(address api)
GATEWAY=http://$(address http)
TOKEN=$(cat "$WORK/warden/warden-data/admin-token")
api() { # path json
    curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "$2" "$API$1"
}
wait_http "$API/healthz"
api /v1/targets "{\"name\":\"bench\",\"kind\":\"http\",\"upstream\":\"http://127.0.0.1:$UPSTREAM_PORT\",\"inject_headers\":[\"X-Upstream-Key: bench-secret\"]}" >/dev/null
api /v1/accounts '{"name":"bench","owner":"bench@example.com","purpose":"gateway benchmark"}' >/dev/null
KEY=$(api /v1/accounts/bench/keys '{}' | sed -n 's/.*"secret":"\([^"]*\)".*/\1/p')
api /v1/grants '{"account":"bench","target":"bench","allow":"GET /**"}' >/dev/null

DIRECT_URL=http://127.0.0.1:$UPSTREAM_PORT/v1/orders/42
NGINX_URL=http://127.0.0.1:$NGINX_PORT/v1/orders/42
WARDEN_URL=$GATEWAY/bench/v1/orders/42
AUTH="Authorization: Bearer $KEY"
wait_http "$DIRECT_URL"
wait_http "$NGINX_URL"
wait_http "$WARDEN_URL" "$AUTH"
[ "$(curl -s -H "$AUTH" "$WARDEN_URL" | wc -c)" = 100 ] || { echo "warden does not forward" >&2; exit 1; }

# wrk's latency with unit (us, ms, s) in microseconds.
to_us() { awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 1
    printf "%.0f", n * f }'; }

declare -A RPS P50 P99 ERRORS
measure() { # name url threads connections duration [header]
    local name=$1 url=$2 t=$3 c=$4 d=$5 header=${6:-}
    local out=$WORK/wrk-$name-c$c
    # Warm up connections and caches, then measure.
    wrk -t"$t" -c"$c" -d2s ${header:+-H "$header"} "$url" >/dev/null
    wrk -t"$t" -c"$c" -d"$d" --latency ${header:+-H "$header"} "$url" >"$out"
    RPS[$name-$c]=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$out")
    P50[$name-$c]=$(to_us "$(awk '$1=="50%" {print $2}' "$out")")
    P99[$name-$c]=$(to_us "$(awk '$1=="99%" {print $2}' "$out")")
    ERRORS[$name-$c]=$(awk '/Non-2xx/ {n += $NF}
        /Socket errors/ {for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i + 0}
        END {print n + 0}' "$out")
}

table() { # connections
    local c=$1
    printf '%-8s %12s %10s %10s %8s\n' target 'requests/s' 'p50 (µs)' 'p99 (µs)' errors
    for name in direct nginx warden; do
        printf '%-8s %12s %10s %10s %8s\n' "$name" "${RPS[$name-$c]}" "${P50[$name-$c]}" \
            "${P99[$name-$c]}" "${ERRORS[$name-$c]}"
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "HTTP gateway benchmark: $(nproc) cores (load average before: $(cut -d" " -f1-3 /proc/loadavg)), $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), 100-byte upstream body, Warden on SQLite"
echo
echo "== throughput: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency =="
measure direct "$DIRECT_URL" "$THREADS" "$CONNECTIONS" "$DURATION"
measure nginx "$NGINX_URL" "$THREADS" "$CONNECTIONS" "$DURATION"
measure warden "$WARDEN_URL" "$THREADS" "$CONNECTIONS" "$DURATION" "$AUTH"
table "$CONNECTIONS"
echo "warden / nginx throughput: $(ratio "${RPS[warden-$CONNECTIONS]}" "${RPS[nginx-$CONNECTIONS]}")"
echo "warden / direct throughput: $(ratio "${RPS[warden-$CONNECTIONS]}" "${RPS[direct-$CONNECTIONS]}")"
echo "added p50 over direct: nginx $((P50[nginx-$CONNECTIONS] - P50[direct-$CONNECTIONS])) µs, warden $((P50[warden-$CONNECTIONS] - P50[direct-$CONNECTIONS])) µs"
echo
echo "== latency: wrk -t1 -c1 -d$LOW_DURATION --latency =="
measure direct "$DIRECT_URL" 1 1 "$LOW_DURATION"
measure nginx "$NGINX_URL" 1 1 "$LOW_DURATION"
measure warden "$WARDEN_URL" 1 1 "$LOW_DURATION" "$AUTH"
table 1
echo "added p50 over direct: nginx $((P50[nginx-1] - P50[direct-1])) µs, warden $((P50[warden-1] - P50[direct-1])) µs"
echo
CHECKPOINT=$(curl -sf "$API/v1/ledger/checkpoint" | sed -n 2p)
echo "ledger entries covered by the latest signed checkpoint: $CHECKPOINT (an intent and an outcome per forwarded request)"
