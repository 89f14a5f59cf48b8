#!/usr/bin/env bash
# PostgreSQL gateway overhead, side by side in one run on this machine: pgbench -S (select-only,
# scale 10) in both query modes (-M simple, -M prepared) at 1, 8 and 32 clients against
#   direct    - the local PostgreSQL on 127.0.0.1:5432 (user postgres, a scratch database),
#   pgbouncer - PgBouncer in session mode in front of it (trust auth),
#   warden    - Warden's PostgreSQL gateway to it (the API key as the password, the grant
#               checked, Warden's own upstream login, the session on the ledger),
# each run preceded by a 2-second warm-up. TPS excludes connection set-up (pgbench's "without
# initial connection time"); latency is pgbench's average per transaction.
# Installs pgbouncer if missing; builds Warden in release mode; Warden uses the SQLite backend.
#
# Usage: bench/pg_gateway.sh [duration=10s]
# BENCH_WARDEN=path/to/warden skips the build and benchmarks that binary.
# BENCH_SKIP_WARDEN=1 runs only direct and pgbouncer.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-10s}
SECONDS_EACH=${DURATION%s}
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "duration must be whole seconds, like 10s" >&2; exit 2; }
THREADS=2
CLIENTS=(1 8 32)
MODES=(simple prepared)
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
SKIP_WARDEN=${BENCH_SKIP_WARDEN:-0}
TARGETS=(direct pgbouncer)
[ "$SKIP_WARDEN" = 1 ] || TARGETS+=(warden)

command -v pgbouncer >/dev/null || { apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null; }
for tool in pgbench psql createdb dropdb; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install postgresql-client)" >&2; exit 1; }
done
if [ "$SKIP_WARDEN" != 1 ]; then
    WARDEN=$(warden_binary)
fi

WORK=$(mktemp -d)
DB=warden_bench_$$_$RANDOM
PIDS=()
cleanup() {
    stop_pids
    dropdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --if-exists --force "$DB" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs psql until `query` answers `expected` on 127.0.0.1:port, for at most 20 seconds.
wait_sql() { # name port user dbname query expected
    local got= deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        got=$(PGSSLMODE=disable PGCONNECT_TIMEOUT=2 timeout 5 psql -h 127.0.0.1 -p "$2" -U "$3" \
            -d "$4" -XtAc "$5" 2>"$WORK/psql-$1.err" || true)
        [ "$got" = "$6" ] && return 0
        sleep 0.1
    done
    echo "$1 does not answer '$5' with '$6' on port $2 (got '$got'):" >&2
    cat "$WORK/psql-$1.err" >&2
    exit 1
}

# The scratch database, initialised directly on the server.
createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$DB"
pgbench -i -q -s 10 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$DB" >"$WORK/pgbench-init" 2>&1 ||
    { echo "pgbench -i failed:" >&2; cat "$WORK/pgbench-init" >&2; exit 1; }
BRANCHES='SELECT count(*) FROM pgbench_branches'
wait_sql direct "$PG_PORT" "$PG_USER" "$DB" "$BRANCHES" 10

# PgBouncer with its own config, user list and log under $WORK. It refuses to run as root, so
# as root it is started with -u postgres, which must be able to reach its directory.
PGBOUNCER_DIR=$WORK/pgbouncer
PGBOUNCER_PORT=$(free_port)
mkdir -p "$PGBOUNCER_DIR"
printf '"%s" ""\n' "$PG_USER" >"$PGBOUNCER_DIR/userlist.txt"
cat >"$PGBOUNCER_DIR/pgbouncer.ini" <<EOF
[databases]
$DB = host=$PG_HOST port=$PG_PORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGBOUNCER_DIR/userlist.txt
pool_mode = session
default_pool_size = 40
max_client_conn = 200
logfile = $PGBOUNCER_DIR/pgbouncer.log
EOF
PGBOUNCER_USER=()
if [ "$(id -u)" = 0 ]; then
    PGBOUNCER_USER=(-u postgres)
    chmod 711 "$WORK"
    chown -R postgres "$PGBOUNCER_DIR"
fi
pgbouncer "${PGBOUNCER_USER[@]}" "$PGBOUNCER_DIR/pgbouncer.ini" >"$PGBOUNCER_DIR/out" 2>&1 &
PIDS+=($!)
wait_sql pgbouncer "$PGBOUNCER_PORT" "$PG_USER" "$DB" "$BRANCHES" 10

# Warden, in a data directory of its own on ports picked here; the CLI finds the server and the
# bootstrap admin token through WARDEN_DATA_DIR.
if [ "$SKIP_WARDEN" != 1 ]; then
    WARDEN_DIR=$WORK/warden
    mkdir -p "$WARDEN_DIR"
    export WARDEN_DATA_DIR=$WARDEN_DIR/data
    API_PORT=$(free_port)
    WARDEN_PG_PORT=$(free_port)
    (cd "$WARDEN_DIR" && WARDEN_API_ADDR=127.0.0.1:$API_PORT \
        WARDEN_HTTP_ADDR=127.0.0.1:$(free_port) WARDEN_POSTGRES_ADDR=127.0.0.1:$WARDEN_PG_PORT \
        exec "$WARDEN" serve --data-dir "$WARDEN_DATA_DIR" >"$WARDEN_DIR/out" 2>"$WARDEN_DIR/err") &
    WARDEN_PID=$!
    PIDS+=($WARDEN_PID)
    export WARDEN_URL=http://127.0.0.1:$API_PORT
    for _ in $(seq 1 100); do
        [ -s "$WARDEN_DATA_DIR/admin-token" ] && curl -sf -o /dev/null "$WARDEN_URL/healthz" && break
        kill -0 "$WARDEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    curl -sf -o /dev/null "$WARDEN_URL/healthz" ||
        { echo "warden did not start:" >&2; cat "$WARDEN_DIR/err" >&2; exit 1; }
    cli() { # the Warden CLI against that server; on failure, says why and exits
        if ! "$WARDEN" "$@" 2>"$WARDEN_DIR/cli-err"; then
            echo "warden $* failed:" >&2
            cat "$WARDEN_DIR/cli-err" >&2
            exit 1
        fi
    }
    printf 'postgres:unused\n' >"$WARDEN_DIR/upstream-login"
    # Plaintext upstream, as pgbouncer's: the local server trusts loopback.
    cli target add benchdb --kind postgres --upstream "postgres://$PG_HOST:$PG_PORT/$DB?sslmode=disable" \
        --basic-auth-file "$WARDEN_DIR/upstream-login" >/dev/null
    cli account create bench --owner bench@example.com --purpose "pg gateway benchmark" >/dev/null
    KEY=$(cli key create bench)
    cli grant add bench benchdb --allow read >/dev/null
    PGPASSWORD=$KEY wait_sql warden "$WARDEN_PG_PORT" bench benchdb "$BRANCHES" 10
fi

declare -A TPS LATENCY
# Connection parameters per target: port user dbname [password].
connection() {
    case $1 in
        direct) echo "$PG_PORT $PG_USER $DB" ;;
        pgbouncer) echo "$PGBOUNCER_PORT $PG_USER $DB" ;;
        warden) echo "$WARDEN_PG_PORT bench benchdb $KEY" ;;
    esac
}

pgbench_run() { # out target mode clients seconds
    local out=$1 target=$2 mode=$3 c=$4 t=$5 port user dbname password
    read -r port user dbname password <<<"$(connection "$target")"
    if ! PGPASSWORD=$password PGSSLMODE=disable pgbench -n -S -M "$mode" -c "$c" \
        -j $((c < THREADS ? c : THREADS)) -T "$t" -h 127.0.0.1 -p "$port" -U "$user" \
        "$dbname" >"$out" 2>&1; then
        echo "pgbench -M $mode -c $c against $target failed:" >&2
        cat "$out" >&2
        exit 1
    fi
}

measure() { # target mode clients
    local target=$1 mode=$2 c=$3
    local out=$WORK/pgbench-$target-$mode-c$c
    # Warm up caches and the gateway, then measure.
    pgbench_run "$out.warmup" "$target" "$mode" "$c" 2
    pgbench_run "$out" "$target" "$mode" "$c" "$SECONDS_EACH"
    TPS[$target-$mode-$c]=$(awk '/^tps = .*without initial connection time/ {printf "%.0f", $3}' "$out")
    LATENCY[$target-$mode-$c]=$(awk '/^latency average = / {printf "%.3f", $4}' "$out")
}

ratio() { # a b, or - when either is missing
    if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}

echo "PostgreSQL gateway benchmark: $(nproc) cores (load average before: $(cut -d" " -f1-3 /proc/loadavg)), $(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$DB" -XtAc 'SHOW server_version' | sed "s/ .*//; s/^/PostgreSQL /"), $(pgbouncer --version | head -1), pgbench -S -s 10 -j $THREADS -T $SECONDS_EACH per run${WARDEN:+, Warden on SQLite}"
echo
for mode in "${MODES[@]}"; do
    for c in "${CLIENTS[@]}"; do
        # Targets interleaved per configuration, so drift in machine load hits all alike.
        for target in "${TARGETS[@]}"; do
            measure "$target" "$mode" "$c"
        done
    done
done

printf '%-8s %7s %9s %9s %9s %8s %8s %10s %10s %10s\n' mode clients 'direct' 'pgbouncer' 'warden' \
    'w/pgb' 'w/direct' 'direct' 'pgbouncer' 'warden'
printf '%-8s %7s %9s %9s %9s %8s %8s %10s %10s %10s\n' '' '' tps tps tps tps tps 'lat ms' 'lat ms' 'lat ms'
for mode in "${MODES[@]}"; do
    for c in "${CLIENTS[@]}"; do
        d=$mode-$c
        printf '%-8s %7s %9s %9s %9s %8s %8s %10s %10s %10s\n' "$mode" "$c" \
            "${TPS[direct-$d]}" "${TPS[pgbouncer-$d]}" "${TPS[warden-$d]:--}" \
            "$(ratio "${TPS[warden-$d]:-}" "${TPS[pgbouncer-$d]}")" \
            "$(ratio "${TPS[warden-$d]:-}" "${TPS[direct-$d]}")" \
            "${LATENCY[direct-$d]}" "${LATENCY[pgbouncer-$d]}" "${LATENCY[warden-$d]:--}"
    done
done
[ "$SKIP_WARDEN" != 1 ] || echo "(warden skipped: BENCH_SKIP_WARDEN=1)"
