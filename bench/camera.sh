# Sourced by bench/daemon.sh and bench/webview.sh: the programs, cores, scratch folder and
# cleanup, the live camera and the vtrackd they share. The caller sets BUILD.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VTRACKD=$BUILD/daemon/vtrackd
VTRACK=$BUILD/cli/vtrack
LOAD=$BUILD/tests/daemon/daemon_load
CORE_DAEMON=${VT_BENCH_CORE:-0}
CORE_OTHER=${VT_BENCH_OTHER_CORE:-1}

# TMP, a scratch folder, and PIDS, the processes to stop: both go at exit.
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    exec 4>&- 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# A field of the daemon's stats (the first with that name).
stat_field() { "$VTRACK" ctl "127.0.0.1:$PORT" stats | grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The camera: 854x480 at 25 fps, H.264 (GStreamer's RTSP server), on the other core. It exits
# when its stdin (a fifo held open on descriptor 4, which the caller's cleanup closes) closes.
# Sets RTSP_PORT.
start_camera() {
    mkfifo "$TMP/hold"
    taskset -c "$CORE_OTHER" /usr/bin/python3 "$ROOT/tests/codec/rtsp_server.py" \
        --width 854 --height 480 --fps 25 <"$TMP/hold" >"$TMP/rtsp.port" &
    PIDS+=($!)
    exec 4>"$TMP/hold"
    for _ in $(seq 100); do [ -s "$TMP/rtsp.port" ] && break; sleep 0.1; done
    read -r RTSP_PORT <"$TMP/rtsp.port"
}

# vtrackd on core CORE_DAEMON with the camera as stream "cam" (live, realtime, mast, three
# objects), plus the top-level fields $1 (JSON members ending in a comma, or ""). Waits until
# the stream is up. Sets PORT, DPID and MODEL.
start_vtrackd() {
    PORT=$(free_port)
    cat >"$TMP/vtrackd.json" <<JSON
{"listen": "127.0.0.1:$PORT", "log_level": "info", "blas_threads": 1, $1
 "streams": [{"name": "cam", "url": "rtsp://127.0.0.1:$RTSP_PORT/test", "pacing": "live",
              "profile": "realtime", "tracker": "mast",
              "objects": [{"label": "a", "box": [100, 100, 80, 80]},
                          {"label": "b", "box": [400, 200, 80, 80]},
                          {"label": "c", "box": [600, 300, 120, 100]}]}]}
JSON
    taskset -c "$CORE_DAEMON" "$VTRACKD" --config "$TMP/vtrackd.json" 2>"$TMP/vtrackd.log" &
    DPID=$!
    PIDS+=("$DPID")
    for _ in $(seq 100); do
        "$VTRACK" ctl "127.0.0.1:$PORT" list 2>/dev/null | grep -q '"state":"up"' && break
        sleep 0.2
    done
    MODEL=$(grep -o "model: .*" "$TMP/vtrackd.log" | head -1 || true)
}
