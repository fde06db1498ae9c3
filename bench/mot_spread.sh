#!/usr/bin/env bash
# bench/mot_spread.sh - the crossing set scored with every weights file of one recipe: the
# shipped weights/default.safetensors and the five of weights/spread/ (weights/spread/README.md).
# The box-registered result moves by up to 16 AO from one file to another with the same tracker,
# so a change of the tracker is judged on the mean over the six (docs/RESULTS.md, "how much the
# weights decide"). One run per file, one OpenBLAS thread each, as many at once as there are
# cores; prints every file's last line, then the means.
#
# usage: bench/mot_spread.sh [BUILD_DIR] [vtrack eval --mot options...]
#   BUILD_DIR  meson build directory holding cli/vtrack (default: build)
#   options    passed to every run, e.g. --param gate=0.1 or --profile realtime
# Needs $VT_DATA (default ../shared/data) with crossing/ in it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$1
    shift
fi
vtrack="$root/$build/cli/vtrack"
[ -x "$vtrack" ] || vtrack="$build/cli/vtrack"
[ -x "$vtrack" ] || { echo "bench/mot_spread.sh: no $build/cli/vtrack (build first)" >&2; exit 1; }
data=${VT_DATA:-$root/../shared/data}
if [ ! -d "$data/crossing" ]; then
    echo "bench/mot_spread.sh: $data/crossing not found (set VT_DATA)" >&2
    exit 77
fi
files=("$root/weights/default.safetensors" "$root"/weights/spread/*.safetensors)
ncores=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
i=0
for f in "${files[@]}"; do
    core=$((i % ncores))
    taskset -c "$core" "$vtrack" eval --mot "$data/crossing" --quiet --model "$f" "$@" \
        >"$tmp/$i.log" 2>&1 &
    i=$((i + 1))
    if [ $((i % ncores)) -eq 0 ]; then wait; fi
done
wait
status=0
i=0
for f in "${files[@]}"; do
    line=$(tail -n 1 "$tmp/$i.log")
    case $line in
    AO*)
        printf '%-24s %s\n' "$(basename "$f")" "$line"
        echo "$line" >>"$tmp/last"
        ;;
    *) echo "bench/mot_spread.sh: $(basename "$f") failed:" >&2; cat "$tmp/$i.log" >&2; status=1 ;;
    esac
    i=$((i + 1))
done
[ $status = 0 ] || exit $status
# mean of each field over the files (each line is "AO x SR50 y swaps z% IDF1 u IDSW v")
tr -d '%' <"$tmp/last" | awk '
    { for (k = 1; k < NF; k += 2) { s[k] += $(k + 1); name[k] = $k } n++; nf = NF }
    END { printf "%-24s", "mean (" n " files)"
          for (k = 1; k < nf; k += 2) printf " %s %.1f%s", name[k], s[k] / n, name[k] == "swaps" ? "%" : ""
          printf "\n" }'
