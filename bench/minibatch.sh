#!/usr/bin/env bash
# minibatch_kmeans over N rows x 8 features (default 20M), streamed: wall time and peak
# RSS of `segflow run` (Parquet collector -> minibatch_kmeans, assignments written to
# Parquet), then the quality check: the inertia of the fitted centres on a 1M-row sample
# taken from the end of the file (rows the model was not fitted on) against
# scikit-learn's full k-means (Lloyd, k-means++, best of 3) fitted on that sample.
#
# Usage: bench/minibatch.sh [ROWS] [ROUNDS]
# The input, /tmp/bench/feat${ROWS}k.parquet (customer_id + f0..f7), is drawn once as
# ../shared/bench/gen.py features draws (8 blobs in 8-D from seed 42), in 1M-row chunks.
# Needs: cargo build --release, /usr/bin/time, and polars, pyarrow and scikit-learn in a
# venv at $PEERS (default /tmp/peers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
peers=${PEERS:-/tmp/peers}
rows=${1:-20000000}
rounds=${2:-3}
data=/tmp/bench/feat$((rows / 1000))k.parquet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -f "$data" ]; then
  mkdir -p "$(dirname "$data")"
  "$peers/bin/python" - "$rows" "$data" <<'PY'
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(42)
d, k = 8, 8
centers = rng.normal(0, 4, size=(k, d))   # as gen.py features
schema = pa.schema([("customer_id", pa.int64())] + [(f"f{i}", pa.float64()) for i in range(d)])
with pq.ParquetWriter(out, schema) as w:
    for lo in range(0, n, 1_000_000):
        m = min(1_000_000, n - lo)
        lab = rng.integers(0, k, size=m)
        x = centers[lab] + rng.normal(0, 3.0, size=(m, d))
        cols = [pa.array(np.arange(lo + 1, lo + m + 1))] + [pa.array(x[:, i]) for i in range(d)]
        w.write_table(pa.Table.from_arrays(cols, schema=schema))
PY
fi
times=()
for i in $(seq "$rounds"); do
  rm -rf "$work/run"
  SEGFLOW_BENCH_FEATURES="$data" /usr/bin/time -f "%e %M" -o "$work/time" \
    "$root/target/release/segflow" run "$here/pipelines/minibatch_parquet.yaml" --no-cache --out "$work/run" \
    >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  times+=("$(tail -1 "$work/time")")
  echo "round $i: ${times[-1]} (seconds, peak KiB)"
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
st=$(printf '%s\n' "${times[@]}" | cut -d' ' -f1 | median)
sm=$(printf '%s\n' "${times[@]}" | cut -d' ' -f2 | median)
echo "median wall ${st}s, median peak RSS $((sm / 1024)) MiB (target < 2048 MiB) for $rows rows"
"$peers/bin/python" - "$data" "$work/run/steps/km" "$rows" <<'PY'
import json, sys, time, numpy as np, pyarrow.parquet as pq
from sklearn.cluster import KMeans
data, step, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
facts = json.load(open(f"{step}/facts.json"))
facts = facts.get("facts", facts)
model = pq.read_table(f"{step}/model.parquet").to_pandas()
c = model[[f"f{i}" for i in range(8)]].to_numpy()
f = pq.ParquetFile(data)
m = min(1_000_000, n)
tail = f.read_row_groups(range(f.num_row_groups)) if n <= 1_000_000 else None
if tail is None:
    # The last 1M rows (whole row groups of 1M rows each).
    tail = f.read_row_groups([f.num_row_groups - 1])
x = np.column_stack([tail.column(f"f{i}").to_numpy() for i in range(8)])
def inertia(x, c):
    d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
    return float(np.maximum(d2.min(1), 0).sum())
mb = inertia(x, c)
t = time.perf_counter()
full = KMeans(n_clusters=len(c), n_init=3, random_state=0).fit(x)
print(f"steps {facts.get('n_steps')}, epochs over the {facts.get('fit_rows')} fitted rows {facts.get('n_epochs')}, converged {facts.get('converged')}")
print(f"mean inertia over all {facts.get('rows')} rows (fact): {facts['inertia'] / facts['rows']:.4f}")
print(f"on a 1M sample from the end: mini-batch centres {mb:.6e}, scikit-learn full k-means {full.inertia_:.6e} ({time.perf_counter() - t:.1f}s)")
print(f"ratio {mb / full.inertia_:.4f} (target <= 1.02)")
PY
