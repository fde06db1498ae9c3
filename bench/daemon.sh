#!/usr/bin/env bash
# vtrackd benchmark (bench/daemon.md): a live 854x480 25 fps RTSP camera (GStreamer's RTSP
# server, tests/codec/rtsp_server.py), 3 tracked objects, the realtime profile and the default
# model, vtrackd pinned to one core; then 50 subscribers with masks.
#
# usage: bench/daemon.sh BUILD_DIR [--seconds N] [--subs N]
# Prints one line per scenario; bench/daemon.md has the figures and how they were taken.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/daemon.sh BUILD_DIR [--seconds N] [--subs N]}" && pwd)
shift
. "$(dirname "$0")/camera.sh"
SECONDS_RUN=20
SUBS=50
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --subs) SUBS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

start_camera
start_vtrackd ""
echo "vtrackd pid $DPID on core $CORE_DAEMON; $MODEL; camera rtsp://127.0.0.1:$RTSP_PORT/test 854x480@25"

ticks() { awk '{print $14 + $15}' "$1"; }           # utime + stime, clock ticks
HZ=$(getconf CLK_TCK)

run() { # NAME SUBS [--masks]
    local name=$1 subs=$2 masks=${3:-}
    sleep 2
    local f0 s0 p0 l0 t0 f1 s1 p1 l1 t1 out
    f0=$(stat_field frames); s0=$(stat_field skipped)
    p0=$(ticks /proc/$DPID/stat); l0=$(ticks /proc/$DPID/task/$DPID/stat); t0=$(date +%s.%N)
    out=$(taskset -c "$CORE_OTHER" "$LOAD" "$PORT" --subs "$subs" $masks --warmup 1 \
        --seconds "$SECONDS_RUN")
    f1=$(stat_field frames); s1=$(stat_field skipped)
    p1=$(ticks /proc/$DPID/stat); l1=$(ticks /proc/$DPID/task/$DPID/stat); t1=$(date +%s.%N)
    awk -v n="$name" -v f="$((f1 - f0))" -v s="$((s1 - s0))" -v p="$((p1 - p0))" \
        -v l="$((l1 - l0))" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v o="$out" 'BEGIN {
        dt = t1 - t0
        printf "%-22s processed %.1f fps, skipped %.1f fps, vtrackd CPU %.0f%%, loop thread CPU %.1f%%, clients %s\n",
            n, f / dt, s / dt, 100 * p / hz / dt, 100 * l / hz / dt, o }'
}
run "1 subscriber" 1
run "1 subscriber, masks" 1 --masks
run "$SUBS subscribers, masks" "$SUBS" --masks
echo "peak RSS: $(grep VmHWM /proc/$DPID/status | awk '{print $2, $3}')"
kill -TERM "$DPID"
wait "$DPID" && echo "vtrackd exit 0"
