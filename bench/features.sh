#!/usr/bin/env bash
# Side-by-side: 10M-transaction CSV -> per-customer RFM features.
#   segflow (bench/pipelines/features_csv.yaml)  vs  polars (../shared/bench/rfm_polars.py)
# and segflow on the same rows from Parquet (bench/pipelines/features_parquet.yaml; the
# Parquet file is written once from the CSV with pyarrow, next to it).
# Alternates the three (A B C A B C ...) and prints medians of wall time and peak RSS.
#
# Usage: bench/features.sh [ROUNDS] [CSV]
# Needs: a release build (cargo build --release), /usr/bin/time, and a Python venv with
# polars and pyarrow at $PEERS (default /tmp/peers): python3 -m venv /tmp/peers &&
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
parquet=${csv%.csv}.parquet
if [ ! -f "$parquet" ]; then
  "$peers/bin/python" - "$csv" "$parquet" <<'PY'
import sys
import pyarrow as pa, pyarrow.csv as c, pyarrow.parquet as pq
types = {"customer_id": pa.int64(), "date": pa.date32(), "amount": pa.float64()}
t = c.read_csv(sys.argv[1], convert_options=c.ConvertOptions(column_types=types))
pq.write_table(t, sys.argv[2])
PY
fi
seg=()
pol=()
par=()
for i in $(seq "$rounds"); do
  rm -rf "$work/run"
  SEGFLOW_BENCH_CSV="$csv" /usr/bin/time -f "%e %M" -o "$work/seg.time" \
    "$root/target/release/segflow" run "$here/pipelines/features_csv.yaml" --no-cache --out "$work/run" \
    >/dev/null 2>"$work/seg.err" || { cat "$work/seg.err"; exit 1; }
  seg+=("$(tail -1 "$work/seg.time")")
  /usr/bin/time -f "%e %M" -o "$work/pol.time" \
    "$peers/bin/python" "$shared/bench/rfm_polars.py" "$csv" 2025-01-01 "$work/polars.parquet" >/dev/null
  pol+=("$(tail -1 "$work/pol.time")")
  rm -rf "$work/run"
  SEGFLOW_BENCH_PARQUET="$parquet" /usr/bin/time -f "%e %M" -o "$work/par.time" \
    "$root/target/release/segflow" run "$here/pipelines/features_parquet.yaml" --no-cache --out "$work/run" \
    >/dev/null 2>"$work/par.err" || { cat "$work/par.err"; exit 1; }
  par+=("$(tail -1 "$work/par.time")")
  echo "round $i: segflow ${seg[-1]}  polars ${pol[-1]}  segflow-parquet ${par[-1]}  (seconds, KiB)"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
st=$(printf '%s\n' "${seg[@]}" | cut -d' ' -f1 | median)
sm=$(printf '%s\n' "${seg[@]}" | cut -d' ' -f2 | median)
pt=$(printf '%s\n' "${pol[@]}" | cut -d' ' -f1 | median)
pm=$(printf '%s\n' "${pol[@]}" | cut -d' ' -f2 | median)
qt=$(printf '%s\n' "${par[@]}" | cut -d' ' -f1 | median)
qm=$(printf '%s\n' "${par[@]}" | cut -d' ' -f2 | median)
echo "median wall: segflow ${st}s, polars ${pt}s, ratio $(awk "BEGIN {printf \"%.2f\", $st/$pt}")"
echo "median peak RSS: segflow $((sm/1024)) MiB, polars $((pm/1024)) MiB, ratio $(awk "BEGIN {printf \"%.2f\", $sm/$pm}")"
echo "median wall from Parquet: segflow ${qt}s, ratio to polars on CSV $(awk "BEGIN {printf \"%.2f\", $qt/$pt}"), to segflow on CSV $(awk "BEGIN {printf \"%.2f\", $qt/$st}"); peak RSS $((qm/1024)) MiB"
