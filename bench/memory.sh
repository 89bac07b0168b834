#!/usr/bin/env bash
# Peak resident memory and wall time of `predict`, `evaluate` and `train` on the
# California housing data repeated 100x (2,064,000 rows, 189 MB) and 1000x (20,640,000
# rows, 1.9 GB). The big files are generated under $WORK (default /tmp/backprop-memory)
# and deleted at the end unless KEEP=1.
#
#   bench/memory.sh                    # the binary in target/release
#   BACKPROP=/tmp/old/backprop SIZES=2m bench/memory.sh   # an earlier build, 2M rows only
#
# Prints one table row per command: rows, peak RSS (MB, /usr/bin/time -v's "Maximum
# resident set size"), wall seconds and microseconds per row. The model scored is a
# 1-epoch 8-16-1 network trained on the embedded data, and `train` uses `--hidden 16
# --epochs 1`, so that 20M rows finish in a few minutes: what this measures is the data
# path (reading, encoding, writing), not the network.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKPROP=${BACKPROP:-target/release/backprop}
WORK=${WORK:-/tmp/backprop-memory}
SIZES=${SIZES:-"2m 20m"}
COMMANDS=${COMMANDS:-"predict evaluate train"}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -x "$BACKPROP" ] || { echo "no $BACKPROP: cargo build --release first" >&2; exit 2; }
mkdir -p "$WORK"
CSV=data/california_housing/california_housing.csv

make_csv() { # $1 = repetitions, $2 = file
    [ -s "$2" ] && return
    { head -1 "$CSV"; for _ in $(seq "$1"); do tail -n +2 "$CSV"; done; } > "$2.part"
    mv "$2.part" "$2"
}

MODEL=$WORK/model
if [ ! -s "$MODEL/model.safetensors" ]; then
    rm -rf "$MODEL"
    "$BACKPROP" train --hidden 16 --epochs 1 --quiet --out "$MODEL" > /dev/null
fi

# $1 = label, $2 = rows, then the command; prints a table row.
measure() {
    local label=$1 rows=$2 log=$WORK/time.log
    shift 2
    /usr/bin/time -v "$@" > /dev/null 2> "$log" || { cat "$log" >&2; exit 1; }
    local kb wall
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    printf "%-9s %11d %10.0f %9.1f %8.2f\n" "$label" "$rows" "$((kb / 1024))" "$wall" \
        "$(echo "$wall * 1000000 / $rows" | bc -l)"
}

printf "%-9s %11s %10s %9s %8s\n" command rows "peak MB" "wall s" "us/row"
for size in $SIZES; do
    case $size in
        2m) reps=100 ;;
        20m) reps=1000 ;;
        *) echo "unknown size $size (2m or 20m)" >&2; exit 2 ;;
    esac
    file=$WORK/california_$size.csv
    make_csv $reps "$file"
    rows=$((reps * 20640))
    for cmd in $COMMANDS; do
        case $cmd in
            predict) measure predict $rows "$BACKPROP" predict --model "$MODEL" --data "$file" --out "$WORK/pred.csv" ;;
            evaluate) measure evaluate $rows "$BACKPROP" evaluate --model "$MODEL" --data "$file" ;;
            train) measure train $rows "$BACKPROP" train --data "$file" --target MedHouseVal \
                --hidden 16 --epochs 1 --quiet --out "$WORK/run-$size-$$" ;;
        esac
        rm -rf "$WORK/run-$size-$$" "$WORK/pred.csv"
    done
done
[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
