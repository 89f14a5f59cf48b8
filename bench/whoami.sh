#!/usr/bin/env bash
# Key verification throughput: GET /v1/whoami with a service-account API key, through the real
# server (authentication + a durable auth event on the ledger per request), on SQLite and on
# PostgreSQL, driven by wrk. Installs wrk if missing; needs PostgreSQL on 127.0.0.1:5432.
#
# Usage: bench/whoami.sh [duration=10s] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNECTIONS=${2:-64}
PG=${WARDEN_TEST_PG:-postgres://postgres@127.0.0.1:5432}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p warden
WARDEN=$PWD/target/release/warden
WORK=$(mktemp -d)
DB=warden_bench_$$
cleanup() {
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

run() { # name, extra serve args...
    local name=$1; shift
    local dir=$WORK/$name
    mkdir -p "$dir"
    (cd "$dir" && exec "$WARDEN" serve --api-addr 127.0.0.1:0 "$@" >"$dir/out" 2>"$dir/err") &
    SERVER=$!
    for _ in $(seq 1 100); do [ -f "$dir/warden-data/addresses.json" ] && break; sleep 0.1; done
    local url key
    url=http://$(sed 's/.*"api":"\([^"]*\)".*/\1/' "$dir/warden-data/addresses.json")
    cd "$dir"
    "$WARDEN" account create bench --owner bench@example.com --purpose benchmark >/dev/null
    key=$("$WARDEN" key create bench 2>/dev/null)
    cd - >/dev/null
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $key" "$url/v1/whoami" >"$dir/wrk"
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk")
    p50=$(awk '$1=="50%" {print $2}' "$dir/wrk")
    p99=$(awk '$1=="99%" {print $2}' "$dir/wrk")
    local events
    events=$(cd "$dir" && "$WARDEN" events --category auth --output json | wc -l)
    printf '%-10s %10s req/s   p50 %8s   p99 %8s   auth events recorded: %s\n' "$name" "$rps" "$p50" "$p99" "$events"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
}

echo "GET /v1/whoami, wrk -t2 -c$CONNECTIONS -d$DURATION, $(nproc) cores"
run sqlite
psql -q "$PG/postgres" -c "CREATE DATABASE $DB"
run postgres --database-url "$PG/$DB"
