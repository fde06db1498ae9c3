#!/usr/bin/env bash
# bench/train.sh - training throughput of `vtrack train` next to the same step in PyTorch
# (bench/train_torch.py), both on one thread, alternated ROUNDS times in the same run so that
# load from other processes hits both alike; prints every measurement and the medians.
#
# usage: bench/train.sh [BUILD_DIR] [ROUNDS] [STEPS]
#   BUILD_DIR  meson build directory holding cli/vtrack (default: build)
#   ROUNDS     alternations (default 3); STEPS timed steps per measurement (default 8)
# Needs $VT_DATA (default ../shared/data) for one training clip, and /usr/bin/python3 with
# torch for the peer (skipped with a message otherwise).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
rounds=${2:-3}
steps=${3:-8}
vtrack="$root/$build/cli/vtrack"
[ -x "$vtrack" ] || vtrack="$build/cli/vtrack"
data=${VT_DATA:-$root/../shared/data}
clip="$data/train/davis16-bear.mp4"
if [ ! -r "$clip" ]; then
    echo "bench/train.sh: $clip not readable (set VT_DATA)" >&2
    exit 77
fi
have_torch=1
/usr/bin/python3 -c 'import torch' 2>/dev/null || have_torch=0
[ $have_torch = 1 ] || echo "bench/train.sh: no torch under /usr/bin/python3: C figures only" >&2

export OPENBLAS_NUM_THREADS=1
c_fps=() ; t_fps=()
for r in $(seq 1 "$rounds"); do
    for obj in mast; do
        line=$("$vtrack" train --data "$clip" --objective $obj --bench "$steps" --threads 1 \
            --quiet | grep '^train-bench')
        echo "$line"
        c_fps+=("$(sed 's/.*frames_per_s=//' <<<"$line")")
    done
    if [ $have_torch = 1 ]; then
        line=$(/usr/bin/python3 "$root/bench/train_torch.py" --threads 1 --steps "$steps")
        echo "$line"
        t_fps+=("$(sed 's/.*frames_per_s=//' <<<"$line")")
    fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cm=$(median "${c_fps[@]}")
echo "median C: $cm frames/s (batch 8 pairs = 16 frames of 256x256 per step, 1 thread)"
if [ $have_torch = 1 ]; then
    tm=$(median "${t_fps[@]}")
    echo "median PyTorch: $tm frames/s; C / PyTorch = $(awk -v a="$cm" -v b="$tm" \
        'BEGIN {printf "%.2f", a / b}')"
fi
