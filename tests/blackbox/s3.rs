//! `s3://` locations against the local AWS emulator that `scripts/test` starts (moto server,
//! reached over HTTP with path-style addressing and dummy credentials).

use crate::support::*;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::{Read, Write};

fn endpoint() -> String {
    std::env::var("GLUELESS_TEST_AWS_ENDPOINT").expect(
        "GLUELESS_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test, which starts the local AWS emulator",
    )
}

/// A fresh bucket per test, made with a plain HTTP PUT (the emulator does not check signatures).
fn make_bucket(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let bucket = format!("glueless-{test}-{}-{nanos}", std::process::id());
    let ep = endpoint();
    let host = ep.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("emulator reachable");
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "bucket creation: {answer}");
    bucket
}

fn store(bucket: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(endpoint())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_bucket_name(bucket)
        .build()
        .expect("s3 client")
}

fn glueless_s3(args: &[&str]) -> Run {
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

fn rt() -> tokio::runtime::Runtime {
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
