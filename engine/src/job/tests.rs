//! The file job's bounds, on the in-memory store (the real binary is tested in
//! `tests/blackbox/hostile/bounds.rs`).

use super::*;
use crate::Stores;
use object_store::{ObjectStoreExt, PutPayload, path::Path as StorePath};

fn dataset(extra: &str) -> Dataset {
    let toml = format!(
        "name = \"t\"\n{extra}\n[load]\nmax_rejected_ratio = 1.0\n[schema]\nfields = [{{ name = \"a\", type = \"string\" }}]\n"
    );
    Dataset::from_contract(crate::contract::load_str(&toml, "t.toml", std::path::Path::new(".")).expect("contract"))
        .expect("dataset")
}

fn run(dataset: &Dataset, body: &[u8], limits: Limits) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let stores = Stores::new();
    rt.block_on(stores.memory().put(&StorePath::from("in.csv"), PutPayload::from(body.to_vec()))).expect("put");
    let job = FileJob::new(dataset, stores.resolve("memory://in.csv").expect("url")).limits(limits);
    let report = rt.block_on(job.run()).expect("runs");
    assert_eq!(report.rows_read, report.rows_valid + report.rows_rejected);
    report
}

fn rule(r: &Report) -> Option<&'static str> {
    r.file_problem.as_ref().map(|p| p.rule)
}

#[test]
fn a_header_past_max_columns_rejects_the_file() {
    let small = Limits { max_columns: 3, ..Limits::default() };
    assert_eq!(rule(&run(&dataset(""), b"a,b,c,d\nx,,,\n", small)), Some("too-many-columns"));
    let r = run(&dataset(""), b"a,b,c\nx,,\n", small);
    assert_eq!(rule(&r), Some("extra-label"), "three columns are allowed: {:?}", r.file_problem);
}

#[test]
fn a_skipped_line_longer_than_the_record_limit_rejects_the_file() {
    let d = dataset("[dialect]\nskip_lines = 1");
    // The limit is checked while a line is incomplete, so the line must pass one read (1 MiB).
    let limits = Limits { max_record_bytes: 1000, ..Limits::default() };
    let mut body = vec![b't'; 3 << 20];
    body.extend_from_slice(b"\na\nx\n");
    let r = run(&d, &body, limits);
    assert_eq!(rule(&r), Some("malformed-file"));
    assert!(r.file_problem.unwrap().message.contains("dialect.skip_lines = 1"));
    // Within the limit, the same file reads.
    let r = run(&d, &body, Limits::default());
    assert_eq!((rule(&r), r.rows_valid), (None, 1));
}

#[test]
fn records_are_read_a_slice_at_a_time_with_counts_that_add_up() {
    // More records than one parse returns, with blank rows among them.
    let mut body = b"a\n".to_vec();
    for i in 0..40_000 {
        body.extend_from_slice(if i % 4 == 0 { b"\n" } else { b"v\n" });
    }
    let r = run(&dataset(""), &body, Limits::default());
    assert_eq!((r.rows_read, r.rows_valid, r.rows_rejected), (40_000, 30_000, 10_000));
}

#[test]
fn the_quarantine_bound_stops_a_dry_run_too() {
    let body = [b"a\n".as_slice(), &[b'\n'; 100_000]].concat();
    let limits = Limits { quarantine_floor_bytes: 0, quarantine_ratio: 8, ..Limits::default() };
    let r = run(&dataset(""), &body, limits);
    assert_eq!(rule(&r), Some("quarantine-size"));
    assert!(r.rows_rejected < 100_000, "stopped before the end: {}", r.rows_rejected);
}

/// Runs `body` with Parquet and quarantine outputs; returns the report and the quarantine's lines.
fn run_to_outputs(dataset: &Dataset, body: &[u8], limits: Limits, threads: usize) -> (Report, Vec<serde_json::Value>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let stores = Stores::new();
    rt.block_on(stores.memory().put(&StorePath::from("in.csv"), PutPayload::from(body.to_vec()))).expect("put");
    let job = FileJob::new(dataset, stores.resolve("memory://in.csv").expect("url"))
        .output(stores.resolve("memory://out.parquet").expect("url"))
        .rejects(stores.resolve("memory://out.rejects.jsonl").expect("url"))
        .threads(threads)
        .limits(limits);
    let report = rt.block_on(job.run()).expect("runs");
    assert_eq!(report.rows_read, report.rows_valid + report.rows_rejected);
    let text = match rt.block_on(stores.memory().get(&StorePath::from("out.rejects.jsonl"))) {
        Ok(got) => String::from_utf8(rt.block_on(got.bytes()).expect("bytes").to_vec()).expect("utf8"),
        Err(_) => String::new(),
    };
    let lines = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    (report, lines)
}

#[test]
fn validation_on_its_own_thread_keeps_file_order_and_every_rejected_row() {
    // Many chunks (each read is 1 MiB), a key repeated across chunks, a bad value every 997 rows.
    let toml = "name = \"t\"\n[load]\nmax_rejected_ratio = 1.0\n[schema]\nprimaryKey = [\"id\"]\nfields = [{ name = \"id\", type = \"integer\" }, { name = \"n\", type = \"integer\" }]\n";
    let d =
        Dataset::from_contract(crate::contract::load_str(toml, "t.toml", std::path::Path::new(".")).expect("contract"))
            .expect("dataset");
    let mut body = b"id,n\n".to_vec();
    let rows = 400_000u64;
    for i in 0..rows {
        let id = if i == rows - 1 { 5 } else { i };
        let n = if i % 997 == 0 { "x".to_string() } else { i.to_string() };
        body.extend_from_slice(format!("{id},{n}\n").as_bytes());
    }
    assert!(body.len() > 4 << 20, "several chunks: {} bytes", body.len());
    for threads in [1, 2] {
        let (r, quarantine) = run_to_outputs(&d, &body, Limits::default(), threads);
        check_order(rows, &r, &quarantine);
    }
}

fn check_order(rows: u64, r: &Report, quarantine: &[serde_json::Value]) {
    let bad = rows.div_ceil(997);
    assert_eq!((r.rows_read, r.rows_rejected), (rows, bad + 1), "{:?}", r.file_problem);
    assert_eq!(quarantine.len() as u64, r.rows_rejected);
    let lines: Vec<u64> = quarantine.iter().map(|q| q["line"].as_u64().expect("line")).collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "the quarantine is in file order");
    let last = quarantine.last().expect("the duplicate");
    assert_eq!(last["errors"][0]["rule"], "primary-key");
    assert_eq!(last["errors"][0]["first_line"], 7, "id 5 was first seen on line 7");
    let listed: Vec<u64> = r.errors.iter().map(|e| e.line).collect();
    assert_eq!(listed, lines[..listed.len()].to_vec(), "the report lists the first errors of the file");
}

#[test]
fn a_file_rejected_mid_stream_still_quarantines_every_row_it_counted() {
    // Blank rows only: the quarantine bound trips while chunks are still in the validator.
    let body = [b"a\n".as_slice(), &[b'\n'; 3 << 20]].concat();
    let limits = Limits { quarantine_floor_bytes: 0, quarantine_ratio: 40, ..Limits::default() };
    for threads in [1, 2] {
        let (r, quarantine) = run_to_outputs(&dataset(""), &body, limits, threads);
        assert_eq!(rule(&r), Some("quarantine-size"));
        assert!(r.rows_rejected < 3 << 20, "stopped before the end: {}", r.rows_rejected);
        assert_eq!(quarantine.len() as u64, r.rows_rejected, "counted = quarantined ({threads} threads)");
    }
}

#[test]
fn staging_for_this_machine_is_written_uncompressed_and_reads_back_the_same() {
    use parquet::basic::Compression;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let stores = Stores::new();
    let body: String =
        std::iter::once("a\n".to_string()).chain((0..5000).map(|i| format!("value {}\n", i % 7))).collect();
    rt.block_on(stores.memory().put(&StorePath::from("in.csv"), PutPayload::from(body.into_bytes()))).expect("put");
    let d = dataset("");
    let written = |name: &str, compressed: bool| {
        let job = FileJob::new(&d, stores.resolve("memory://in.csv").expect("url"))
            .output(stores.resolve(&format!("memory://{name}")).expect("url"))
            .compressed(compressed);
        assert_eq!(rt.block_on(job.run()).expect("runs").rows_valid, 5000);
        let got = rt.block_on(stores.memory().get(&StorePath::from(name))).expect("written");
        let reader = SerializedFileReader::new(rt.block_on(got.bytes()).expect("bytes")).expect("parquet");
        let chunk = reader.metadata().row_group(0).column(0).clone();
        let values: Vec<String> = reader
            .get_row_iter(None)
            .expect("rows")
            .map(|r| r.expect("row").get_string(0).expect("a string").clone())
            .collect();
        (chunk.compression(), values)
    };
    let (zstd, packed) = written("packed.parquet", true);
    let (none, plain) = written("plain.parquet", false);
    assert!(matches!(zstd, Compression::ZSTD(_)), "compressed by default: {zstd:?}");
    assert_eq!(none, Compression::UNCOMPRESSED);
    assert_eq!(packed, plain, "the same rows either way");
}

/// A chunk whose buffers grew for one long record gives them up when it comes back; one of
/// ordinary size keeps them for the next chunk.
#[test]
fn a_chunk_grown_for_a_long_record_is_not_kept_at_that_size() {
    let ordinary = Chunk { buf: Vec::with_capacity(CHUNK_BYTES), recs: Records::default() };
    assert!(reusable(ordinary).buf.capacity() >= CHUNK_BYTES, "an ordinary buffer is reused");
    let grown = Chunk { buf: Vec::with_capacity(64 << 20), recs: Records::default() };
    assert_eq!(reusable(grown).buf.capacity(), 0, "a 64 MiB buffer is dropped");
    let mut recs = Records::default();
    recs.fields.reserve(SPARE_BYTES);
    let many_fields = reusable(Chunk { buf: Vec::new(), recs });
    assert_eq!(many_fields.recs.fields.capacity(), 0, "the spans of a record of a million fields are dropped");
}
