#!/usr/bin/env bash
# Measures a release build of kefu-relay against the targets in
# docs/benchmarks.md, on this machine, over loopback only.
#
#   cargo build --release -p kefu-relay -p kefu-bench
#   crates/bench/targets.sh [idle|latency|throughput|longpoll|all]
#   crates/bench/targets.sh [symmetric|burst|cluster]
#   crates/bench/targets.sh [abuse|uploads]
#   ATTACKERS_NICE=19 crates/bench/targets.sh abuse   # attackers as a niced process
#   ATTACKERS_NICE=idle crates/bench/targets.sh abuse # … or as an idle-class one
#   RUNS=5 crates/bench/targets.sh throughput   # five runs, NAME-1 … NAME-5
#   SEARCH_INDEX=off crates/bench/targets.sh symmetric   # without search indexing
#
# Each run gets a fresh relay with a fresh SQLite file (cluster: a fresh
# PostgreSQL database) at the relay's default settings except the
# per-connection frame rate and the per-IP limits, which a load generator on
# a few loopback addresses would hit at once. Reports go to $OUT (default
# ./bench-results), the JSON line of each run to $OUT/NAME.json. Every run
# is bounded in time.
set -euo pipefail

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-bench-results}
PORT=${PORT:-18080}
DURATION=${DURATION:-30s}
# This machine is shared and noisy: one run's p99 says little, several
# runs' spread says more.
RUNS=${RUNS:-1}
WARMUP=${WARMUP:-5s}
# The reference relay (kefu-reference-relay), run after kefu with the same
# bench arguments so that each run has its ceiling on the same machine.
REF_PORT=${REF_PORT:-18090}
# The PostgreSQL server for cluster runs; each run makes its own database.
PG=${PG:-postgres://postgres@127.0.0.1:5432}
relay_urls=
mkdir -p "$OUT"
# One relay (or bench) process may hold at most 20,000 open files here.
ulimit -n 20000

relay_pid=
relay_pids=()
work=
pg_database=

stop_relay() {
    for pid in "${relay_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    relay_pids=()
    relay_pid=
    if [ -n "$pg_database" ]; then
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" || true
        pg_database=
    fi
    if [ -n "$work" ]; then
        rm -rf "$work"
        work=
    fi
}
trap stop_relay EXIT

# add_agents DATABASE COUNT: agent accounts, their tokens in $work/tokens.
add_agents() {
    : > "$work/tokens"
    for i in $(seq 1 "$2"); do
        "$BIN/kefu-relay" --database "$1" agent add "bench-$i" 2>/dev/null >> "$work/tokens"
    done
}

# The limits raised for a load generator: per connection (frames per second
# and burst) and per IP address (connections, sockets, new conversations a
# minute); everything else, the outbound queue included, is the default.
# The abuse run keeps the per-IP ones at their defaults; uploads add theirs.
PER_CONNECTION_LIMITS=(--frames-per-second 100000 --frame-burst 100000)
PER_IP_LIMITS=(--connections-per-ip 100000 --sockets-per-ip 100000
    --new-conversations-per-minute 100000)
relay_limits=("${PER_CONNECTION_LIMITS[@]}" "${PER_IP_LIMITS[@]}")

# launch_relay DATABASE PORT: one relay on DATABASE with $relay_limits,
# added to relay_urls once ready.
launch_relay() {
    KEFU_LOG=warn "$BIN/kefu-relay" --database "$1" serve --listen "127.0.0.1:$2" \
        "${relay_limits[@]}" &
    relay_pids+=($!)
    relay_pid=${relay_pids[0]}
    # Ready, not merely listening: while the store opens, the relay answers
    # every request 503, which the bench would count as failed connections.
    for _ in $(seq 1 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$2/readyz"; then
            relay_urls=${relay_urls:+$relay_urls,}ws://127.0.0.1:$2
            return
        fi
        sleep 0.1
    done
    echo "the relay did not start" >&2
    exit 1
}

# start_relay AGENTS: a fresh relay on a fresh SQLite file with AGENTS agent
# accounts, their tokens in $work/tokens.
start_relay() {
    work=$(mktemp -d)
    relay_urls=
    local db="sqlite://$work/kefu.db"
    add_agents "$db" "$1"
    # SEARCH_INDEX=off queues nothing for search (the schema is made by
    # now), to weigh what indexing costs each write; such a relay finds
    # nothing new. The writer queues each message in the search backlog
    # (migration 0017; a trigger did before, dropped here for older
    # builds), which becomes a view that takes its inserts and keeps none.
    if [ "${SEARCH_INDEX:-on}" = off ]; then
        python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript("""
            DROP TRIGGER IF EXISTS message_search_insert;
            DROP TRIGGER IF EXISTS message_search_backlog_insert;
            DROP TABLE IF EXISTS message_search_backlog;
            CREATE VIEW message_search_backlog (id, conversation_id, seq) AS
                SELECT 0, NULL, 0 WHERE 0;
            CREATE TRIGGER message_search_backlog_discard
                INSTEAD OF INSERT ON message_search_backlog BEGIN SELECT 0; END;""")' "$work/kefu.db"
    fi
    launch_relay "$db" "$PORT"
}

# start_cluster AGENTS RELAYS: RELAYS relays on one fresh PostgreSQL
# database, on PORT, PORT+1…
start_cluster() {
    work=$(mktemp -d)
    relay_urls=
    pg_database=kefu_bench_$$_$RANDOM
    psql -q "$PG/postgres" -c "CREATE DATABASE $pg_database"
    add_agents "$PG/$pg_database" "$1"
    for i in $(seq 0 $(($2 - 1))); do
        launch_relay "$PG/$pg_database" $((PORT + i))
    done
}

# start_reference AGENTS: the reference relay, with AGENTS made-up tokens
# (it signs any token in).
start_reference() {
    work=$(mktemp -d)
    seq -f "reference-%g" 1 "$1" > "$work/tokens"
    "$BIN/kefu-reference-relay" --listen "127.0.0.1:$REF_PORT" > /dev/null &
    relay_pids+=($!)
    relay_urls=ws://127.0.0.1:$REF_PORT
    for _ in $(seq 1 100); do
        if (exec 3<> "/dev/tcp/127.0.0.1/$REF_PORT") 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    echo "the reference relay did not start" >&2
    exit 1
}

# bench NAME ARGS…: one kefu-bench run, its report kept in $OUT/NAME.txt.
# Its CPU per acked write, split between the relays, this machine's
# PostgreSQL and the bench, goes to $OUT/NAME-cpu.txt (see cpu_report).
bench() {
    local name=$1$run_suffix
    shift
    echo "== $name: kefu-bench $*" | tee "$OUT/$name.txt"
    local status=0
    local before
    before=$(cpu_now)
    "$BIN/kefu-bench" --relay "$relay_urls" --json "$@" >> "$OUT/$name.txt" || status=$?
    local after
    after=$(cpu_now)
    tail -n 1 "$OUT/$name.txt" > "$OUT/$name.json"
    sed '$d' "$OUT/$name.txt" | tail -n +2
    echo "   exit status $status"
    cpu_report "$before" "$after" "$OUT/$name.json" | tee "$OUT/$name-cpu.txt"
}

# cpu_seconds PID…: the user and system CPU seconds of these processes and
# of their children they have reaped (fields 14–17 of /proc/PID/stat,
# counted after the command name, which may hold spaces).
cpu_seconds() {
    local pid
    for pid in "$@"; do
        cat "/proc/$pid/stat" 2>/dev/null || true
    done | awk -v hz="$(getconf CLK_TCK)" '
        { sub(/^.*\) /, ""); ticks += $12 + $13 + $14 + $15 }
        END { printf "%.2f", ticks / hz }'
}

# cpu_now: "RELAYS POSTGRES BENCH" CPU seconds so far. PostgreSQL is every
# local `postgres` process, the postmaster counting its ended backends (the
# whole server: other users of it count too); the bench is this shell with
# its reaped children, the shell itself idle while it waits: the bench, and
# an attackers' process that ended during it (abuse with ATTACKERS_NICE).
cpu_now() {
    # shellcheck disable=SC2046 # one PID a word
    echo "$(cpu_seconds "${relay_pids[@]}") $(cpu_seconds $(pgrep -x postgres)) $(cpu_seconds $$)"
}

# cpu_report BEFORE AFTER JSON: each part's CPU during the run, in all and
# per write the relays acked (none in an idle run).
cpu_report() {
    local writes
    writes=$(jq '(.to_agent.acked // 0) + (.to_visitor.acked // 0)' "$3" 2>/dev/null || echo 0)
    awk -v before="$1" -v after="$2" -v writes="$writes" 'BEGIN {
        split(before, b, " "); split(after, a, " ");
        split("relays postgres bench", part, " ");
        line = "   CPU during the run:";
        for (i = 1; i <= 3; i++) {
            line = line sprintf(" %s %.1f s", part[i], a[i] - b[i]);
            if (writes > 0) line = line sprintf(" (%.0f µs a write)", (a[i] - b[i]) / writes * 1e6);
            if (i < 3) line = line ",";
        }
        print line (writes > 0 ? sprintf("; %d writes acked", writes) : "");
    }'
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

# Symmetric runs: every visitor message answered, so kefu makes two durable
# writes per visitor message; 4 agents carry 250 conversations each.
symmetric_args() {
    echo --tokens-file "$work/tokens" --agents 4 --visitors 1000 --rate "${RATE:-10000}" \
        --duration "$DURATION" --warmup "$WARMUP" --reply-every 1 --drain 30s
}

# compare NAME OTHER [HEAD OTHER_HEAD]: the figures of run NAME next to
# those of run OTHER, and their ratio (NAME / OTHER: above 1 is slower for
# latencies, below 1 is fewer messages for rates); by default kefu against
# the reference relay.
compare() {
    local kefu=$OUT/$1$run_suffix.json reference=$OUT/$2$run_suffix.json
    jq -rn --slurpfile k "$kefu" --slurpfile r "$reference" \
        --arg a "${3:-kefu}" --arg b "${4:-reference}" '
        def row($name; f): [$name, ($k[0] | f), ($r[0] | f),
            (if ($r[0] | f) > 0 then (($k[0] | f) / ($r[0] | f) * 100 | round / 100) else "-" end)];
        (["", $a, $b, "ratio"],
         row("acked visitor msg/s"; .chat.visitor_acked_per_second | round),
         row("visitor → agent p50 ms"; .latency_ms.visitor_to_agent.p50),
         row("visitor → agent p99 ms"; .latency_ms.visitor_to_agent.p99),
         row("agent → visitor p50 ms"; .latency_ms.agent_to_visitor.p50),
         row("agent → visitor p99 ms"; .latency_ms.agent_to_visitor.p99),
         row("lost"; .lost)) | @tsv' | column -t -s $'\t' | tee "$OUT/$1-ratio$run_suffix.txt"
}

symmetric() {
    start_relay 4
    # shellcheck disable=SC2046 # the arguments are words on purpose
    bench symmetric $(symmetric_args)
    stop_relay
    start_reference 4
    # shellcheck disable=SC2046
    bench symmetric-reference $(symmetric_args)
    stop_relay
    compare symmetric symmetric-reference
}

# A burst: 2,000 visitors open their conversations within 2 s (each sends
# every 2 s at 1,000 msg/s) to 4 agents, every message answered; no agent
# may be disconnected and nothing lost.
burst() {
    start_relay 4
    bench burst --tokens-file "$work/tokens" --agents 4 --visitors 2000 --rate 1000 \
        --duration "$DURATION" --reply-every 1 --drain 30s
    jq -r '"agents established \(.agents.established) of \(.agents.wanted); connections dropped: \(.dropped)"' \
        "$OUT/burst$run_suffix.json"
    stop_relay
}

# RELAYS relays (default 2) on one PostgreSQL database, symmetric, visitors
# and agents dealt so that every message crosses relays.
cluster() {
    local relays=${RELAYS:-2}
    start_cluster 4 "$relays"
    # shellcheck disable=SC2046
    bench "cluster-$relays" $(symmetric_args)
    stop_relay
}

# Abuse (issue 14): legitimate visitors chat symmetrically with 4 agents
# while attackers from other addresses hold half-open connections, trickle
# request bodies and spam new conversations; then the same chat without
# attackers, and the two side by side. The relay keeps every per-address
# limit at its default (50 WebSockets, 200 sockets, 20 new conversations a
# minute per address): the legitimate visitors, 200 over the 16 addresses
# 127.0.0.2-17 (13 each), stay under them as an office behind a NAT
# would, and the attackers (ATTACK_ADDRS addresses from 127.0.0.18) get no
# more. Only the per-connection frame rate is raised, for the 4 agents
# answering 50 visitors each; an attacker's connection sends at most two
# frames, so the raise gives it nothing.
abuse_args() {
    echo --tokens-file "$work/tokens" --agents 4 --visitors "${VISITORS:-200}" \
        --source-addrs 16 --rate "${RATE:-200}" --duration "$DURATION" --warmup "$WARMUP" \
        --reply-every 1 --drain 30s
}

attack_args() {
    echo --attack-addrs "${ATTACK_ADDRS:-32}" --half-open "${HALF_OPEN:-8000}" \
        --slow-bodies "${SLOW_BODIES:-400}" --spammers "${SPAMMERS:-32}"
}

# With ATTACKERS_NICE=N the attackers are a process of their own at that
# niceness, standing in for attackers on other machines: on this one they
# would otherwise take the two cores' time from the relay and the
# legitimate clients alike, and the figure would measure the load
# generator as much as the relay. The relay's own work for them (accepts,
# refusals, timeouts) keeps its full priority. They attack from before the
# legitimate clients connect to after their last message is sent.
# ATTACKERS_NICE=idle runs them under SCHED_IDLE (`chrt -i 0`) instead: a
# niced process still takes its small share of a core whenever it is
# runnable, so a relay thread that wakes may wait behind it for a slice;
# an idle-class one runs only on a core nothing else wants, which is
# closer to attackers on machines of their own.
abuse() {
    relay_limits=("${PER_CONNECTION_LIMITS[@]}")
    start_relay 4
    # shellcheck disable=SC2046 # the arguments are words on purpose
    bench abuse-baseline $(abuse_args)
    stop_relay
    start_relay 4
    if [ -n "${ATTACKERS_NICE:-}" ]; then
        local attackers=$OUT/abuse-attackers$run_suffix.txt
        # shellcheck disable=SC2046
        local priority=(nice -n "$ATTACKERS_NICE")
        if [ "$ATTACKERS_NICE" = idle ]; then
            priority=(chrt --idle 0)
        fi
        "${priority[@]}" "$BIN/kefu-bench" --relay "$relay_urls" --quiet \
            --visitors 0 --agents 0 --rate 0 --source-addrs 16 \
            --duration "$(( ${DURATION%s} + ${WARMUP%s} + 10 ))s" --drain 0s \
            $(attack_args) > "$attackers" 2>&1 &
        local attacking=$!
        # shellcheck disable=SC2046
        bench abuse $(abuse_args)
        wait "$attacking" || echo "   the attackers exited with status $?"
        echo "== the attackers, at ${priority[*]}:"
        cat "$attackers"
    else
        # shellcheck disable=SC2046
        bench abuse $(abuse_args) $(attack_args)
    fi
    stop_relay
    relay_limits=("${PER_CONNECTION_LIMITS[@]}" "${PER_IP_LIMITS[@]}")
    compare abuse abuse-baseline attacked baseline
}

# Uploads (issue 18): UPLOADERS visitors (100) upload 1 MiB PNGs back to
# back while 1,000 visitors chat symmetrically at RATE (5,000 msg/s) with 4
# agents; then the same chat without uploads, and the two side by side.
# Besides the load generator's usual raises, the per-uploader limits are
# lifted: uploads_per_minute (default 10) and max_conversation_file_bytes
# (default 100 MiB), which an uploader going back to back passes within
# seconds; max_file_bytes (10 MiB) stays. UPLOAD_PAUSE (0s: back to back)
# is each uploader's pause after an upload's answer.
uploads_args() {
    echo --tokens-file "$work/tokens" --agents 4 --visitors 1000 --rate "${RATE:-5000}" \
        --duration "$DURATION" --warmup "$WARMUP" --reply-every 1 --drain 30s
}

uploads() {
    relay_limits+=(--uploads-per-minute 1000000 --max-conversation-file-bytes 1099511627776)
    start_relay 4
    # shellcheck disable=SC2046
    bench uploads-baseline $(uploads_args)
    stop_relay
    start_relay 4
    # shellcheck disable=SC2046
    bench uploads $(uploads_args) --uploaders "${UPLOADERS:-100}" --upload-bytes 1048576 \
        --upload-pause "${UPLOAD_PAUSE:-0s}"
    stop_relay
    relay_limits=("${PER_CONNECTION_LIMITS[@]}" "${PER_IP_LIMITS[@]}")
    compare uploads uploads-baseline "with uploads" "without"
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
    idle | latency | throughput | longpoll | symmetric | burst | cluster | abuse | uploads)
        repeat "$1" ;;
    all) repeat idle; repeat latency; repeat throughput; repeat longpoll ;;
    *) echo "usage: $0 [idle|latency|throughput|longpoll|symmetric|burst|cluster|abuse|uploads|all]" >&2
       exit 2 ;;
esac
