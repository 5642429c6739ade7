#!/usr/bin/env bash
# Per-customer RFM features of N transactions stored in PostgreSQL, two ways:
#   pull:      postgres (table, streamed through a cursor) -> customer_features (segflow)
#   pushdown:  postgres with `aggregate:` (the server aggregates; one row per customer
#              crosses the network)
# Loads N deterministic rows with generate_series (N/10 customers, two years of dates),
# runs A B A B ... and prints each round and the medians of wall time and peak RSS of
# `segflow run` (the server's own CPU and memory are not in the RSS figure), and the
# ratio of the medians. The pushdown's `partitions` fact tells how it ran.
#
# Usage: bench/postgres.sh [N] [ROUNDS]        (default N=10000000, ROUNDS=3)
# Needs: a release build (cargo build --release), /usr/bin/time, psql, and
# SEGFLOW_PG_DSN; without it, .ci/postgres.sh starts a local server first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${1:-10000000}
rounds=${2:-3}
if [ -z "${SEGFLOW_PG_DSN:-}" ]; then
  # shellcheck source=/dev/null
  . "$root/.ci/postgres.sh"
fi
export PG_DSN="$SEGFLOW_PG_DSN"
if ! command -v psql >/dev/null 2>&1; then
  # Debian keeps psql with the server's binaries (as .ci/postgres.sh finds them).
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/psql" ] && PATH="$d:$PATH"; done
fi
seg="$root/target/release/segflow"
[ -x "$seg" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
customers=$(( n / 10 > 0 ? n / 10 : 1 ))
table=segflow_bench_tx

echo "loading $n transactions of $customers customers into $table ..."
start=$(date +%s.%N)
psql -q -v ON_ERROR_STOP=1 "$SEGFLOW_PG_DSN" <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS $table;
CREATE UNLOGGED TABLE $table (customer_id int8, date date, amount float8);
INSERT INTO $table
SELECT (g * 7919) % $customers,
       DATE '2023-01-01' + ((g * 104729) % 730)::int,
       ((g * 31) % 20000) / 100.0
FROM generate_series(1::int8, $n) g;
ANALYZE $table;
SQL
echo "loaded in $(echo "$(date +%s.%N) - $start" | bc) s"

cat >"$work/pull.yaml" <<YAML
name: pg_bench_pull
steps:
  - id: tx
    stage: collect
    plugin: postgres
    with: { dsn: "\${PG_DSN}", table: $table }
  - id: features
    stage: clean
    plugin: customer_features
    needs: [tx]
    with: { key: customer_id, date: date, amount: amount, as_of: "2025-01-01" }
YAML
cat >"$work/pushdown.yaml" <<YAML
name: pg_bench_pushdown
steps:
  - id: features
    stage: collect
    plugin: postgres
    with:
      dsn: "\${PG_DSN}"
      table: $table
      aggregate: { key: customer_id, date: date, amount: amount, as_of: "2025-01-01" }
YAML

one() { # name -> "seconds KiB"
  rm -rf "$work/out-$1"
  /usr/bin/time -f "%e %M" -o "$work/$1.time" "$seg" run "$work/$1.yaml" --no-cache \
    --out "$work/out-$1" >/dev/null 2>"$work/$1.err" || { cat "$work/$1.err" >&2; exit 1; }
  tail -1 "$work/$1.time"
}
pull=()
push=()
for i in $(seq "$rounds"); do
  pull+=("$(one pull)")
  push+=("$(one pushdown)")
  echo "round $i: pull ${pull[-1]}  pushdown ${push[-1]}  (seconds, KiB)"
done
rows_pull=$(grep -o '"customers": *[0-9]*' "$work/out-pull/steps/features/facts.json" | grep -o '[0-9]*$')
rows_push=$(grep -o '"customers": *[0-9]*' "$work/out-pushdown/steps/features/facts.json" | grep -o '[0-9]*$')
[ "$rows_pull" = "$rows_push" ] || { echo "customer counts differ: $rows_pull vs $rows_push" >&2; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pt=$(printf '%s\n' "${pull[@]}" | cut -d' ' -f1 | median)
pm=$(printf '%s\n' "${pull[@]}" | cut -d' ' -f2 | median)
qt=$(printf '%s\n' "${push[@]}" | cut -d' ' -f1 | median)
qm=$(printf '%s\n' "${push[@]}" | cut -d' ' -f2 | median)
echo "N=$n customers=$rows_pull rounds=$rounds"
echo "pull + customer_features: median ${pt} s, peak RSS $((pm / 1024)) MiB"
parts=$(grep -o '"partitions": *[0-9]*' "$work/out-pushdown/steps/features/facts.json" | grep -o '[0-9]*$')
echo "aggregate pushdown:       median ${qt} s, peak RSS $((qm / 1024)) MiB (partitions: $parts)"
echo "pull / pushdown: $(echo "scale=2; $pt / $qt" | bc)"
