#!/usr/bin/env bash
# Side-by-side: k-means fit time, segflow vs scikit-learn, on the same features CSV.
#   segflow: target/release/segflow-bench kmeans CSV K ITERS 1 ALGO
#   peer:    ../shared/bench/kmeans_sklearn.py CSV K ITERS  (KMeans lloyd, k-means++,
#            n_init=1, tol=0, max_iter=ITERS: the same work, no early stop)
# Both time the fit only (k-means++ included, CSV parsing excluded), one fit per process.
# Alternates the two (A B A B ...) and prints the medians and their ratio.
#
# Usage: bench/kmeans.sh [ROUNDS] [CSV] [K] [ITERS] [ALGO]
#   defaults: 7 rounds, /tmp/bench/feat1m.csv (made with gen.py features 1000000 if
#   missing), k=16, 50 iterations, ALGO=lloyd (hamerly, elkan, auto: segflow's bounded
#   iterations, same result; the peer always runs lloyd).
# Needs: cargo build --release -p segflow-bench, and scikit-learn in a venv at $PEERS
# (default /tmp/peers): python3 -m venv /tmp/peers && /tmp/peers/bin/pip install scikit-learn
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${SEGFLOW_SHARED:-$root/../shared}
peers=${PEERS:-/tmp/peers}
rounds=${1:-7}
csv=${2:-/tmp/bench/feat1m.csv}
k=${3:-16}
iters=${4:-50}
algo=${5:-lloyd}
if [ ! -f "$csv" ]; then
  mkdir -p "$(dirname "$csv")"
  "$peers/bin/python" "$shared/bench/gen.py" features 1000000 "$csv"
fi
seg=()
skl=()
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
for i in $(seq "$rounds"); do
  out=$("$root/target/release/segflow-bench" kmeans "$csv" "$k" "$iters" 1 "$algo")
  seg+=("$(echo "$out" | field fit_s)")
  seg_inertia=$(echo "$out" | field inertia)
  seg_iters=$(echo "$out" | field iters)
  out=$("$peers/bin/python" "$shared/bench/kmeans_sklearn.py" "$csv" "$k" "$iters")
  skl+=("$(echo "$out" | field fit_s)")
  skl_inertia=$(echo "$out" | field inertia)
  skl_iters=$(echo "$out" | field iters)
  echo "round $i: segflow ${seg[-1]} s ($seg_iters iterations)  scikit-learn ${skl[-1]} s ($skl_iters iterations)"
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
st=$(printf '%s\n' "${seg[@]}" | median)
pt=$(printf '%s\n' "${skl[@]}" | median)
echo "inertia: segflow $seg_inertia, scikit-learn $skl_inertia (different k-means++ draws)"
echo "median fit: segflow ${st}s ($algo), scikit-learn ${pt}s, ratio $(awk "BEGIN {printf \"%.2f\", $st/$pt}") (target <= 0.5)"
