//! `s3://` locations against the local AWS emulator that `scripts/test` starts (moto server,
//! reached over HTTP with path-style addressing and dummy credentials).

use crate::support::*;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::Write;

use crate::support::aws_endpoint as endpoint;

pub(crate) fn store(bucket: &str) -> AmazonS3 {
    crate::support::emulator_bucket(&endpoint(), bucket).expect("s3 client")
}

pub(crate) fn glueless_s3(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = endpoint();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    glueless_with_env(dir.path(), args, &env)
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn gzip_object_from_s3_to_parquet_and_quarantine_in_s3() {
    let bucket = make_bucket("transform");
    let s3 = store(&bucket);
    let plain = std::fs::read(repo().join("examples/orders-2026-11-20.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let rt = rt();
    rt.block_on(s3.put(&ObjPath::from("landing/orders/2026-11-20.csv.gz"), PutPayload::from(gz.finish().unwrap())))
        .unwrap();

    let contract = repo().join("schemas/orders.toml");
    let input = format!("s3://{bucket}/landing/orders/2026-11-20.csv.gz");
    let output = format!("s3://{bucket}/staging/orders/2026-11-20.parquet");
    let rejects = format!("s3://{bucket}/rejected/orders/2026-11-20.jsonl");
    let run = glueless_s3(&[
        "transform",
        "-c",
        path_str(&contract),
        "-i",
        &input,
        "-o",
        &output,
        "--rejects",
        &rejects,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["rows_read"], 2000);
    let valid = r["rows_valid"].as_u64().unwrap();
    let rejected = r["rows_rejected"].as_u64().unwrap();
    assert_eq!(r["outputs"][0]["url"], output.as_str());

    let parquet = rt
        .block_on(async { s3.get(&ObjPath::from("staging/orders/2026-11-20.parquet")).await?.bytes().await })
        .unwrap();
    let rows: usize = ParquetRecordBatchReaderBuilder::try_new(parquet)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows as u64, valid);
    let q =
        rt.block_on(async { s3.get(&ObjPath::from("rejected/orders/2026-11-20.jsonl")).await?.bytes().await }).unwrap();
    assert_eq!(std::str::from_utf8(&q).unwrap().lines().count() as u64, rejected);
}

#[test]
fn a_missing_s3_object_says_so() {
    let bucket = make_bucket("missing");
    let contract = repo().join("schemas/orders.toml");
    let run =
        glueless_s3(&["validate", "-c", path_str(&contract), &format!("s3://{bucket}/nope.csv"), "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let msg = run.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("does not exist") && msg.contains("nope.csv"), "{msg}");
}
