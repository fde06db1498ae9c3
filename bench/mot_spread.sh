#!/usr/bin/env bash
# bench/mot_spread.sh - the crossing set scored with every weights file of one recipe: the
# shipped weights/default.safetensors and the five of weights/spread/ (weights/spread/README.md).
# The box-registered result moves by up to 16 AO from one file to another with the same tracker,
# so a change of the tracker is judged on the mean over the six (docs/RESULTS.md, "how much the
# weights decide"). One run per file, one OpenBLAS thread each, as many at once as there are
# cores; prints every file's last line, then the means, overall and per sequence.
#
# usage: bench/mot_spread.sh [BUILD_DIR] [vtrack eval --mot options...]
#   BUILD_DIR  meson build directory holding cli/vtrack (default: build)
#   options    passed to every run, e.g. --param gate=0.1 or --profile realtime
# Needs $VT_DATA (default ../shared/data) with crossing/ in it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/mot_lib.sh"
mot_setup bench/mot_spread.sh "$@"
files=("$root/weights/default.safetensors" "$root"/weights/spread/*.safetensors)
labels=()
for f in "${files[@]}"; do labels+=("$(basename "$f")"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mot_score bench/mot_spread.sh "$tmp" labels files "${opts[@]}"
mot_mean "mean of the files" <"$tmp/lines"
mot_seq_mean "$tmp" 0 $((${#files[@]} - 1))
