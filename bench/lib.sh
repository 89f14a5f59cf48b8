# Shared by the benchmark scripts: sourced, not run.

# The Warden binary to benchmark: $BENCH_WARDEN, or a fresh release build.
warden_binary() {
    if [ -n "${BENCH_WARDEN:-}" ]; then
        echo "$BENCH_WARDEN"
    else
        cargo build --release -q -p warden >&2
        echo "$PWD/target/release/warden"
    fi
}

# A port nothing listens on (bash's /dev/tcp fails to connect).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Stops every process in the PIDS array and waits for each.
stop_pids() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
