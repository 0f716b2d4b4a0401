#!/bin/bash
# kefu-tui's CPU use, idle and with visitors chatting, each over 60 s.
#
#   crates/bench/tui-cpu.sh [TUI_BINARY] [PORT]
#
# Starts a relay (target/debug/kefu-relay, fresh SQLite file) with agents
# alice and bot, runs kefu-tui as alice in a detached 120x35 tmux session,
# and reads utime+stime and the context switches of all its threads from
# /proc before and after: 60 s with nothing happening, then 60 s of
# kefu-bench (20 visitors, 2 messages a second, bot answering each).
# Needs tmux and bc; build first: cargo build -p kefu-relay -p kefu-tui -p kefu-bench.
set -eu
BIN_DIR=${BIN_DIR:-target/debug}
TUI=${1:-$BIN_DIR/kefu-tui}
PORT=${2:-18931}
DIR=$(mktemp -d)
DB=sqlite://$DIR/kefu.db
"$BIN_DIR/kefu-relay" --database "$DB" migrate >/dev/null 2>&1
ALICE=$("$BIN_DIR/kefu-relay" --database "$DB" agent add alice 2>/dev/null | tail -1)
BOT=$("$BIN_DIR/kefu-relay" --database "$DB" agent add bot 2>/dev/null | tail -1)
"$BIN_DIR/kefu-relay" --database "$DB" serve --listen "127.0.0.1:$PORT" \
    --frames-per-second 1000 --frame-burst 1000 --connections-per-ip 1000 \
    >"$DIR/relay.log" 2>&1 &
RELAY=$!
trap 'tmux kill-session -t tui-cpu-$PORT 2>/dev/null; kill $RELAY 2>/dev/null' EXIT
sleep 2
tmux new-session -d -s "tui-cpu-$PORT" -x 120 -y 35 \
    "$TUI --relay ws://127.0.0.1:$PORT --token $ALICE --log $DIR/tui.log"
sleep 3
PANE=$(tmux list-panes -t "tui-cpu-$PORT" -F '#{pane_pid}')
PID=$(pgrep -P "$PANE" || echo "$PANE")
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }
switches() { cat /proc/"$PID"/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'; }
measure() {
    local t0 w0 t1 w1
    t0=$(ticks); w0=$(switches); sleep 60; t1=$(ticks); w1=$(switches)
    echo "$1: cpu $(echo "scale=2; ($t1-$t0)/$HZ" | bc) s in 60 s, context switches $((w1-w0))"
}
measure "idle"
KEFU_TOKENS=$BOT "$BIN_DIR/kefu-bench" --relay "ws://127.0.0.1:$PORT" --agents 1 \
    --visitors 20 --rate 2 --duration 60s --drain 1s --quiet >"$DIR/bench.log" 2>&1 &
BENCH=$!
measure "20 visitors chatting, 2 msg/s"
wait $BENCH
