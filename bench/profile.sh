#!/usr/bin/env bash
# Side-by-side: segment profiles of 1M customers (6 features, 16 mix columns, 11 RFM
# segments): segflow's `profile` step vs the same groupby in pandas
# (bench/profile_pandas.py: merge, mean/median/std per segment, index, z, mix means,
# lift, sizes, revenue share). Both read the same two Parquet files (the quickstart's
# features and RFM assignments at 1M customers, made once with segflow) and are timed
# as whole processes, alternating A B A B; prints medians of wall time and peak RSS.
#
# Usage: bench/profile.sh [ROUNDS]   (default 5)
# Needs: a release build (cargo build --release), /usr/bin/time, and pandas + pyarrow
# in $PEERS (default /tmp/peers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
peers=${PEERS:-/tmp/peers}
rounds=${1:-5}
data=${TMPDIR:-/tmp}/segflow-bench-profile
bin="$root/target/release/segflow"
mkdir -p "$data"
if [ ! -f "$data/input/steps/segments/assignments.parquet" ]; then
  sed -e 's/customers: 20000/customers: 1000000/' -e 's/^name: quickstart/name: profile_input/' \
    "$root/pipelines/quickstart.yaml" | awk '/^  - id: lifecycle/{exit} {print}' > "$data/input.yaml"
  (cd "$root" && "$bin" run "$data/input.yaml" --out "$data/input" >/dev/null 2>&1)
fi
cat > "$data/profile.yaml" <<YAML
name: profile_bench
steps:
  - { id: f, stage: collect, plugin: parquet, with: { path: $data/input/steps/features/main.parquet }, persist: false }
  - { id: a, stage: collect, plugin: parquet, with: { path: $data/input/steps/segments/assignments.parquet }, persist: false }
  - id: profile
    stage: position
    plugin: profile
    needs: [f, a]
    with:
      features: [recency_days, frequency, monetary_sum, monetary_mean, tenure_days, channel_share_app]
YAML
seg=(); pan=()
for i in $(seq "$rounds"); do
  rm -rf "$data/run"
  /usr/bin/time -f "%e %M" -o "$data/seg.time" "$bin" run "$data/profile.yaml" --no-cache --out "$data/run" >/dev/null 2>&1
  seg+=("$(cat "$data/seg.time")")
  /usr/bin/time -f "%e %M" -o "$data/pan.time" "$peers/bin/python" "$here/profile_pandas.py" "$data/input" >/dev/null
  pan+=("$(cat "$data/pan.time")")
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
st=$(printf '%s\n' "${seg[@]}" | cut -d' ' -f1 | median); sm=$(printf '%s\n' "${seg[@]}" | cut -d' ' -f2 | median)
pt=$(printf '%s\n' "${pan[@]}" | cut -d' ' -f1 | median); pm=$(printf '%s\n' "${pan[@]}" | cut -d' ' -f2 | median)
echo "segflow profile: ${st} s wall, $((sm / 1024)) MiB peak"
echo "pandas groupby:  ${pt} s wall, $((pm / 1024)) MiB peak"
awk -v a="$st" -v b="$pt" 'BEGIN {printf "ratio (segflow / pandas): %.2f\n", a / b}'
