#!/usr/bin/env bash
# The pipeline end to end on the embedded default (and on PostgreSQL when GLUELESS_BENCH_PG is a
# postgres:// URL): one large file, then a burst of small files, through `glueless run --once`;
# then, when MANY_FILES > 0, a burst of that many small files; then the latency of the service
# (`glueless run` with the default settings: a 1 MB file copied into the landing folder until
# its rows are in the warehouse, median of 20); then `glueless status` over a state store of
# 100,000 records (median of 5).
#
#   cargo build --release --bin glueless
#   GLUELESS_BIN=target/release/glueless benches/pipeline.sh [ROWS] [SMALL_FILES] [MANY_FILES]
#
# Prints wall-clock seconds per phase, rows/s, and the peak RSS of the run (from /usr/bin/time
# when present). Data comes from ../shared/bench/gen_orders.py (seeded, so runs compare).
# GLUELESS_BENCH_ONLY=small|latency|status runs only that part (`small`: the two bursts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
SMALL="${2:-200}"
MANY="${3:-0}"
ONLY="${GLUELESS_BENCH_ONLY:-}"
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
  # Each small file gets its own order ids so every file adds rows (off * 1,000,000 + line: the
  # earlier `off "000" id` passed a BIGINT from the 923rd file on, and those rows were rejected).
  awk -F, -v off="$i" 'NR == 1 { print; next } $1 ~ /^[0-9]+$/ { $1 = sprintf("%d", off * 1000000 + NR) } { print }' OFS=, "$WORK/small.csv" \
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

# A fresh warehouse and state store for the next phase (the PostgreSQL ledger would otherwise
# call the files already loaded).
fresh() { # warehouse label
  rm -rf "$WORK/lake/staging" "$WORK/lake/rejected" "$WORK"/*.db
  if [ "$1" = postgres ]; then psql -q "$GLUELESS_BENCH_PG" -c 'DROP TABLE IF EXISTS fact_orders, glueless_loads'; fi
}

# A burst of MANY small files (made in one go: 10,000 awk runs would take longer than the load).
many() { # warehouse label, env...
  local label="$1"; shift
  fresh "$label"
  mv "$WORK/lake/landing/orders" "$WORK/parked"
  mkdir -p "$WORK/lake/landing/orders/many"
  python3 - "$WORK/small.csv" "$WORK/lake/landing/orders/many" "$MANY" <<'PY'
import sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
header, *rows = open(src).read().splitlines()
# Each file its own order ids (file i, row k: i * 1,000,000 + k), within a BIGINT for any n.
for i in range(1, n + 1):
    with open(f"{out}/part-{i}.csv", "w") as f:
        f.write(header + "\n")
        for k, r in enumerate(rows):
            first, rest = r.split(",", 1)
            f.write((str(i * 1_000_000 + k) if first.isdigit() else first) + "," + rest + "\n")
PY
  run "$label: $MANY files of 1000 rows" "$@"
  rm -rf "$WORK/lake/landing/orders"
  mv "$WORK/parked" "$WORK/lake/landing/orders"
}

# The service with the default settings (only the lake's place set): a 1 MB file copied into the
# landing folder, until its ledger row (committed with its rows) is in the warehouse; 20 times.
latency() { # warehouse label, env...
  local label="$1"; shift
  local dir="$WORK/latency"
  fresh "$label"
  rm -rf "$dir" && mkdir -p "$dir/schemas" "$dir/lake/landing/orders"
  cp schemas/orders.toml "$dir/schemas/"
  printf '[lake]\nurl = "lake"\n' > "$dir/glueless.toml"
  python3 "$GEN" --rows 10800 --out "$dir/one-mb.csv" --seed 9 > /dev/null 2>&1
  env "$@" python3 - "$label" "$BIN" "$dir" "${GLUELESS_BENCH_PG:-}" <<'PY'
import os, shutil, sqlite3, statistics, subprocess, sys, time
label, binary, d, pg = sys.argv[1:5]
pg = pg if label == "postgres" else ""
svc = subprocess.Popen([binary, "run", "--quiet", "--config", f"{d}/glueless.toml"], cwd=d, stderr=subprocess.DEVNULL)
def loads():
    if pg:
        q = "SELECT count(*) FROM glueless_loads"
        r = subprocess.run(["psql", "-tA", pg, "-c", q], capture_output=True, text=True)
        return int(r.stdout.strip() or 0) if r.returncode == 0 else 0
    try:
        c = sqlite3.connect(f"file:{d}/warehouse.db?mode=ro", uri=True, timeout=5)
        n = c.execute("SELECT count(*) FROM glueless_loads").fetchone()[0]
        c.close()
        return n
    except sqlite3.Error:
        return 0
time.sleep(1.0)  # the service is up and has looked once
header, *rows = open(f"{d}/one-mb.csv").read().splitlines()
times = []
try:
    for i in range(1, 21):
        src = f"{d}/drop-{i}.csv"
        with open(src, "w") as f:
            f.write(header + "\n" + "\n".join(f"{i}00{r}" if r[:1].isdigit() else r for r in rows) + "\n")
        start = time.monotonic()
        shutil.copyfile(src, f"{d}/lake/landing/orders/drop-{i}.csv")
        while loads() < i:
            if time.monotonic() - start > 30:
                sys.exit(f"{label}: drop {i} not loaded within 30 s")
            time.sleep(0.005)
        times.append(time.monotonic() - start)
finally:
    svc.terminate()
    svc.wait()
size = os.path.getsize(f"{d}/drop-1.csv") / 1e6
print(f"{label + ': latency of a ' + format(size, '.1f') + ' MB file':<34} median {statistics.median(times):.2f} s"
      f"  min {min(times):.2f} s  max {max(times):.2f} s  (20 drops, default settings)")
PY
}

# `glueless status` over 100,000 records (99 % LOADED, the rest in the other states), written
# into a state store that glueless made, in its own layout.
status_100k() {
  local dir="$WORK/status"
  rm -rf "$dir" && mkdir -p "$dir/schemas"
  cp schemas/orders.toml "$dir/schemas/"
  printf '[lake]\nurl = "lake"\n' > "$dir/glueless.toml"
  "$BIN" status --quiet --config "$dir/glueless.toml" > /dev/null
  python3 - "$BIN" "$dir" <<'PY'
import sqlite3, statistics, subprocess, sys, time
binary, d = sys.argv[1:3]
c = sqlite3.connect(f"{d}/glueless-state.db")
others = ["REJECTED", "FAILED", "DEAD", "RECEIVED", "RUNNING"]
t0 = 1_700_000_000_000
def row(i):
    st = others[(i // 100) % 5] if i % 100 == 0 else "LOADED"
    return (f"{d}/lake/landing/orders/d{i % 50}/part-{i}.csv", f"v{i}", "orders" if i % 3 else "returns", 1000, st,
            "bench", None, 1, None, "inline", None if st == "LOADED" else "an error", t0 + i, t0 + i, t0 + 10 * i)
c.executemany("INSERT INTO files (url, version, dataset, size, state, owner, lease_until, attempts, retry_at, route, "
              "last_error, event_time, received_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
              (row(i) for i in range(100_000)))
c.commit()
c.close()
for args in (["status"], ["status", "--dataset", "orders"]):
    times = []
    for _ in range(5):
        start = time.monotonic()
        subprocess.run([binary, *args, "--format", "json", "--config", f"{d}/glueless.toml"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - start)
    print(f"{'glueless ' + ' '.join(args) + ', 100,000 records':<34} median {statistics.median(times) * 1000:.0f} ms"
          f"  min {min(times) * 1000:.0f} ms  (5 runs, the whole process)")
PY
}

for wh in sqlite postgres; do
  if [ "$wh" = sqlite ]; then env=(GLUELESS_X=1); elif [ -n "${GLUELESS_BENCH_PG:-}" ]; then
    env=(GLUELESS__WAREHOUSE__URL="$GLUELESS_BENCH_PG"); else continue; fi
  if [ -z "$ONLY" ]; then bench "$wh" "${env[@]}"; fi
  if [ -z "$ONLY" ] || [ "$ONLY" = small ]; then
    if [ "$ONLY" = small ]; then
      fresh "$wh"
      run "$wh: $SMALL files of 1000 rows" "${env[@]}"
    fi
    if [ "$MANY" -gt 0 ]; then many "$wh" "${env[@]}"; fi
  fi
  if [ -z "$ONLY" ] || [ "$ONLY" = latency ]; then latency "$wh" "${env[@]}"; fi
done
if [ -z "$ONLY" ] || [ "$ONLY" = status ]; then status_100k; fi
