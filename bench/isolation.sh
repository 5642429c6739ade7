#!/usr/bin/env bash
# Cost of process isolation: the same k-means pipeline (bench/pipelines/kmeans_csv.yaml:
# CSV of 1M rows x 8 features -> kmeans k=16, 50 Lloyd iterations) run three ways,
# alternating (A B C A B C ...):
#   in-process   the default
#   km isolated  `isolation: process` on the kmeans step only (its 1M-row input goes to
#                the child as Arrow IPC through a mapped input file, its outputs come
#                back through a mapped answer file; see segflow_engine::isolate)
#   --isolate    every step isolated (the collector's output also crosses processes)
# The target (isolation adds < 20% to the kmeans step) is read as: the wall time the
# isolated run adds to the whole run (median over the rounds of isolated minus the
# in-process run of the same round), divided by the in-process kmeans step's own
# median duration (manifest duration_ms). The isolated step's own duration_ms is printed too
# but is not comparable: the CSV collector parses ahead on its own threads, and while
# the step's writer thread feeds the pipe that parsing overlaps the step and is charged
# to it rather than to the collector. The manifest's `transfer` (bytes each way, send
# and answer times) is printed for the isolated step.
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

# run NAME PIPELINE [FLAGS...]: wall seconds, the km step's duration_ms and transfer
run() {
  local name=$1 yaml=$2; shift 2
  local out="$tmp/$name"
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  "$seg" run "$yaml" --no-cache --out "$out" "$@" 2>/dev/null
  t1=$(date +%s.%N)
  local km
  km=$(python3 -c "
import json, sys
s = [s for s in json.load(open(sys.argv[1]))['steps'] if s['id'] == 'km'][0]
t = s.get('transfer')
print(round(s['duration_ms'] / 1000, 3), json.dumps(t, separators=(',', ':')) if t else '-')" "$out/manifest.json")
  echo "$(awk "BEGIN {printf \"%.3f\", $t1 - $t0}") $km"
}
declare -a wa wb wc ka kb kc
for i in $(seq "$rounds"); do
  read -r w k _ < <(run plain "$plain"); wa+=("$w"); ka+=("$k")
  read -r w k t < <(run step "$iso"); wb+=("$w"); kb+=("$k"); transfer=$t
  read -r w k _ < <(run all "$plain" --isolate); wc+=("$w"); kc+=("$k")
  echo "round $i: in-process ${wa[-1]}s (km ${ka[-1]}s)  km isolated ${wb[-1]}s (km ${kb[-1]}s)  --isolate ${wc[-1]}s (km ${kc[-1]}s)"
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%s\n' "$@" | median; }
a=$(m "${wa[@]}"); b=$(m "${wb[@]}"); c=$(m "${wc[@]}")
x=$(m "${ka[@]}"); y=$(m "${kb[@]}")
echo "median wall: in-process ${a}s, km isolated ${b}s, --isolate ${c}s"
echo "median km step (duration_ms): in-process ${x}s, isolated ${y}s (not comparable, see above)"
echo "last isolated km transfer: $transfer"
# Paired: each round's isolated run minus the in-process run next to it, so a drift in
# the machine's speed over the rounds cancels out.
declare -a d
for i in "${!wa[@]}"; do d+=("$(awk "BEGIN {printf \"%.3f\", ${wb[$i]} - ${wa[$i]}}")"); done
added=$(m "${d[@]}")
echo "isolation adds ${added}s to the run (median of the rounds' differences; difference of medians $(awk "BEGIN {printf \"%.3f\", $b - $a}")s)"
echo "= $(awk "BEGIN {printf \"%.1f\", 100 * $added / $x}")% of the in-process km step (target < 20%)"
echo "whole run: km isolated $(awk "BEGIN {printf \"%.2f\", $b/$a}")x, --isolate $(awk "BEGIN {printf \"%.2f\", $c/$a}")x"
