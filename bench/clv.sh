#!/usr/bin/env bash
# Side-by-side: BG/NBD and Gamma-Gamma fit times, segflow vs lifetimes 0.11.3, on CDNOW.
#   segflow: the `clv_fit_speed` test of crates/segflow-ml/tests/clv_lifetimes.rs
#            (release build; builds the lifetimes summary from the raw file, then times
#            fit_bgnbd and fit_gamma_gamma: the fits alone, not the file or process start)
#   peer:    ../shared/bench/bclv_lifetimes.py FILE (BetaGeoFitter().fit and
#            GammaGammaFitter().fit on the same summary, timed the same way)
# Both use the literature's conventions (calibration ends 1997-09-30, weeks = days / 7,
# same-day purchases merged), one fit of each model per process, alternating A B A B;
# the script prints the medians, their ratios and both sides' parameters.
#
# Inputs: the CDNOW sample (2,357 customers) as it is, and the CDNOW master file
# (23,570 customers). The master has another column layout (no sample index, a header
# line) and 80 transactions of $0.00, which make one repeat customer's mean spend 0 and
# stop lifetimes' Gamma-Gamma fit ("non-positive values in the monetary_value vector");
# so both sides read one converted copy: the master's rows in the sample's layout
# (customer id repeated as the index) without the $0.00 transactions (23,500 customers).
#
# Usage: bench/clv.sh [ROUNDS]   (default 5)
# Needs: the lifetimes venv at $LIFETIMES (default /tmp/lifetimes; see
# ../shared/bench/README.md) and the CDNOW files under ../shared/data/cdnow.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${SEGFLOW_SHARED:-$root/../shared}
lifetimes=${LIFETIMES:-/tmp/lifetimes}
rounds=${1:-5}
work=${TMPDIR:-/tmp}/segflow-bench-clv
mkdir -p "$work"
sample="$shared/data/cdnow/CDNOW_sample.txt"
master="$work/cdnow_master_as_sample.txt"
awk 'NR > 1 && ($4 + 0) > 0 { print " " $1 " " $1 " " $2 "  " $3 "   " $4 }' \
  "$shared/data/cdnow/CDNOW_master.txt" > "$master"

cd "$root"
cargo test --release -q -p segflow-ml --test clv_lifetimes --no-run 2>/dev/null
seg_run() {
  CLV_BENCH_FILE="$1" CLV_BENCH_REPEAT=1 cargo test --release -q -p segflow-ml \
    --test clv_lifetimes -- --ignored --nocapture clv_fit_speed 2>/dev/null | grep fit_s
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk "BEGIN {printf \"%.3f\", $1/$2}"; }

for input in sample master; do
  file=$sample
  [ "$input" = master ] && file=$master
  sb=(); sg=(); lb=(); lg=()
  for i in $(seq "$rounds"); do
    s=$(seg_run "$file")
    sb+=("$(echo "$s" | field bgnbd_fit_s)"); sg+=("$(echo "$s" | field gg_fit_s)")
    l=$("$lifetimes/bin/python" "$shared/bench/bclv_lifetimes.py" "$file")
    lb+=("$(echo "$l" | field bgnbd_fit_s)"); lg+=("$(echo "$l" | field gg_fit_s)")
    echo "$input round $i: BG/NBD segflow ${sb[-1]} s, lifetimes ${lb[-1]} s; Gamma-Gamma segflow ${sg[-1]} s, lifetimes ${lg[-1]} s"
  done
  msb=$(printf '%s\n' "${sb[@]}" | median); mlb=$(printf '%s\n' "${lb[@]}" | median)
  msg=$(printf '%s\n' "${sg[@]}" | median); mlg=$(printf '%s\n' "${lg[@]}" | median)
  echo "$input segflow:   $(echo "$s" | sed 's/bgnbd_fit_s=[^ ]* gg_fit_s=[^ ]* //')"
  echo "$input lifetimes: $(echo "$l" | sed 's/bgnbd_fit_s=[^ ]* gg_fit_s=[^ ]* //')"
  echo "$input median BG/NBD fit: segflow ${msb}s, lifetimes ${mlb}s, ratio $(ratio "$msb" "$mlb") (target <= 0.1)"
  echo "$input median Gamma-Gamma fit: segflow ${msg}s, lifetimes ${mlg}s, ratio $(ratio "$msg" "$mlg") (target <= 0.1)"
done
