#!/usr/bin/env bash
# Measures a release build of kefu-relay against the targets in
# docs/benchmarks.md, on this machine, over loopback only.
#
#   cargo build --release -p kefu-relay -p kefu-bench
#   crates/bench/targets.sh [idle|latency|throughput|longpoll|all]
#   RUNS=5 crates/bench/targets.sh throughput   # five runs, NAME-1 … NAME-5
#
# Each run gets a fresh relay with a fresh SQLite file and raised
# per-connection limits. Reports go to $OUT (default ./bench-results), the
# JSON line of each run to $OUT/NAME.json. Every run is bounded in time.
set -euo pipefail

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-bench-results}
PORT=${PORT:-18080}
DURATION=${DURATION:-30s}
# This machine is shared and noisy: one run's p99 says little, several
# runs' spread says more.
RUNS=${RUNS:-1}
WARMUP=${WARMUP:-5s}
RELAY_URL=ws://127.0.0.1:$PORT
mkdir -p "$OUT"
# One relay (or bench) process may hold at most 20,000 open files here.
ulimit -n 20000

relay_pid=
work=

stop_relay() {
    if [ -n "$relay_pid" ]; then
        kill "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
        relay_pid=
    fi
    if [ -n "$work" ]; then
        rm -rf "$work"
        work=
    fi
}
trap stop_relay EXIT

# start_relay AGENTS: a fresh relay with AGENTS agent accounts, their tokens
# in $work/tokens.
start_relay() {
    work=$(mktemp -d)
    local db="sqlite://$work/kefu.db"
    : > "$work/tokens"
    for i in $(seq 1 "$1"); do
        "$BIN/kefu-relay" --database "$db" agent add "bench-$i" 2>/dev/null >> "$work/tokens"
    done
    KEFU_LOG=warn "$BIN/kefu-relay" --database "$db" serve --listen "127.0.0.1:$PORT" \
        --frames-per-second 100000 --frame-burst 100000 \
        --connections-per-ip 100000 --sockets-per-ip 100000 --new-conversations-per-minute 100000 &
    relay_pid=$!
    # Ready, not merely listening: while the store opens, the relay answers
    # every request 503, which the bench would count as failed connections.
    for _ in $(seq 1 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; then
            return
        fi
        sleep 0.1
    done
    echo "the relay did not start" >&2
    exit 1
}

# bench NAME ARGS…: one kefu-bench run, its report kept in $OUT/NAME.txt.
bench() {
    local name=$1$run_suffix
    shift
    echo "== $name: kefu-bench $*" | tee "$OUT/$name.txt"
    local status=0
    "$BIN/kefu-bench" --relay "$RELAY_URL" --json "$@" >> "$OUT/$name.txt" || status=$?
    tail -n 1 "$OUT/$name.txt" > "$OUT/$name.json"
    sed '$d' "$OUT/$name.txt" | tail -n +2
    echo "   exit status $status"
}

idle() {
    start_relay 0
    bench idle --idle --visitors 19000 --duration 60s --relay-pid "$relay_pid"
    stop_relay
}

# Chat runs: agents answer one visitor message in REPLY_EVERY (the targets
# are about visitor → agent; answers are load on top).
REPLY_EVERY=${REPLY_EVERY:-10}

latency() {
    start_relay 10
    bench latency --tokens-file "$work/tokens" --agents 10 --visitors 1000 \
        --rate 1000 --duration "$DURATION" --warmup "$WARMUP" --reply-every "$REPLY_EVERY"
    stop_relay
}

throughput() {
    start_relay 10
    bench throughput --tokens-file "$work/tokens" --agents 10 --visitors 2000 \
        --rate "${RATE:-10000}" --duration "$DURATION" --warmup "$WARMUP" \
        --reply-every "$REPLY_EVERY" --drain 30s
    stop_relay
}

longpoll() {
    start_relay 10
    bench longpoll --tokens-file "$work/tokens" --agents 10 --visitors 12000 \
        --longpoll-share 0.1667 --rate 1000 --duration "$DURATION" --warmup "$WARMUP" \
        --reply-every "$REPLY_EVERY"
    stop_relay
}

# repeat TARGET: the target RUNS times, each run's files named NAME-i.
run_suffix=
repeat() {
    for i in $(seq 1 "$RUNS"); do
        if [ "$RUNS" -gt 1 ]; then run_suffix=-$i; fi
        "$1"
    done
}

case ${1:-all} in
    idle | latency | throughput | longpoll) repeat "$1" ;;
    all) repeat idle; repeat latency; repeat throughput; repeat longpoll ;;
    *) echo "usage: $0 [idle|latency|throughput|longpoll|all]" >&2; exit 2 ;;
esac
