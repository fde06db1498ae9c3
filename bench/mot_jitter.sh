#!/usr/bin/env bash
# bench/mot_jitter.sh - how much the crossing set's result hangs on the exact numbers of the
# weights: weights/default.safetensors is scored as shipped and with its batch-norm running
# statistics moved by s * (A - B), where A and B are `vtrack recalibrate` of it with seeds 1 and
# 2 (so A - B is the statistics' own sampling noise, 0.1-3 % of their size) and s is each of
# +-0.001, +-0.01, +-0.1, +-1 (bench/bn_perturb.py). At s = 0.001 the statistics move by about
# a hundred-thousandth, a few hundred float32 rounding steps. Prints every file's last line,
# then the mean over the eight moved files, overall and per sequence (docs/RESULTS.md, "How
# much the crossing result hangs on the last digits").
#
# A variant chosen because it scored best on these eight copies is flattered by them (it was
# picked on their noise): judge it again on other copies, VT_JITTER_SCALES="0.003 -0.003 0.03
# -0.03 0.3 -0.3 2 -2" (the held-out draw of docs/RESULTS.md), where the chosen tracker scores
# 2.5 AO lower than on the default eight.
#
# usage: [VT_JITTER_SCALES="s ..."] bench/mot_jitter.sh [BUILD_DIR] [vtrack eval --mot options...]
# Needs $VT_DATA (default ../shared/data) with crossing/ and train/ in it, and Debian's
# /usr/bin/python3 with numpy. About 3.5 minutes on two cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/mot_lib.sh"
mot_setup bench/mot_jitter.sh "$@"
if [ ! -d "$data/train" ]; then
    echo "bench/mot_jitter.sh: $data/train not found (set VT_DATA)" >&2
    exit 77
fi
/usr/bin/python3 -c 'import numpy' 2>/dev/null || {
    echo "bench/mot_jitter.sh: /usr/bin/python3 with numpy is needed" >&2
    exit 77
}
base="$root/weights/default.safetensors"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for seed in 1 2; do
    OPENBLAS_NUM_THREADS=1 taskset -c $(((seed - 1) % $(nproc))) "$vtrack" recalibrate --quiet \
        --model "$base" --data "$data/train" --seed "$seed" --out "$tmp/seed$seed.safetensors" &
done
wait
# shellcheck disable=SC2206 # the scales are words
scales=(0 ${VT_JITTER_SCALES:-0.001 -0.001 0.01 -0.01 0.1 -0.1 1 -1})
files=()
labels=()
for s in "${scales[@]}"; do
    /usr/bin/python3 "$root/bench/bn_perturb.py" "$base" "$tmp/seed1.safetensors" \
        "$tmp/seed2.safetensors" "$s" "$tmp/w$s.safetensors" >/dev/null
    files+=("$tmp/w$s.safetensors")
    labels+=("moved by $s")
done
mot_score bench/mot_jitter.sh "$tmp" labels files "${opts[@]}"
tail -n +2 "$tmp/lines" | mot_mean "mean of the moved"
mot_seq_mean "$tmp" 1 $((${#files[@]} - 1))
