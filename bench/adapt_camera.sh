#!/usr/bin/env bash
# bench/adapt_camera.sh - per-camera adaptation in vtrackd (docs/DEPLOYMENT.md, "Per-camera
# adaptation"): does a fine-tuning run on the adaptation thread cost the live tracker its frame
# rate, how long does a run take on the CPU the tracker leaves idle, and what does the check say
# over time. Figures in bench/adapt.md.
#
# usage: bench/adapt_camera.sh [BUILD_DIR] [CAMERA_SECONDS] [SATURATED_SECONDS (each of two)]
#
# Runs of vtrackd pinned to one core (taskset -c ${VT_BENCH_CPU:-0}, OpenBLAS 1 thread, the
# default model) on opencv-doc's vtest.avi (768x576) paced as a camera (looped at its native
# 10 fps), one object:
#   camera:        realtime profile, which keeps up with 10 fps and leaves the core partly idle;
#                  adaptation on with short intervals (a sample every second, a run of 30 steps
#                  every 20 s once 8 samples are in, max_load 100 so that load never holds it
#                  back);
#   saturated-off: accurate profile, which cannot keep up: the tracker is always busy and no CPU
#                  is idle; no adaptation;
#   saturated-on:  the same with adaptation on (a run starts after 6 samples): the tracker's
#                  frame rate against saturated-off's. The two alternate, ${VT_BENCH_REPS:-2}
#                  times each, because this host's speed drifts by more than the effect.
# VT_BENCH_PARTS ("camera saturated" by default) picks the parts.
# `stats` is read every 2 s; each run's log and the stats series stay in $OUT (default
# /tmp/vtrack-adapt-bench). Ends every process it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
CAM_S=${2:-240}
SAT_S=${3:-60}
CPU=${VT_BENCH_CPU:-0}
OUT=${OUT:-/tmp/vtrack-adapt-bench}
VIDEO=/usr/share/doc/opencv-doc/examples/data/vtest.avi
VTRACKD=$BUILD/daemon/vtrackd
VTRACK=$BUILD/cli/vtrack
PY=/usr/bin/python3

[ -r "$VIDEO" ] || { echo "adapt_camera: $VIDEO missing (apt-get install opencv-doc)" >&2; exit 1; }
[ -x "$VTRACKD" ] && [ -x "$VTRACK" ] || { echo "adapt_camera: build $BUILD first" >&2; exit 1; }
mkdir -p "$OUT"

# shellcheck source=one_daemon.sh
. "$ROOT/bench/one_daemon.sh"

# run NAME PROFILE SECONDS ADAPT_JSON ("": adaptation off)
run() {
    local name=$1 profile=$2 secs=$3 adapt=$4 port state cfg extra=""
    port=$(free_port)
    state=$OUT/$name-state
    rm -rf "$state"
    mkdir -p "$state"
    cfg=$OUT/$name.json
    [ -n "$adapt" ] && extra=",\"adapt\":$adapt"
    printf '%s\n' "{\"listen\":\"127.0.0.1:$port\",\"state_dir\":\"$state\",\"log_level\":\"info\",
 \"blas_threads\":1,\"streams\":[{\"name\":\"cam\",\"url\":\"$VIDEO\",\"pacing\":\"camera\",
 \"profile\":\"$profile\",\"objects\":[{\"label\":\"walker\",\"box\":[252,218,32,90],\"frame\":0}]$extra}]}" >"$cfg"
    echo "== $name: $profile, ${secs}s on CPU $CPU" >&2
    OPENBLAS_NUM_THREADS=1 taskset -c "$CPU" "$VTRACKD" --config "$cfg" 2>"$OUT/$name.log" &
    PID=$!
    local start=$SECONDS
    : >"$OUT/$name.stats"
    sleep 2
    while [ $((SECONDS - start)) -lt "$secs" ]; do
        local t out
        t=$($PY -c 'import time; print(time.monotonic())')
        if out=$("$VTRACK" ctl "127.0.0.1:$port" stats 2>/dev/null); then
            printf '%s\t%s\n' "$t" "$out" >>"$OUT/$name.stats"
        fi
        sleep 2
    done
    cleanup
}

PARTS=${VT_BENCH_PARTS:-camera saturated}
REPS=${VT_BENCH_REPS:-2}
NAMES=()
if [[ " $PARTS " == *" camera "* ]]; then
    run camera realtime "$CAM_S" \
        '{"every_s":1,"min_samples":8,"hold":2,"interval_s":20,"steps":30,"batch":4,"max_load":100,"reservoir_mb":32}'
    NAMES+=(camera)
fi
if [[ " $PARTS " == *" saturated "* ]]; then
    for i in $(seq 1 "$REPS"); do
        run "saturated-off-$i" accurate "$SAT_S" ""
        run "saturated-on-$i" accurate "$SAT_S" \
            '{"every_s":0.5,"min_samples":6,"hold":2,"interval_s":3600,"steps":30,"batch":4,"max_load":100,"reservoir_mb":32}'
        NAMES+=("saturated-off-$i" "saturated-on-$i")
    done
fi

$PY - "$OUT" "${NAMES[@]}" <<'PYEOF'
import json, re, statistics, sys
out, names = sys.argv[1], sys.argv[2:]

def series(name):
    rows = []
    for line in open(f"{out}/{name}.stats"):
        t, js = line.split("\t", 1)
        rows.append((float(t), json.loads(js)["stats"]["streams"][0]))
    t0 = rows[0][0] if rows else 0
    return [(t - t0, s) for t, s in rows]

def med(v):
    return statistics.median(v) if v else float("nan")

def running(s):
    return "adapt" in s and s["adapt"]["running"]

for name in names:
    rows = series(name)
    # frames tracked between two readings over the time between them, the first 10 s left out
    run_fps, idle_fps = [], []
    for (t0, a), (t1, b) in zip(rows, rows[1:]):
        if t0 < 10:
            continue
        fps = (b["frames"] - a["frames"]) / (t1 - t0)
        (run_fps if running(a) and running(b) else idle_fps).append(fps)
    last = rows[-1][1]
    print(f"## {name}: {rows[-1][0]:.0f} s, {last['frames']} frames tracked, "
          f"{last['skipped']} skipped, latency {last['latency_ms']} ms (recent mean)")
    print(f"  fps while a run is under way: median {med(run_fps):.2f} over {len(run_fps)} "
          f"intervals of 2 s; otherwise: median {med(idle_fps):.2f} over {len(idle_fps)}")
    if "adapt" not in last:
        continue
    ad = last["adapt"]
    print(f"  runs {ad['runs']} (accepted {ad['accepted']}, rejected {ad['rejected']}, "
          f"failed {ad['failed']}), model {ad['model']}, reservoir {ad['reservoir']['samples']} "
          f"samples / {ad['reservoir']['capacity']}, {ad['reservoir']['bytes']} bytes of "
          f"{ad['reservoir']['budget_bytes']}")
    for line in open(f"{out}/{name}.log"):
        m = re.search(r"adapt: (accepted|rejected) \((\w+) ([0-9.]+) -> ([0-9.]+) on (\d+) "
                      r"held-back (\w+), worst ([-+0-9.]+), loss ([0-9.]+) -> ([0-9.]+), "
                      r"([0-9.]+) s\)", line)
        if m:
            print(f"  {line[11:19]} {m.group(1):8s} {m.group(2)} {m.group(3)} -> {m.group(4)} "
                  f"({m.group(5)} {m.group(6)}, worst {m.group(7)}), loss {m.group(8)} -> "
                  f"{m.group(9)}, {m.group(10)} s")
PYEOF
