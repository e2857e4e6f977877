#!/usr/bin/env bash
# glueless against the native load paths, on the same generated file, alternated (issue 14, target 3):
#
# - glueless `run --once` into SQLite (the default warehouse) and into PostgreSQL: validation,
#   staging Parquet, staging table, the dedupe and upsert, the ledger, all in one go;
# - SQLite native: the `sqlite3` CLI `.import`s the CSV into the staging table, then runs the
#   statements glueless runs (steps 3–5 of tests/golden/sqlite/orders.sql), in one transaction;
# - PostgreSQL native: `psql` `\copy`s the CSV into the staging table, then runs steps 3–5 of
#   tests/golden/postgres/orders.sql (the MERGE), in one transaction.
#
#   CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo build --release --bin glueless
#   GLUELESS_BIN=target/release/glueless [GLUELESS_BENCH_PG=postgres://…] [GLUELESS_THREADS=2] \
#     [GLUELESS_BASELINE_BIN=/tmp/glueless-before] benches/natives.sh [ROWS] [ROUNDS]
#
# GLUELESS_BASELINE_BIN, another build (say, of the commit before a change), runs in every round
# too, next to GLUELESS_BIN: its lines and ratios are "baseline", for a before/after in one run.
#
# Every run starts from an empty fact table (a fresh SQLite file, a fresh PostgreSQL database)
# with the same durability: SQLite in WAL mode with its default `synchronous`, PostgreSQL with
# the server's settings. On the server of GLUELESS_BENCH_PG (a role that may create databases) it
# drops and creates the databases natives_glueless and natives_native. Without GLUELESS_BENCH_PG the script makes a throwaway PostgreSQL cluster
# (initdb in its temporary folder, default durability, a free port), stopped when it exits.
# The native paths get a clean file (no bad rows: they would refuse it); glueless validates
# every row of it all the same. Peak RSS is the client process's (glueless, sqlite3, psql): the
# PostgreSQL server's memory is not in it. Prints one line per run, then the ratio table
# (medians over the rounds; ratio = native s / glueless s, above 1 means glueless is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
ROWS="${1:-1000000}"
ROUNDS="${2:-3}"
BIN="$(realpath "${GLUELESS_BIN:-target/release/glueless}")"
BASELINE="${GLUELESS_BASELINE_BIN:+$(realpath "$GLUELESS_BASELINE_BIN")}"
GEN="../shared/bench/gen_orders.py"
WORK="$(mktemp -d -t glueless-natives-bench.XXXXXX)"
PG_BIN="${GLUELESS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1)}"
PGDIR=""
pg_as() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
cleanup() {
  if [ -n "$PGDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
    pg_as "$PG_BIN/pg_ctl -D $PGDIR/data -m fast stop" > /dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  if [ -n "$PGDIR" ]; then rm -rf "$PGDIR"; fi
}
trap cleanup EXIT

# --- the data, the contract and the statements --------------------------------------------------
mkdir -p "$WORK/schemas" "$WORK/lake/landing/orders"
cp schemas/orders.toml "$WORK/schemas/"
printf '[lake]\nurl = "lake"\n[run]\nsettle_ms = 0\nbatch_max_wait_ms = 0\n' > "$WORK/glueless.toml"
python3 "$GEN" --rows "$ROWS" --out "$WORK/orders.csv" --seed 42 > /dev/null 2>&1
COLS="$(python3 -c 'print(", ".join(f"c{i}" for i in range(10)))')"

# Steps 3–5 (what is not newer, one row per key, the upsert) of a golden file, as glueless runs them.
steps() { sed -n '/^-- 3\./,/^-- 6\./p' "tests/golden/$1/orders.sql" | grep -v '^-- 6\.'; }
# Its staging table's column definitions for the CSV's columns only (c0 … c9).
csv_columns() {
  grep '^CREATE TEMP TABLE "glueless_staging"' "tests/golden/$1/orders.sql" \
    | sed -e 's/^[^(]*(//' -e 's/, "glueless_file".*//'
}

# SQLite: the CSV goes into a staging table of its own columns; the bookkeeping columns the
# steps use are added after (`glueless_file` a constant, `glueless_sort` the version itself, as
# glueless binds it for a datetime) and `glueless_row` is the rowid.
{
  echo "PRAGMA journal_mode = WAL;"
  echo "BEGIN IMMEDIATE;"
  echo "CREATE TEMP TABLE \"glueless_staging\" ($(csv_columns sqlite));"
  echo ".import --csv --skip 1 --schema temp $WORK/orders.csv glueless_staging"
  echo "ALTER TABLE temp.\"glueless_staging\" ADD COLUMN \"glueless_file\" INTEGER NOT NULL DEFAULT 0;"
  echo "ALTER TABLE temp.\"glueless_staging\" ADD COLUMN \"glueless_sort\" AS (c1);"
  steps sqlite | sed 's/"glueless_row"/rowid/g'
  echo "COMMIT;"
} > "$WORK/native-sqlite.sql"

# PostgreSQL: the staging table of the golden file, its bookkeeping columns filled by defaults.
{
  echo "BEGIN;"
  grep '^CREATE TEMP TABLE "glueless_staging"' tests/golden/postgres/orders.sql \
    | sed -e 's/"glueless_file" integer NOT NULL/"glueless_file" integer NOT NULL DEFAULT 0/' \
      -e 's/"glueless_row" bigint NOT NULL/"glueless_row" bigint GENERATED ALWAYS AS IDENTITY/'
  echo "\\copy pg_temp.glueless_staging ($COLS) FROM '$WORK/orders.csv' WITH (FORMAT csv, HEADER true)"
  steps postgres
  echo "COMMIT;"
} > "$WORK/native-postgres.sql"

# --- PostgreSQL ---------------------------------------------------------------------------------
PG="${GLUELESS_BENCH_PG:-}"
if [ -z "$PG" ]; then
  [ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL binaries (set GLUELESS_PG_BIN or GLUELESS_BENCH_PG)" >&2; exit 1; }
  PGDIR="$(mktemp -d -t glueless-natives-pg.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_as "$PG_BIN/initdb -D $PGDIR/data -A trust -U postgres -E UTF8" > "$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log"; exit 1; }
  pg_as "$PG_BIN/pg_ctl -D $PGDIR/data -l $PGDIR/log -w start -o '-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR'" > /dev/null \
    || { cat "$PGDIR/log"; exit 1; }
  PG="postgres://postgres@127.0.0.1:$PGPORT/postgres"
fi
# The URL of another database on the same server.
db_url() { python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG" "$1"; }
fresh_db() { psql -qX "$PG" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" > /dev/null; }

# --- one timed run ------------------------------------------------------------------------------
# timed LABEL ROUND CMD…: appends "label round seconds peak_kB" to $WORK/results.
timed() {
  local label="$1" round="$2"
  shift 2
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$WORK/rss" "$@" > "$WORK/out" 2> "$WORK/err" \
    || { echo "$label failed:"; cat "$WORK/out" "$WORK/err"; exit 1; }
  end=$(date +%s.%N)
  local secs
  secs=$(python3 -c "print(f'{$end - $start:.3f}')")
  echo "$label $round $secs $(tail -1 "$WORK/rss")" >> "$WORK/results"
  printf '%-18s round %s %8s s  peak RSS %6s MiB\n' "$label" "$round" "$secs" "$(($(tail -1 "$WORK/rss") / 1024))"
}

# glueless run --once with the file in the landing folder, from an empty state and warehouse.
glueless_run() { # label round env… (the binary: $RUN_BIN, else $BIN)
  local label="$1" round="$2"
  shift 2
  rm -rf "$WORK/lake/staging" "$WORK/lake/rejected" "$WORK"/*.db "$WORK"/*.db-*
  ln -f "$WORK/orders.csv" "$WORK/lake/landing/orders/orders.csv"
  timed "$label" "$round" env "$@" "${RUN_BIN:-$BIN}" run --once --quiet --config "$WORK/glueless.toml" --format json
  python3 - "$WORK/out" "$ROWS" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
loaded = sum(f["rows_loaded"] for f in v["files"])
if loaded != int(sys.argv[2]):
    sys.exit(f"glueless loaded {loaded} rows, not {sys.argv[2]}: {v['counts']}")
PY
}

# The fact table as glueless creates it, for the native paths (taken from a glueless run).
glueless_run "glueless sqlite" 0 GLUELESS_X=1
sqlite3 "$WORK/warehouse.db" "SELECT sql || ';' FROM sqlite_master WHERE name = 'fact_orders'" > "$WORK/fact-sqlite.sql"
fresh_db natives_glueless
glueless_run "glueless postgres" 0 GLUELESS__WAREHOUSE__URL="$(db_url natives_glueless)"
"${PG_BIN:+$PG_BIN/}pg_dump" --schema-only --no-owner -t fact_orders "$(db_url natives_glueless)" > "$WORK/fact-postgres.sql"
: > "$WORK/results" # round 0 warmed the caches and made the DDL: not counted

native_sqlite() { # round
  rm -f "$WORK/native.db"*
  sqlite3 "$WORK/native.db" < "$WORK/fact-sqlite.sql"
  timed "native sqlite" "$1" sqlite3 -bail "$WORK/native.db" ".read $WORK/native-sqlite.sql"
  local n
  n=$(sqlite3 "$WORK/native.db" "SELECT count(*) FROM fact_orders")
  [ "$n" = "$ROWS" ] || { echo "native sqlite loaded $n rows, not $ROWS"; exit 1; }
}

native_postgres() { # round
  fresh_db natives_native
  psql -qX -v ON_ERROR_STOP=1 "$(db_url natives_native)" -f "$WORK/fact-postgres.sql" > /dev/null
  timed "native postgres" "$1" psql -qX -v ON_ERROR_STOP=1 "$(db_url natives_native)" -f "$WORK/native-postgres.sql"
  local n
  n=$(psql -qXtA "$(db_url natives_native)" -c "SELECT count(*) FROM fact_orders")
  [ "$n" = "$ROWS" ] || { echo "native postgres loaded $n rows, not $ROWS"; exit 1; }
}

glueless_postgres() { # round [label prefix]
  fresh_db natives_glueless
  glueless_run "${2:-glueless} postgres" "$1" GLUELESS__WAREHOUSE__URL="$(db_url natives_glueless)"
}

# The baseline build, when given, right after the one under test.
baseline() { # round
  if [ -n "$BASELINE" ]; then
    RUN_BIN="$BASELINE" glueless_run "baseline sqlite" "$1" GLUELESS_X=1
    RUN_BIN="$BASELINE" glueless_postgres "$1" baseline
  fi
}

# Alternated: odd rounds glueless first, even rounds the native paths first.
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    glueless_run "glueless sqlite" "$round" GLUELESS_X=1
    native_sqlite "$round"
    glueless_postgres "$round"
    native_postgres "$round"
    baseline "$round"
  else
    baseline "$round"
    native_sqlite "$round"
    glueless_run "glueless sqlite" "$round" GLUELESS_X=1
    native_postgres "$round"
    glueless_postgres "$round"
  fi
done

python3 - "$WORK/results" "$ROWS" "$ROUNDS" <<'PY'
import statistics, sys
from collections import defaultdict
secs, rss = defaultdict(list), defaultdict(list)
for line in open(sys.argv[1]):
    *label, _round, s, kb = line.split()
    label = " ".join(label)
    secs[label].append(float(s))
    rss[label].append(int(kb))
rows, rounds = int(sys.argv[2]), sys.argv[3]
print(f"\n{rows:,} rows, median of {rounds} alternated rounds (ratio = native s / glueless s)\n")
print("| warehouse | glueless s | native s | ratio | glueless peak RSS | native peak RSS |")
print("| --- | --- | --- | --- | --- | --- |")
for w in ("sqlite", "postgres"):
    g, n = statistics.median(secs[f"glueless {w}"]), statistics.median(secs[f"native {w}"])
    gm, nm = max(rss[f"glueless {w}"]) / 1024, max(rss[f"native {w}"]) / 1024
    print(f"| {w} | {g:.2f} | {n:.2f} | {n / g:.2f}× | {gm:.0f} MiB | {nm:.0f} MiB |")
    if secs[f"baseline {w}"]:
        b, bm = statistics.median(secs[f"baseline {w}"]), max(rss[f"baseline {w}"]) / 1024
        print(f"| {w}, baseline build | {b:.2f} | {n:.2f} | {n / b:.2f}× | {bm:.0f} MiB | {nm:.0f} MiB |")
PY
