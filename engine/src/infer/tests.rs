//! Unit tests of the pieces that need no file (the traps are in `tests/engine/infer.rs`).

use super::*;

#[test]
fn dataset_names_from_file_names() {
    assert_eq!(dataset_name("landing/orders-2026-11-20.csv.gz"), "orders");
    assert_eq!(dataset_name("seattle-weather.csv"), "seattle_weather");
    assert_eq!(dataset_name("2024.csv"), "_2024");
    assert_eq!(dataset_name("s3://b/landing/refunds/2026-02-01.csv.gz"), "refunds");
    assert_eq!(dataset_name("memory://2026.csv"), "_2026");
    assert_eq!(dataset_name("Ünïcode.tsv"), "n_code");
    assert_eq!(dataset_name("--.csv"), "dataset");
    assert_eq!(extension("a/b.TSV.gz"), "tsv");
    assert_eq!(extension("a/b"), "csv");
}

#[test]
fn drafted_names_are_unique_and_inert() {
    let header: Vec<String> = ["", "a", "A", "x\ny", "  "].iter().map(|s| s.to_string()).collect();
    let names = drafted_names(&header);
    assert_eq!(names, ["column_1", "a", "A_2", "x\\ny", "column_5"]);
}
