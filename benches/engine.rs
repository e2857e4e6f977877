//! Criterion benchmarks of the engine's hot path, over 100k rows of the "orders" CSV.
//!
//! The data is made in-process by [`orders_csv`], a port of `gen_orders.py` (the generator of the
//! peer benchmark in `../shared/bench`): the same seed gives the same bytes, so MB/s here and
//! there are over the same input. It is validated against `schemas/orders.toml`. The
//! measurements, each in input bytes per second:
//!
//! - `read_local_file`: [`Input::fill`] over the file on local disk (page cache), chunk by chunk,
//!   as the file job reads it;
//! - `tokenize`: [`Tokenizer::parse`] over the buffer in 1 MiB windows, as the file job reads it;
//! - `tokenize_validate`: the same plus [`Validator::push_records`] (typed Arrow batches, which
//!   are then dropped);
//! - `parquet_write`: the validated batches of the file through [`ParquetSink`] (per-column
//!   encodings, zstd) into the in-memory store;
//! - `file_job`: the whole [`FileJob`] from the in-memory store to zstd Parquet in the in-memory
//!   store, with one thread (`--threads 1`: a current-thread runtime, validation in place);
//! - `file_job_2_threads`: the same with two (`--threads 2`: two worker threads, validation on
//!   a thread of its own).
//!
//! Run with `cargo bench -p glueless-engine --bench engine` (about two minutes the first time
//! after the release build); `-- tokenize` picks one.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use glueless_engine::contract::Encoding;
use glueless_engine::decode::tokenizer::{Records, Tokenizer};
use glueless_engine::decode::{CHUNK_BYTES, Input};
use glueless_engine::validate::Validator;
use glueless_engine::write::ParquetSink;
use glueless_engine::{Dataset, FileJob, Stores};
use object_store::{ObjectStoreExt, PutPayload, path::Path as StorePath};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const ROWS: u64 = 100_000;
const SEED: u64 = 42;

// ---------------------------------------------------------------------------------------------
// The data: gen_orders.py, without `--bad-rate` (every row is valid).

const GOLD: u64 = 0x9E37_79B9_7F4A_7C15;
const ID_MULT: u64 = 0x5_DEEC_E66D;
const M40: u64 = (1 << 40) - 1;
const CURRENCIES: [&str; 8] = ["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK"];
const COUNTRIES: [&str; 16] =
    ["US", "DE", "GB", "FR", "JP", "CA", "AU", "CH", "SE", "NL", "ES", "IT", "BR", "IN", "MX", "PL"];
/// Eight entries: paid and shipped are twice as common.
const STATUSES: [&str; 8] = ["pending", "paid", "shipped", "delivered", "cancelled", "returned", "paid", "shipped"];
/// Already CSV-encoded; 16 of 32 are empty, several need quoting.
const NOTES: [&str; 16] = [
    "gift wrap",
    "leave at front desk",
    "\"Leave at door, ring bell\"",
    "\"He said \"\"fragile\"\", handle with care\"",
    "deliver after 5pm",
    "\"Call first, then \"\"knock\"\"\"",
    "no plastic please",
    "\"Box 3 of 4, \"\"A\"\" side up\"",
    "repeat customer",
    "\"Ref: PO-7731, dept \"\"QA\"\"\"",
    "use side entrance",
    "\"Fragile, glass\"",
    "weekend delivery ok",
    "\"Note: \"\"do not bend\"\"\"",
    "invoice by email",
    "\"Back gate, code \"\"4711\"\"\"",
];
const N_SKU: u64 = 50_000;
const N_PRICE: u64 = 9_973;
const N_CUST: u64 = 2_000_000;
/// 2024-01-01T00:00:00Z.
const TS_BASE: u64 = 1_704_067_200;
const HEADER: &str = "order_id,order_ts,customer_id,sku,quantity,unit_price,currency,country,status,note\n";

/// `rows` orders rows after the header; each row is a pure function of `(seed, row index)`.
fn orders_csv(rows: u64, seed: u64) -> Vec<u8> {
    use std::fmt::Write;
    let seed_off = seed.wrapping_mul(GOLD).wrapping_add(0x632B_E59B_D9B4_E019);
    let skus: Vec<String> = (0..N_SKU).map(|k| format!("SKU-{:06}", (k * 7919) % 1_000_000)).collect();
    let prices: Vec<String> = (0..N_PRICE)
        .map(|k| {
            let cents = 99 + (k * 104_729) % 99_901;
            format!("{}.{:02}", cents / 100, cents % 100)
        })
        .collect();
    let mut out = String::with_capacity(rows as usize * 90 + HEADER.len());
    out.push_str(HEADER);
    let mut last_day = u64::MAX;
    let mut date = String::new();
    for i in 0..rows {
        let mut h = i.wrapping_add(seed_off).wrapping_mul(GOLD);
        h ^= h >> 31;
        let t = TS_BASE + i * 3 + (h >> 61) % 3;
        let (day, sod) = (t / 86_400, t % 86_400);
        if day != last_day {
            last_day = day;
            date = civil_date(day);
        }
        let note = if (h >> 52) & 31 < 16 { "" } else { NOTES[((h >> 52) & 15) as usize] };
        writeln!(
            out,
            "{},{date}T{:02}:{:02}:{:02}Z,{},{},{},{},{},{},{},{note}",
            ((i.wrapping_mul(ID_MULT)) & M40) + 1,
            sod / 3600,
            sod / 60 % 60,
            sod % 60,
            1 + (h >> 8) % N_CUST,
            skus[((h >> 29) % N_SKU) as usize],
            1 + h % 20,
            prices[((h >> 13) % N_PRICE) as usize],
            CURRENCIES[((h >> 5) & 7) as usize],
            COUNTRIES[((h >> 45) & 15) as usize],
            STATUSES[((h >> 49) & 7) as usize],
        )
        .expect("writing to a String");
    }
    out.into_bytes()
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

// ---------------------------------------------------------------------------------------------
// The benchmarks

/// Calls `f` on each window of complete records, the way the file job feeds the tokenizer:
/// at most [`CHUNK_BYTES`] plus the incomplete record carried over (here: not copied).
fn for_each_window(csv: &[u8], tok: &mut Tokenizer, recs: &mut Records, mut f: impl FnMut(&[u8], &Records)) {
    let mut pos = 0;
    while pos < csv.len() {
        let end = (pos + CHUNK_BYTES).min(csv.len());
        let eof = end == csv.len();
        let mut window = &csv[pos..end];
        recs.clear();
        let mut consumed = tok.parse(window, eof, recs);
        if consumed == 0 {
            // One record longer than a window: widen it to the end, as the job's buffer grows.
            window = &csv[pos..];
            consumed = tok.parse(window, true, recs);
        }
        f(window, recs);
        pos += consumed;
    }
}

fn engine(c: &mut Criterion) {
    let contract =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../schemas/orders.toml");
    let dataset = Dataset::load(&contract).unwrap_or_else(|e| panic!("{e}"));
    let csv = orders_csv(ROWS, SEED);
    let header_end = csv.iter().position(|&b| b == b'\n').expect("a header line") + 1;
    let header: Vec<String> =
        std::str::from_utf8(&csv[..header_end - 1]).expect("ASCII").split(',').map(str::to_string).collect();
    let body = &csv[header_end..];

    let mut group = c.benchmark_group("orders_100k");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Bytes(csv.len() as u64));

    // A local file is read straight into the chunk's buffer, on the blocking pool.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("orders.csv");
    std::fs::write(&file, &csv).expect("writes the file");
    let local = Stores::new().resolve(file.to_str().expect("a UTF-8 path")).expect("a local path");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let mut buf = Vec::new();
    group.bench_function("read_local_file", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut input = Input::open(&local, Encoding::Utf8).await.expect("opens");
                while input.fill(&mut buf).await.expect("reads") {
                    buf.clear();
                }
                assert_eq!(input.bytes_read(), csv.len() as u64, "every byte is read");
            })
        })
    });

    let mut recs = Records::default();
    group.bench_function("tokenize", |b| {
        b.iter(|| {
            let mut tok = Tokenizer::new(b',', b'"');
            let mut n = 0;
            for_each_window(&csv, &mut tok, &mut recs, |_, r| n += r.records.len());
            assert_eq!(n as u64, ROWS + 1, "every record is read");
            black_box(n)
        })
    });

    group.bench_function("tokenize_validate", |b| {
        b.iter(|| {
            let mut tok = Tokenizer::new(b',', b'"');
            let mut v = Validator::new(dataset.contract.clone());
            v.bind_header(&header).expect("the header matches the contract");
            let (mut batches, mut rejects) = (Vec::new(), Vec::new());
            for_each_window(body, &mut tok, &mut recs, |window, r| {
                v.push_records(window, r, &mut batches, &mut rejects);
                batches.clear();
                rejects.clear();
            });
            black_box(v.finish());
            assert_eq!(v.counts().rows_valid, ROWS, "every row is valid");
        })
    });

    // The validated batches of the whole file, once, for the writer alone.
    let batches = {
        let mut tok = Tokenizer::new(b',', b'"');
        let mut v = Validator::new(dataset.contract.clone());
        v.bind_header(&header).expect("the header matches the contract");
        let (mut batches, mut rejects) = (Vec::new(), Vec::new());
        for_each_window(body, &mut tok, &mut recs, |window, r| v.push_records(window, r, &mut batches, &mut rejects));
        batches.extend(v.finish());
        batches
    };

    let stores = Stores::new();
    // The Parquet writer alone (encodings chosen per column, zstd): what the validator's batches
    // cost to encode.
    group.bench_function("parquet_write", |b| {
        b.iter(|| {
            let out = stores.resolve("memory://staging/write.parquet").expect("memory URL");
            let mut sink = ParquetSink::new(out, dataset.validated_schema.clone(), None);
            rt.block_on(async {
                for batch in &batches {
                    sink.write(batch).await.expect("writes");
                }
                black_box(sink.finish().await.expect("closes"))
            })
        })
    });

    rt.block_on(stores.memory().put(&StorePath::from("landing/orders.csv"), PutPayload::from(csv.clone())))
        .expect("put");
    let run = |rt: &tokio::runtime::Runtime, threads: usize| {
        let job = FileJob::new(&dataset, stores.resolve("memory://landing/orders.csv").expect("memory URL"))
            .output(stores.resolve("memory://staging/orders.parquet").expect("memory URL"))
            .rejects(stores.resolve("memory://rejected/orders.jsonl").expect("memory URL"))
            .threads(threads);
        let report = rt.block_on(job.run()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((report.rows_valid, report.rows_rejected), (ROWS, 0), "{:?}", report.file_problem);
        report
    };
    // About 0.2 s an iteration in release: give it room for 10 samples.
    group.measurement_time(Duration::from_secs(12));
    group.bench_function("file_job", |b| b.iter(|| black_box(run(&rt, 1))));
    // The same on two worker threads: validation overlaps reading and encoding.
    let rt2 = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    group.bench_function("file_job_2_threads", |b| b.iter(|| black_box(run(&rt2, 2))));
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
