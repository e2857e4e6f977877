//! Criterion benchmarks of the load stage on the embedded SQLite warehouse (no server needed;
//! PostgreSQL is measured end to end by `benches/natives.sh`).
//!
//! 100k rows of the `orders` contract (`schemas/orders.toml`) are staged once by the engine into
//! a Parquet file; each iteration loads that file into a fresh SQLite file through the
//! `Warehouse` port, in rows per second:
//!
//! - `sqlite_empty_table`: into an empty fact table (the rows go straight into it);
//! - `sqlite_table_with_rows`: into a table that already holds one other key (the rows go
//!   straight into it too: "Straight into the table" in the load plan);
//! - `sqlite_table_refusing_the_last_row`: into a table that holds the key of the load's last
//!   row, so that the table refuses the rows straight in at the last one and the load takes
//!   the staging table, version filter, dedupe and upsert (steps 2–5): the worst case.
//!
//! Run with `cargo bench -p glueless-jobs --bench loads` (about a minute after the release
//! build); `-- empty` picks one.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use glueless_engine::{Dataset, FileJob, Stores};
use glueless_jobs::adapters::SqliteWarehouse;
use glueless_jobs::ports::{FileKey, LoadRequest, StagedFile, TableSpec, Warehouse};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

const ROWS: u64 = 100_000;

/// Valid orders rows: increasing ids, one second apart, every field within the contract.
fn orders_csv(rows: u64, first_id: u64) -> String {
    let mut out = String::from("order_id,order_ts,customer_id,sku,quantity,unit_price,currency,country,status,note\n");
    for i in 0..rows {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let _ = writeln!(
            out,
            "{},2024-01-01T{h:02}:{m:02}:{s:02}Z,{},SKU-{:06},{},{}.{:02},EUR,DE,paid,{}",
            first_id + i,
            i * 7 % 1_000_003,
            i * 13 % 1_000_000,
            1 + i % 20,
            i % 1000,
            i % 100,
            if i % 3 == 0 { "gift" } else { "" }
        );
    }
    out
}

/// Stages `csv` (written under `dir` as `name`) through the engine.
fn stage(rt: &tokio::runtime::Runtime, dataset: &Dataset, dir: &Path, name: &str, csv: &str) -> StagedFile {
    let stores = Stores::new();
    let input = dir.join(format!("{name}.csv"));
    std::fs::write(&input, csv).unwrap();
    let output = dir.join(format!("{name}.parquet"));
    let report = rt
        .block_on(
            FileJob::new(dataset, stores.resolve(&input.display().to_string()).unwrap())
                .output(stores.resolve(&output.display().to_string()).unwrap())
                .run(),
        )
        .expect("the engine stages the bench file");
    assert_eq!(report.rows_valid, csv.lines().count() as u64 - 1, "every bench row is valid");
    StagedFile {
        key: FileKey { url: format!("s3://landing/{name}.csv"), version: "v1".into() },
        fingerprint: report.fingerprint,
        parts: report.outputs.iter().filter(|o| o.kind == "parquet").map(|o| stores.resolve(&o.url).unwrap()).collect(),
        rows: report.rows_valid,
    }
}

fn load(rt: &tokio::runtime::Runtime, w: &SqliteWarehouse, spec: &TableSpec, id: &str, files: &[StagedFile]) -> u64 {
    let req = LoadRequest { table: spec, load_id: id, files, now: 1_700_000_000_000 };
    rt.block_on(w.load(&req)).expect("the bench load").rows_merged
}

fn loads(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/orders.toml");
    let dataset = Dataset::load(&contract).expect("schemas/orders.toml loads");
    let spec = TableSpec::from_dataset(&dataset).unwrap();
    let big = stage(&rt, &dataset, dir.path(), "big", &orders_csv(ROWS, 1));
    let other = stage(&rt, &dataset, dir.path(), "other", &orders_csv(1, 10 * ROWS));
    // The key of `big`'s last row, with an older version.
    let clash = stage(&rt, &dataset, dir.path(), "clash", &orders_csv(1, ROWS));
    let made = std::sync::atomic::AtomicUsize::new(0);
    // A fresh warehouse file with the table, holding `before`'s row.
    let fresh = |before: Option<&StagedFile>| {
        let n = made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let w = SqliteWarehouse::open(&dir.path().join(format!("w{n}.db"))).unwrap();
        rt.block_on(w.ensure_table(&spec)).unwrap();
        if let Some(before) = before {
            assert_eq!(load(&rt, &w, &spec, "L0", std::slice::from_ref(before)), 1);
        }
        w
    };

    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let cases = [
        ("sqlite_empty_table", None),
        ("sqlite_table_with_rows", Some(&other)),
        ("sqlite_table_refusing_the_last_row", Some(&clash)),
    ];
    for (name, before) in cases {
        g.bench_function(name, |b| {
            b.iter_batched(
                || fresh(before),
                |w| assert_eq!(load(&rt, &w, &spec, "L1", std::slice::from_ref(&big)), ROWS),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, loads);
criterion_main!(benches);
