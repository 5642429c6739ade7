#!/usr/bin/env bash
# Side-by-side: 10M-transaction CSV -> per-customer RFM features.
#   segflow (bench/pipelines/features_csv.yaml)  vs  polars (../shared/bench/rfm_polars.py)
# Alternates the two (A B A B ...) and prints medians of wall time and peak RSS.
#
# Usage: bench/features.sh [ROUNDS] [CSV]
# Needs: a release build (cargo build --release), /usr/bin/time, and a Python venv with
# polars at $PEERS (default /tmp/peers): python3 -m venv /tmp/peers &&
# /tmp/peers/bin/pip install polars numpy pyarrow
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${SEGFLOW_SHARED:-$root/../shared}
peers=${PEERS:-/tmp/peers}
rounds=${1:-5}
csv=${2:-/tmp/bench/tx10m.csv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -f "$csv" ]; then
  mkdir -p "$(dirname "$csv")"
  "$peers/bin/python" "$shared/bench/gen.py" transactions 10000000 "$csv"
fi
seg=()
pol=()
for i in $(seq "$rounds"); do
  rm -rf "$work/run"
  SEGFLOW_BENCH_CSV="$csv" /usr/bin/time -f "%e %M" -o "$work/seg.time" \
    "$root/target/release/segflow" run "$here/pipelines/features_csv.yaml" --out "$work/run" \
    >/dev/null 2>"$work/seg.err" || { cat "$work/seg.err"; exit 1; }
  seg+=("$(tail -1 "$work/seg.time")")
  /usr/bin/time -f "%e %M" -o "$work/pol.time" \
    "$peers/bin/python" "$shared/bench/rfm_polars.py" "$csv" 2025-01-01 "$work/polars.parquet" >/dev/null
  pol+=("$(tail -1 "$work/pol.time")")
  echo "round $i: segflow ${seg[-1]}  polars ${pol[-1]}  (seconds, KiB)"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
st=$(printf '%s\n' "${seg[@]}" | cut -d' ' -f1 | median)
sm=$(printf '%s\n' "${seg[@]}" | cut -d' ' -f2 | median)
pt=$(printf '%s\n' "${pol[@]}" | cut -d' ' -f1 | median)
pm=$(printf '%s\n' "${pol[@]}" | cut -d' ' -f2 | median)
echo "median wall: segflow ${st}s, polars ${pt}s, ratio $(awk "BEGIN {printf \"%.2f\", $st/$pt}")"
echo "median peak RSS: segflow $((sm/1024)) MiB, polars $((pm/1024)) MiB, ratio $(awk "BEGIN {printf \"%.2f\", $sm/$pm}")"
