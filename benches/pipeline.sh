#!/usr/bin/env bash
# The pipeline end to end on the embedded default (and on PostgreSQL when GLUELESS_BENCH_PG is a
# postgres:// URL): one large file, then a burst of small files, through `glueless run --once`.
#
#   cargo build --release --bin glueless
#   GLUELESS_BIN=target/release/glueless benches/pipeline.sh [ROWS] [SMALL_FILES]
#
# Prints wall-clock seconds per phase, rows/s, and the peak RSS of the run (from /usr/bin/time
# when present). Data comes from ../shared/bench/gen_orders.py (seeded, so runs compare).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
SMALL="${2:-200}"
BIN="${GLUELESS_BIN:-target/release/glueless}"
GEN="../shared/bench/gen_orders.py"
WORK="$(mktemp -d -t glueless-pipeline-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/schemas" "$WORK/lake/landing/orders/small"
cp schemas/orders.toml "$WORK/schemas/"
printf '[lake]\nurl = "lake"\n[run]\nsettle_ms = 0\nbatch_max_wait_ms = 0\n' > "$WORK/glueless.toml"
python3 "$GEN" --rows "$ROWS" --out "$WORK/big.csv" --seed 7 > /dev/null 2>&1
python3 "$GEN" --rows 1000 --out "$WORK/small.csv" --seed 8 > /dev/null 2>&1
for i in $(seq 1 "$SMALL"); do
  # Each small file gets its own order ids so every file adds rows.
  awk -F, -v off="$i" 'NR == 1 { print; next } $1 ~ /^[0-9]+$/ { $1 = off "000" $1 } { print }' OFS=, "$WORK/small.csv" \
    > "$WORK/lake/landing/orders/small/part-$i.csv"
done

run() { # label, extra env...
  local label="$1"; shift
  local start end
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    env "$@" /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" run --once --quiet --config "$WORK/glueless.toml" --format json > "$WORK/out.json"
  else
    env "$@" "$BIN" run --once --quiet --config "$WORK/glueless.toml" --format json > "$WORK/out.json"
  fi
  end=$(date +%s.%N)
  python3 - "$label" "$start" "$end" "$WORK/out.json" "$WORK/rss" <<'PY'
import json, sys, os
label, start, end, out, rss = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
v = json.load(open(out))
rows = sum(f["rows_read"] for f in v["files"])
secs = end - start
peak = open(rss).read().strip() + " kB" if os.path.exists(rss) else "n/a"
print(f"{label:<34} {len(v['files']):>5} files {rows:>10} rows {secs:8.2f} s {rows/secs:>12,.0f} rows/s  peak RSS {peak}  {v['counts']}")
PY
}

bench() { # warehouse label, env...
  local label="$1"; shift
  rm -rf "$WORK/lake/staging" "$WORK/lake/rejected" "$WORK"/*.db
  mv "$WORK/lake/landing/orders/small" "$WORK/small-parked"
  cp "$WORK/big.csv" "$WORK/lake/landing/orders/big.csv"
  run "$label: one file of $ROWS rows" "$@"
  mv "$WORK/small-parked" "$WORK/lake/landing/orders/small"
  run "$label: $SMALL files of 1000 rows" "$@"
  rm "$WORK/lake/landing/orders/big.csv"
}

bench "sqlite" GLUELESS_X=1
if [ -n "${GLUELESS_BENCH_PG:-}" ]; then
  bench "postgres" GLUELESS__WAREHOUSE__URL="$GLUELESS_BENCH_PG"
fi
