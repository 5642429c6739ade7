#!/usr/bin/env bash
# Cost of process isolation: the same k-means pipeline (bench/pipelines/kmeans_csv.yaml:
# CSV of 1M rows x 8 features -> kmeans k=16, 50 Lloyd iterations) run three ways,
# alternating (A B C A B C ...):
#   in-process   the default
#   km isolated  `isolation: process` on the kmeans step only (its 1M-row input goes to
#                the child and its outputs come back as Arrow IPC over pipes)
#   --isolate    every step isolated (the collector's output also crosses a pipe)
# Prints the median wall time of each, the kmeans step's own time (manifest duration_ms:
# for an isolated step, process start + IPC both ways + the fit), and the overhead
# ratios (target: isolated / in-process < 1.20).
#
# Usage: bench/isolation.sh [ROUNDS] [CSV]
#   defaults: 5 rounds, /tmp/bench/feat1m.csv (made with gen.py features 1000000 if
#   missing). Needs: cargo build --release -p segflow-cli -p segflow-collect -p segflow-segment
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${SEGFLOW_SHARED:-$root/../shared}
peers=${PEERS:-/tmp/peers}
rounds=${1:-5}
csv=${2:-/tmp/bench/feat1m.csv}
seg="$root/target/release/segflow"
if [ ! -f "$csv" ]; then
  mkdir -p "$(dirname "$csv")"
  "$peers/bin/python" "$shared/bench/gen.py" features 1000000 "$csv"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plain="$here/pipelines/kmeans_csv.yaml"
iso="$tmp/kmeans_isolated.yaml"
sed 's/^    plugin: kmeans$/    plugin: kmeans\n    isolation: process/' "$plain" > "$iso"
grep -q 'isolation: process' "$iso"
export SEGFLOW_BENCH_FEATURES="$csv"

# run NAME PIPELINE [FLAGS...]: wall seconds and the km step's duration_ms
run() {
  local name=$1 yaml=$2; shift 2
  local out="$tmp/$name"
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  "$seg" run "$yaml" --no-cache --out "$out" "$@" 2>/dev/null
  t1=$(date +%s.%N)
  local km
  km=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(round([s for s in m['steps'] if s['id']=='km'][0]['duration_ms']/1000, 3))" "$out/manifest.json")
  echo "$(awk "BEGIN {printf \"%.3f\", $t1 - $t0}") $km"
}
declare -a wa wb wc ka kb kc
for i in $(seq "$rounds"); do
  read -r w k < <(run plain "$plain"); wa+=("$w"); ka+=("$k")
  read -r w k < <(run step "$iso"); wb+=("$w"); kb+=("$k")
  read -r w k < <(run all "$plain" --isolate); wc+=("$w"); kc+=("$k")
  echo "round $i: in-process ${wa[-1]}s (km ${ka[-1]}s)  km isolated ${wb[-1]}s (km ${kb[-1]}s)  --isolate ${wc[-1]}s (km ${kc[-1]}s)"
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%s\n' "$@" | median; }
a=$(m "${wa[@]}"); b=$(m "${wb[@]}"); c=$(m "${wc[@]}")
x=$(m "${ka[@]}"); y=$(m "${kb[@]}"); z=$(m "${kc[@]}")
echo "median wall: in-process ${a}s, km isolated ${b}s, --isolate ${c}s"
echo "median km step: in-process ${x}s, isolated ${y}s (process start + Arrow IPC of 1M x 8 in and the assignments out: $(awk "BEGIN {printf \"%.3f\", $y - $x}")s)"
echo "overhead: km isolated $(awk "BEGIN {printf \"%.2f\", $b/$a}")x, --isolate $(awk "BEGIN {printf \"%.2f\", $c/$a}")x (target < 1.20)"
