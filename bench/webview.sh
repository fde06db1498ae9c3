#!/usr/bin/env bash
# The live view's cost to a live stream (bench/daemon.md, "Web view"): the setup of
# bench/daemon.sh (a live 854x480 25 fps RTSP camera, 3 objects, realtime profile, default
# model, vtrackd pinned to one core) with the HTTP API on; processed fps and event latency with
# 0 viewers, with 5 headless chromium pages showing the live view (one browser, 5 pages, on the
# other core: bench/webview_pages.js; with their lag, drawn minus the frame's server wallclock),
# and with one WebSocket viewer that never reads.
# 0 and 5 alternate (0, 5, 0, 5, ...) in one vtrackd, so background load hits both; the slow
# viewer comes last (its buffers take minutes to fill), measured RUNS times on one connection.
#
# usage: bench/webview.sh BUILD_DIR [--seconds N] [--runs N] [--pages N] [--scenarios "0 pages slow"]
# Prints one JSON line per run, then the median (and range) of each scenario.
set -euo pipefail
USAGE="usage: bench/webview.sh BUILD_DIR [--seconds N] [--runs N] [--pages N] [--scenarios LIST]"
BUILD=$(cd "${1:?$USAGE}" && pwd)
shift
. "$(dirname "$0")/camera.sh"
SECONDS_RUN=20
RUNS=3
PAGES=5
SCENARIOS="0 pages slow"
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --pages) PAGES=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    *) echo "unknown argument $1; $USAGE" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/chromium ] || { echo "bench/webview.sh: needs /usr/bin/chromium" >&2; exit 1; }
[ -d "$ROOT/tests/web/node_modules/puppeteer-core" ] ||
    { echo "bench/webview.sh: no tests/web/node_modules: ./dev setup" >&2; exit 1; }
# the latency probe runs at a real-time priority so that the browsers on its core do not delay
# its reads (it needs a few ms of CPU a second); plain priority where that is not allowed
PRIO=(chrt -f 1)
"${PRIO[@]}" true 2>/dev/null || PRIO=()
trap 'exit 143' TERM INT

start_camera
HPORT=$(free_port)
start_vtrackd "\"http\": {\"listen\": \"127.0.0.1:$HPORT\", \"static_dir\": \"$ROOT/web\"},"
echo "# vtrackd pid $DPID on core $CORE_DAEMON; $MODEL; camera rtsp://127.0.0.1:$RTSP_PORT/test 854x480@25;" \
    "http://127.0.0.1:$HPORT/; browsers and probe (${PRIO[*]:-normal priority}) on core $CORE_OTHER;" \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"

ticks() { awk '{print $14 + $15}' "$1"; }           # utime + stime, clock ticks
metric() { curl -s "http://127.0.0.1:$HPORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
HZ=$(getconf CLK_TCK)

# A WebSocket viewer that connects and never reads (a 4 KiB receive buffer; the server's send
# buffer still takes some seconds of frames, so the run waits until the server replaces one).
slow_viewer() {
    exec /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /ws?stream=cam HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          b"Sec-WebSocket-Version: 13\r\n\r\n")
print("ready", flush=True)
while True:
    time.sleep(3600)
' "$HPORT"
}

alive() { # a crashed vtrackd ends the benchmark with its log's last lines
    kill -0 "$DPID" 2>/dev/null && return 0
    wait "$DPID" || echo "vtrackd exited with status $?; its log ends:" >&2
    tail -n 20 "$TMP/vtrackd.log" >&2
    exit 1
}

SLOW_PID=""
run() { # RUN SCENARIO(0|pages|slow)
    local i=$1 sc=$2 viewers=0 vpid="" vout="" fill=0
    case $sc in
    pages)
        viewers=$PAGES
        taskset -c "$CORE_OTHER" node "$ROOT/bench/webview_pages.js" \
            "http://127.0.0.1:$HPORT/" "$PAGES" >"$TMP/view.out" 2>"$TMP/view.err" &
        vpid=$!
        PIDS+=("$vpid")
        for _ in $(seq 1200); do grep -q ready "$TMP/view.out" && break; alive; sleep 0.1; done
        grep -q ready "$TMP/view.out" || { cat "$TMP/view.err" >&2; exit 1; }
        ;;
    slow)
        viewers=1
        if [ -z "$SLOW_PID" ]; then
            slow_viewer >"$TMP/slow.out" 2>&1 &
            SLOW_PID=$!
            PIDS+=("$SLOW_PID")
            for _ in $(seq 100); do grep -q ready "$TMP/slow.out" && break; sleep 0.1; done
            # measure once the socket's buffers are full and the server replaces the frame it
            # holds: on loopback the kernel lets the server's send buffer grow to tcp_wmem's
            # maximum (4 MiB), minutes of the camera's small JPEGs
            local r0 ts
            r0=$(metric 'vtrack_sink_dropped_total{sink="http"}')
            ts=$(date +%s)
            for _ in $(seq 1200); do
                [ "$(metric 'vtrack_sink_dropped_total{sink="http"}')" -gt "$r0" ] && break
                sleep 0.5
            done
            fill=$(($(date +%s) - ts))
        fi
        ;;
    esac
    sleep 2
    alive
    local f0 s0 p0 l0 d0 t0 f1 s1 p1 l1 d1 t1 out ws
    f0=$(stat_field frames); s0=$(stat_field skipped); d0=$(metric 'vtrack_sink_dropped_total{sink="http"}')
    p0=$(ticks /proc/$DPID/stat); l0=$(ticks /proc/$DPID/task/$DPID/stat); t0=$(date +%s.%N)
    out=$(taskset -c "$CORE_OTHER" ${PRIO[@]+"${PRIO[@]}"} "$LOAD" "$PORT" --subs 1 --warmup 1 \
        --seconds "$SECONDS_RUN")
    f1=$(stat_field frames); s1=$(stat_field skipped); d1=$(metric 'vtrack_sink_dropped_total{sink="http"}')
    p1=$(ticks /proc/$DPID/stat); l1=$(ticks /proc/$DPID/task/$DPID/stat); t1=$(date +%s.%N)
    alive
    ws=$(metric 'vtrack_sink_clients{sink="ws"}')
    if [ -n "$vpid" ]; then
        kill -TERM "$vpid" 2>/dev/null || true
        wait "$vpid" 2>/dev/null || true
        vout=$(grep '^{' "$TMP/view.out" || true)
    fi
    awk -v i="$i" -v sc="$sc" -v v="$viewers" -v ws="$ws" -v f="$((f1 - f0))" -v s="$((s1 - s0))" \
        -v p="$((p1 - p0))" -v l="$((l1 - l0))" -v d="$((d1 - d0))" -v t0="$t0" -v t1="$t1" \
        -v hz="$HZ" -v o="$out" -v vo="${vout:-null}" -v la="$(cut -d' ' -f1 /proc/loadavg)" -v fill="$fill" 'BEGIN {
        dt = t1 - t0
        printf "{\"run\":%d,\"scenario\":\"%s\",\"viewers\":%d,\"ws_clients\":%d,\"processed_fps\":%.2f,\"skipped_fps\":%.2f,\"vtrackd_cpu_pct\":%.1f,\"loop_cpu_pct\":%.2f,\"http_frames_replaced_per_s\":%.2f,\"fill_s\":%d,\"load1\":%s,\"probe\":%s,\"pages\":%s}\n",
            i, sc, v, ws, f / dt, s / dt, 100 * p / hz / dt, 100 * l / hz / dt, d / dt, fill, la, o, vo }'
}

# 0 and pages alternate; the slow viewer, which takes minutes to fill its buffers, is measured
# last, RUNS windows one after the other on the same connection
for i in $(seq "$RUNS"); do
    for sc in $SCENARIOS; do
        [ "$sc" = slow ] && continue
        run "$i" "$sc" >>"$TMP/results"
        tail -n 1 "$TMP/results"
    done
done
if [[ " $SCENARIOS " == *" slow "* ]]; then
    for i in $(seq "$RUNS"); do
        run "$i" slow >>"$TMP/results"
        tail -n 1 "$TMP/results"
    done
fi
/usr/bin/python3 - "$TMP/results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for sc in ("0", "pages", "slow"):
    rs = [r for r in rows if r["scenario"] == sc]
    if not rs:
        continue
    fig = {"processed_fps": [r["processed_fps"] for r in rs],
           # vtrackd's CPU time per processed frame: what a viewer adds (the JPEG) whatever
           # share of its core the host leaves it
           "cpu_ms_per_frame": [10 * r["vtrackd_cpu_pct"] / r["processed_fps"] for r in rs],
           "skipped_fps": [r["skipped_fps"] for r in rs],
           "latency_p50_ms": [r["probe"]["latency_ms"]["p50"] for r in rs],
           "latency_p95_ms": [r["probe"]["latency_ms"]["p95"] for r in rs],
           "loop_cpu_pct": [r["loop_cpu_pct"] for r in rs],
           "http_frames_replaced_per_s": [r["http_frames_replaced_per_s"] for r in rs]}
    if sc == "slow":
        fig["fill_s"] = [r["fill_s"] for r in rs[:1]]
    if sc == "pages":
        fig["page_fps"] = [statistics.median(r["pages"]["frames_per_s"]) for r in rs if r["pages"]]
        # the pages' lag: drawn on the canvas minus the frame's server wallclock, all pages
        fig["page_lag_p50_ms"] = [r["pages"]["lag_ms"]["p50"] for r in rs if r["pages"]]
        fig["page_lag_p95_ms"] = [r["pages"]["lag_ms"]["p95"] for r in rs if r["pages"]]
    print(json.dumps({"median": sc, "viewers": rs[0]["viewers"],
                      **{k: round(statistics.median(v), 2) for k, v in fig.items() if v},
                      "range": {k: [min(v), max(v)] for k, v in fig.items() if v},
                      "dropped_events": sum(r["probe"]["dropped_events"] for r in rs),
                      "seq_gaps": sum(r["probe"]["seq_gaps"] for r in rs)}))
PY
echo "# peak RSS: $(grep VmHWM /proc/$DPID/status | awk '{print $2, $3}'); load $(cut -d' ' -f1-3 /proc/loadavg)"
kill -TERM "$DPID"
wait "$DPID" && echo "# vtrackd exit 0"
