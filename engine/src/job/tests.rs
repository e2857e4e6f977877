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
