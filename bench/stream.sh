#!/usr/bin/env bash
# Streams N customers' synthetic transactions (about 10.6 rows per customer) through the
# pipeline and reports wall time and peak RSS: first the collector alone (rows streamed
# to Parquet), then collector + customer_features (the quickstart at that size).
# Usage: bench/stream.sh [CUSTOMERS]   (default 10,000,000 = ~106M transactions)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${1:-10000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/synthetic.yaml" <<YAML
name: stream_bench
steps:
  - { id: orders, stage: collect, plugin: synthetic, with: { customers: $n, seed: 42 } }
YAML
for what in collector quickstart; do
  if [ "$what" = collector ]; then p="$work/synthetic.yaml"; else p="$root/pipelines/quickstart.yaml"; fi
  /usr/bin/time -f "%e %M" -o "$work/time" "$root/target/release/segflow" run "$p" --no-cache \
    --set "orders.customers=$n" --out "$work/run" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  rows=$(grep -o '"main": [0-9]*' "$work/run/manifest.json" | head -1 | grep -o '[0-9]*')
  read -r secs kib < "$work/time"
  echo "$what: $rows transactions in ${secs}s, peak RSS $((kib / 1024)) MiB"
  rm -rf "$work/run"
done
