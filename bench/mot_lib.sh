# bench/mot_lib.sh - what bench/mot_spread.sh and bench/mot_jitter.sh share; sourced, not run.
# Both score the crossing set (`vtrack eval --mot`) with several weights files, one run per
# file, one OpenBLAS thread each, as many at once as there are cores, and print each file's
# last line and the mean of every field.

# mot_setup SCRIPT [BUILD_DIR] [eval options...]: sets $vtrack (BUILD_DIR/cli/vtrack, default
# build, under the source root or as given), $data ($VT_DATA, default ../shared/data) and the
# array $opts (the eval options); exits 1 without the binary, 77 without the crossing set.
mot_setup() {
    local script=$1 build=build
    shift
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
        build=$1
        shift
    fi
    opts=("$@")
    vtrack="$root/$build/cli/vtrack"
    [ -x "$vtrack" ] || vtrack="$build/cli/vtrack"
    [ -x "$vtrack" ] || { echo "$script: no $build/cli/vtrack (build first)" >&2; exit 1; }
    data=${VT_DATA:-$root/../shared/data}
    if [ ! -d "$data/crossing" ]; then
        echo "$script: $data/crossing not found (set VT_DATA)" >&2
        exit 77
    fi
}

# mot_score SCRIPT TMP LABELS FILES [eval options...]: LABELS and FILES name two arrays of the
# same length. Scores every file, prints "LABEL  AO ... IDSW n" per file in order, and leaves
# the lines in TMP/lines; returns 1 (after the failing run's output) if a run failed.
mot_score() {
    local script=$1 tmp=$2
    local -n labels_=$3 files_=$4
    shift 4
    local ncores i=0 status=0 line
    ncores=$(nproc)
    export OPENBLAS_NUM_THREADS=1
    for f in "${files_[@]}"; do
        taskset -c $((i % ncores)) "$vtrack" eval --mot "$data/crossing" --quiet --model "$f" \
            "$@" >"$tmp/$i.log" 2>&1 &
        i=$((i + 1))
        if [ $((i % ncores)) -eq 0 ]; then wait; fi
    done
    wait
    : >"$tmp/lines"
    for ((i = 0; i < ${#files_[@]}; i++)); do
        line=$(tail -n 1 "$tmp/$i.log")
        case $line in
        AO*)
            printf '%-24s %s\n' "${labels_[$i]}" "$line"
            echo "$line" >>"$tmp/lines"
            ;;
        *) echo "$script: ${labels_[$i]} failed:" >&2; cat "$tmp/$i.log" >&2; status=1 ;;
        esac
    done
    return $status
}

# mot_mean LABEL < lines: the mean of each field ("AO x SR50 y swaps z% IDF1 u IDSW v").
mot_mean() {
    tr -d '%' | awk -v label="$1" '
        { for (k = 1; k < NF; k += 2) { s[k] += $(k + 1); name[k] = $k } n++; nf = NF }
        END { printf "%-24s", label " (" n ")"
              for (k = 1; k < nf; k += 2) printf " %s %.1f%s", name[k], s[k] / n, name[k] == "swaps" ? "%" : ""
              printf "\n" }'
}

# mot_seq_mean TMP FIRST LAST: per sequence, the mean AO / SR50 / swap % of runs FIRST..LAST of
# the last mot_score (their tables in TMP/N.log), one line per sequence.
mot_seq_mean() {
    local tmp=$1 i
    for ((i = $2; i <= $3; i++)); do
        awk 'NF == 11 && $1 != "sequence" && $1 != "overall"' "$tmp/$i.log"
    done | awk '
        { if (!($1 in n)) order[k++] = $1; n[$1]++; ao[$1] += $4; sr[$1] += $5; sw[$1] += $7 }
        END { for (j = 0; j < k; j++) { s = order[j]
                  printf "  %-22s AO %.1f SR50 %.1f swaps %.1f%%\n", s, ao[s] / n[s], sr[s] / n[s], sw[s] / n[s] } }'
}
