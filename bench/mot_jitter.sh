#!/usr/bin/env bash
# bench/mot_jitter.sh - how much the crossing set's result hangs on the exact numbers of the
# weights: weights/default.safetensors is scored as shipped and with its batch-norm running
# statistics moved by s * (A - B), where A and B are `vtrack recalibrate` of it with seeds 1 and
# 2 (so A - B is the statistics' own sampling noise, 0.1-3 % of their size) and s is each of
# +-0.001, +-0.01, +-0.1, +-1 (bench/bn_perturb.py). At s = 0.001 the statistics move by about
# a hundred-thousandth, the size of float rounding. Prints every file's last line, then the
# mean over the eight moved files (docs/RESULTS.md, "How much the crossing result hangs on the
# last digits").
#
# usage: bench/mot_jitter.sh [BUILD_DIR] [vtrack eval --mot options...]
# Needs $VT_DATA (default ../shared/data) with crossing/ and train/ in it, and Debian's
# /usr/bin/python3 with numpy. About 6 minutes on two cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$1
    shift
fi
vtrack="$root/$build/cli/vtrack"
[ -x "$vtrack" ] || vtrack="$build/cli/vtrack"
[ -x "$vtrack" ] || { echo "bench/mot_jitter.sh: no $build/cli/vtrack (build first)" >&2; exit 1; }
data=${VT_DATA:-$root/../shared/data}
if [ ! -d "$data/crossing" ] || [ ! -d "$data/train" ]; then
    echo "bench/mot_jitter.sh: $data/crossing or $data/train not found (set VT_DATA)" >&2
    exit 77
fi
/usr/bin/python3 -c 'import numpy' 2>/dev/null || {
    echo "bench/mot_jitter.sh: /usr/bin/python3 with numpy is needed" >&2
    exit 77
}
base="$root/weights/default.safetensors"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
for seed in 1 2; do
    taskset -c $((seed - 1)) "$vtrack" recalibrate --quiet --model "$base" --data "$data/train" \
        --seed "$seed" --out "$tmp/seed$seed.safetensors" &
done
wait
scales=(0 0.001 -0.001 0.01 -0.01 0.1 -0.1 1 -1)
for s in "${scales[@]}"; do
    /usr/bin/python3 "$root/bench/bn_perturb.py" "$base" "$tmp/seed1.safetensors" \
        "$tmp/seed2.safetensors" "$s" "$tmp/w$s.safetensors" >/dev/null
done
ncores=$(nproc)
i=0
for s in "${scales[@]}"; do
    taskset -c $((i % ncores)) "$vtrack" eval --mot "$data/crossing" --quiet \
        --model "$tmp/w$s.safetensors" "$@" >"$tmp/$i.log" 2>&1 &
    i=$((i + 1))
    if [ $((i % ncores)) -eq 0 ]; then wait; fi
done
wait
status=0
i=0
for s in "${scales[@]}"; do
    line=$(tail -n 1 "$tmp/$i.log")
    case $line in
    AO*)
        printf 'moved by %-7s %s\n' "$s" "$line"
        [ "$s" = 0 ] || echo "$line" >>"$tmp/moved"
        ;;
    *) echo "bench/mot_jitter.sh: s = $s failed:" >&2; cat "$tmp/$i.log" >&2; status=1 ;;
    esac
    i=$((i + 1))
done
[ $status = 0 ] || exit $status
tr -d '%' <"$tmp/moved" | awk '
    { for (k = 1; k < NF; k += 2) { s[k] += $(k + 1); name[k] = $k } n++; nf = NF }
    END { printf "mean of the %d moved  ", n
          for (k = 1; k < nf; k += 2) printf " %s %.1f%s", name[k], s[k] / n, name[k] == "swaps" ? "%" : ""
          printf "\n" }'
