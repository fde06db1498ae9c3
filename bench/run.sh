#!/usr/bin/env bash
# ./dev bench [NAME ...]: the benchmarks whose figures bench/README.md reports.
#   NAME: encoder, track, decode, daemon, mqtt, webview, train, adapt (default: all of them, in
#   that order).
# Every benchmark prints one-thread figures first and times its peer (PyTorch, ffmpeg) in the
# same run. They take minutes each; results are noisy while anything else runs on the machine.
set -euo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR [NAME ...]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VTRACK=$BUILD/cli/vtrack
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(encoder track decode daemon mqtt webview train adapt)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

for name in "${names[@]}"; do
    case $name in
    encoder)
        for threads in 1 2; do
            for arch in r18-s8 mast-r18 compact-s8 lab; do
                say "encoder $arch 854x480, $threads thread(s)"
                "$VTRACK" bench encoder --arch "$arch" --size 854x480 --threads "$threads"
            done
            say "encoder compact-s8 424x240, $threads thread(s)"
            "$VTRACK" bench encoder --arch compact-s8 --size 424x240 --threads "$threads"
        done
        ;;
    track)
        say "tracking per stage, default model, 1 thread"
        "$VTRACK" bench track --threads 1
        say "tracking per stage, lab features, 1 thread"
        "$VTRACK" bench track --model lab --threads 1
        ;;
    decode)
        say "decode + scale, 1 thread, next to ffmpeg"
        "$BUILD/bench/codec/bench_decode" --runs 5 --frames 300
        ;;
    daemon)
        say "vtrackd: live RTSP camera, 3 objects, realtime profile; then 50 subscribers"
        "$ROOT/bench/daemon.sh" "$BUILD"
        ;;
    mqtt)
        say "vtrackd: 10 streams publishing every frame event to a local mosquitto"
        "$ROOT/bench/mqtt.py" "$BUILD"
        ;;
    webview)
        say "vtrackd: live RTSP camera with 0 and 5 web views and a WebSocket viewer that never reads"
        "$ROOT/bench/webview.sh" "$BUILD"
        ;;
    train)
        say "training throughput, 1 thread, next to PyTorch"
        "$ROOT/bench/train.sh" "$BUILD"
        ;;
    adapt)
        say "vtrackd: per-camera adaptation beside a live tracker on one core"
        "$ROOT/bench/adapt_camera.sh" "$BUILD" 240 50
        ;;
    *)
        echo "bench/run.sh: unknown benchmark '$name' (encoder track decode daemon mqtt webview train adapt)" >&2
        exit 2
        ;;
    esac
done
