#!/usr/bin/env bash
# The step cache on the quickstart at 1M customers (release build):
#   cold, with the cache (a fresh, empty cache each round: every step runs and is stored)
#   cold, --no-cache (every step runs, nothing stored)       -> the cache's overhead
#   warm, with the cache filled by the cold run              -> a fully cached re-run
# Rounds alternate cold-with / cold-without; medians of wall time.
#
# Usage: bench/cache.sh [ROUNDS] [CUSTOMERS]   (defaults 3, 1000000)
# BASELINE=/path/to/segflow also times that binary (e.g. a build from before the cache,
# with its plugin libraries next to it) in the same rounds.
# Needs: cargo build --release
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=${1:-3}
customers=${2:-1000000}
bin="$root/target/release/segflow"
data=${TMPDIR:-/tmp}/segflow-bench-cache
rm -rf "$data"
mkdir -p "$data"
sed -e "s/customers: 20000/customers: $customers/" "$root/pipelines/quickstart.yaml" > "$data/quickstart.yaml"
# Run from $data: `drift`'s previous run (runs/quickstart/latest) does not exist there,
# so every run does the same work.
cd "$data"

secs() { # command... -> wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$data/last.err" || { cat "$data/last.err"; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

cold=(); nocache=(); warm=(); base=()
baseline=${BASELINE:-}
for i in $(seq "$rounds"); do
  rm -rf "$data/cache" "$data/cold"
  cold+=("$(secs "$bin" run quickstart.yaml --cache-dir "$data/cache" --out "$data/cold")")
  rm -rf "$data/nocache"
  nocache+=("$(secs "$bin" run quickstart.yaml --no-cache --out "$data/nocache")")
  if [ -n "$baseline" ]; then
    rm -rf "$data/base"
    base+=("$(secs "$baseline" run quickstart.yaml --out "$data/base")")
  fi
  rm -rf "$data/warm"
  warm+=("$(secs "$bin" run quickstart.yaml --cache-dir "$data/cache" --out "$data/warm")")
  cached=$(grep -c '"cache_hit": true' "$data/warm/manifest.json" || true)
  echo "round $i: cold+cache ${cold[-1]} s, cold --no-cache ${nocache[-1]} s, warm ${warm[-1]} s ($cached steps cached)"
done
c=$(median "${cold[@]}"); n=$(median "${nocache[@]}"); w=$(median "${warm[@]}")
echo
echo "quickstart, $customers customers, medians of $rounds rounds"
if [ -n "$baseline" ]; then
  b=$(median "${base[@]}")
  printf 'baseline binary          %8.3f s\n' "$b"
fi
printf 'cold, no cache           %8.3f s\n' "$n"
printf 'cold, storing in cache   %8.3f s   overhead %+.1f%% (target < 5%%)\n' "$c" "$(echo "($c - $n) / $n * 100" | bc -l)"
if [ -n "$baseline" ]; then
  printf '                                     %+.1f%% against the baseline binary\n' "$(echo "($c - $b) / $b * 100" | bc -l)"
fi
printf 'warm, fully cached       %8.3f s   %.1f%% of the cold run (target < 5%%)\n' "$w" "$(echo "$w / $n * 100" | bc -l)"
du -sh "$data/cache" | awk '{print "cache size               " $1}'
