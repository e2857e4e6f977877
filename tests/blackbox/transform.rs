//! `glueless validate` and `glueless transform` on real files.

use crate::support::*;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use std::io::Write;

const ORDERS_HEADER: &str = "order_id,order_ts,customer_id,sku,quantity,unit_price,currency,country,status,note";

fn orders_contract() -> String {
    path_str(&repo().join("schemas/orders.toml")).to_string()
}

fn write(dir: &std::path::Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write input");
    path_str(&p).to_string()
}

#[test]
fn transform_sample_reports_counts_that_add_up_and_writes_typed_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let input = repo().join("examples/orders-2026-11-20.csv");
    let run = glueless(
        dir.path(),
        &[
            "transform",
            "--contract",
            &orders_contract(),
            "--input",
            path_str(&input),
            "--output",
            "out/orders.parquet",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 3, "some rows rejected, under the threshold: {}", run.stderr);
    let r = run.json();
    let (read, valid, rejected) =
        (r["rows_read"].as_u64().unwrap(), r["rows_valid"].as_u64().unwrap(), r["rows_rejected"].as_u64().unwrap());
    assert_eq!(read, 2000);
    assert_eq!(read, valid + rejected);
    assert!(rejected > 0);
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["bytes_read"].as_u64().unwrap(), std::fs::metadata(&input).unwrap().len());
    assert!(r["seconds"].as_f64().unwrap() > 0.0);
    let e = &r["errors"][0];
    for key in ["line", "field", "rule", "value", "message"] {
        assert!(e.get(key).is_some(), "error entry has `{key}`: {e}");
    }
    let outputs = r["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0]["kind"], "parquet");
    assert_eq!(outputs[1]["kind"], "quarantine");

    let batches = read_parquet(&dir.path().join("out/orders.parquet"));
    assert_eq!(rows(&batches) as u64, valid);
    let schema = batches[0].schema();
    assert_eq!(schema.field_with_name("order_id").unwrap().data_type(), &DataType::Int64);
    assert_eq!(
        schema.field_with_name("order_ts").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(schema.field_with_name("unit_price").unwrap().data_type(), &DataType::Decimal128(12, 2));

    // Every rejected row is in the quarantine with its line and raw text, exactly as in the file.
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let q = jsonl(&dir.path().join("out/orders.rejects.jsonl"));
    assert_eq!(q.len() as u64, rejected);
    for row in &q {
        let line = row["line"].as_u64().unwrap() as usize;
        assert_eq!(row["raw"].as_str().unwrap(), lines[line - 1], "raw text of line {line}");
        assert!(!row["errors"].as_array().unwrap().is_empty());
    }
}

/// `examples/orders-2026-11-20.csv` through `schemas/orders.toml`: every rejected line and why.
const ORDERS_REJECTED: &[(u64, &str, &str)] = &[
    (30, "type-error", "quantity"),
    (341, "constraint-error", "order_id"),
    (397, "constraint-error", "order_id"),
    (470, "type-error", "quantity"),
    (585, "constraint-error", "order_id"),
    (638, "type-error", "quantity"),
    (686, "type-error", "quantity"),
    (838, "type-error", "quantity"),
    (1126, "type-error", "quantity"),
    (1156, "constraint-error", "currency"),
    (1349, "constraint-error", "order_id"),
    (1473, "constraint-error", "order_id"),
    (1600, "constraint-error", "currency"),
    (1680, "constraint-error", "currency"),
];

/// `(line, rule, field)` of each error in a quarantine.
fn rejected(q: &[serde_json::Value]) -> Vec<(u64, String, String)> {
    q.iter()
        .flat_map(|row| {
            row["errors"].as_array().unwrap().iter().map(move |e| {
                (row["line"].as_u64().unwrap(), e["rule"].as_str().unwrap().into(), e["field"].as_str().unwrap().into())
            })
        })
        .collect()
}

fn owned(v: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
    v.iter().map(|(l, r, f)| (*l, r.to_string(), f.to_string())).collect()
}

#[test]
fn the_sample_files_reject_exactly_these_rows_and_load_exactly_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let input = repo().join("examples/orders-2026-11-20.csv");
    let args = ["transform", "-c", &orders_contract(), "-i", path_str(&input), "-o", "o.parquet", "--format", "json"];
    let run = glueless(dir.path(), &args);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let q = jsonl(&dir.path().join("o.rejects.jsonl"));
    assert_eq!(rejected(&q), owned(ORDERS_REJECTED));

    // The valid rows are exactly the file's other lines, in order: their order ids, read from the
    // CSV by the test itself (every sample line is one row), against the Parquet's.
    let text = std::fs::read_to_string(&input).unwrap();
    let bad: Vec<usize> = ORDERS_REJECTED.iter().map(|(l, ..)| *l as usize).collect();
    let want: Vec<i64> = text
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(i, _)| !bad.contains(&(i + 1)))
        .map(|(_, l)| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(want.len(), 1986);
    let b = read_parquet(&dir.path().join("o.parquet"));
    let got: Vec<i64> = b
        .iter()
        .flat_map(|b| b.column_by_name("order_id").unwrap().as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(got, want, "the valid rows, in file order");
    // Pinned, so that a changed sample fails here too, not only a changed engine: the order ids'
    // sum and an order-sensitive fingerprint (h = h * 31 + id, wrapping).
    let fingerprint = got.iter().fold(0u64, |h, &id| h.wrapping_mul(31).wrapping_add(id as u64));
    assert_eq!((got.iter().sum::<i64>(), fingerprint), (1_088_182_550_868_969, 8_427_394_397_689_598_197));
    // The first and last rows, every column.
    let cell = |batch: &arrow::record_batch::RecordBatch, i: usize| -> Vec<String> {
        batch.columns().iter().map(|c| arrow::util::display::array_value_to_string(c, i).unwrap()).collect()
    };
    assert_eq!(
        cell(&b[0], 0),
        ["1", "2024-01-01T00:00:01Z", "1349638", "SKU-174389", "5", "207.34", "JPY", "CH", "paid", "Fragile, glass"]
    );
    let last = b.last().unwrap();
    assert_eq!(
        cell(last, last.num_rows() - 1),
        ["926569680164", "2024-01-01T01:39:57Z", "650541", "SKU-480006", "14", "358.95", "GBP", "FR", "paid", ""]
    );

    // The shipments sample: one bad date on line 6 (the title line counts), and the transform keeps
    // two of the three valid rows.
    let contract = repo().join("schemas/shipments.toml");
    let input = repo().join("examples/shipments-2026-11-20.csv");
    let args = ["transform", "-c", path_str(&contract), "-i", path_str(&input), "-o", "s.parquet", "--format", "json"];
    let run = glueless(dir.path(), &args);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let q = jsonl(&dir.path().join("s.rejects.jsonl"));
    assert_eq!(rejected(&q), owned(&[(6, "type-error", "ship_date")]));
    assert_eq!(rows(&read_parquet(&dir.path().join("s.parquet"))), 2);
}

#[test]
fn validate_writes_nothing_and_counts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let input = repo().join("examples/orders-2026-11-20.csv");
    let run =
        glueless(dir.path(), &["validate", "--contract", &orders_contract(), path_str(&input), "--format", "json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["rows_read"], 2000);
    assert_eq!(r["outputs"].as_array().unwrap().len(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a dry run writes nothing");
}

#[test]
fn exit_0_when_every_row_is_valid_with_crlf_bom_and_quoted_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "\u{feff}{ORDERS_HEADER}\r\n1,2024-01-01T00:00:01Z,7,SKU-000001,2,9.99,EUR,DE,paid,\"two\r\nlines, \"\"quoted\"\"\"\r\n2,2024-01-01T00:00:02Z,8,SKU-000002,1,0.10,USD,US,shipped,\r\n"
    );
    let input = write(dir.path(), "orders.csv", body.as_bytes());
    let run = glueless(
        dir.path(),
        &["transform", "-c", &orders_contract(), "-i", &input, "-o", "o.parquet", "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let b = read_parquet(&dir.path().join("o.parquet"));
    assert_eq!(rows(&b), 2);
    let note = b[0].column_by_name("note").unwrap().as_string::<i32>();
    assert_eq!(note.value(0), "two\r\nlines, \"quoted\"");
    assert!(note.is_null(1), "an empty optional cell is null");
    let ids = b[0].column_by_name("order_id").unwrap().as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![1, 2]);
    assert!(!dir.path().join("o.rejects.jsonl").exists(), "no quarantine without rejected rows");
}

#[test]
fn gzip_and_zstd_inputs_are_chosen_by_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(repo().join("examples/orders-2026-11-20.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz_path = write(dir.path(), "orders.csv.gz", &gz.finish().unwrap());
    let zst_path = write(dir.path(), "orders.csv.zst", &zstd::encode_all(&plain[..], 3).unwrap());
    for (input, out) in [(gz_path, "gz.parquet"), (zst_path, "zst.parquet")] {
        let run =
            glueless(dir.path(), &["transform", "-c", &orders_contract(), "-i", &input, "-o", out, "--format", "json"]);
        assert_eq!(run.code, 3, "{input}: {}", run.stderr);
        let r = run.json();
        assert_eq!(r["rows_read"], 2000, "{input}");
        assert_eq!(rows(&read_parquet(&dir.path().join(out))) as u64, r["rows_valid"].as_u64().unwrap());
    }
}

#[test]
fn truncated_gzip_is_a_clear_failure_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(repo().join("examples/orders-2026-11-20.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let bytes = gz.finish().unwrap();
    let input = write(dir.path(), "cut.csv.gz", &bytes[..bytes.len() / 2]);
    let run = glueless(
        dir.path(),
        &["transform", "-c", &orders_contract(), "-i", &input, "-o", "o.parquet", "--format", "json"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.json()["error"]["message"].as_str().unwrap().contains("cut.csv.gz"));
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn missing_required_column_rejects_the_file_with_one_reason() {
    let dir = tempfile::tempdir().unwrap();
    let header = ORDERS_HEADER.replace(",currency", "");
    let input = write(
        dir.path(),
        "o.csv",
        format!("{header}\n1,2024-01-01T00:00:01Z,7,SKU-000001,2,9.99,DE,paid,\n").as_bytes(),
    );
    let run = glueless(
        dir.path(),
        &["transform", "-c", &orders_contract(), "-i", &input, "-o", "o.parquet", "--format", "json"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["status"], "file_rejected");
    assert_eq!(r["file_problem"]["rule"], "missing-label");
    let msg = r["file_problem"]["message"].as_str().unwrap();
    assert!(msg.contains("`currency`") && msg.contains("orders.toml"), "{msg}");
    assert!(!dir.path().join("o.parquet").exists(), "nothing is written for a rejected file");
}

#[test]
fn too_many_rejected_rows_reject_the_file_and_remove_its_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{ORDERS_HEADER}\n1,2024-01-01T00:00:01Z,7,SKU-000001,2,9.99,EUR,DE,paid,\n2,2024-01-01T00:00:01Z,7,SKU-000001,99,9.99,EUR,DE,paid,\n"
    );
    let input = write(dir.path(), "o.csv", body.as_bytes());
    let run = glueless(
        dir.path(),
        &["transform", "-c", &orders_contract(), "-i", &input, "-o", "o.parquet", "--format", "json"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["file_problem"]["rule"], "rejected-ratio");
    assert_eq!(r["errors"][0]["rule"], "constraint-error");
    assert_eq!(r["errors"][0]["line"], 3);
    assert!(!dir.path().join("o.parquet").exists());
    assert_eq!(jsonl(&dir.path().join("o.rejects.jsonl")).len(), 1, "the quarantine is kept");
}

#[test]
fn contract_errors_exit_2_and_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let contract = write(
        dir.path(),
        "bad.toml",
        b"name = \"x\"\n[schema]\nfields = [{ name = \"a\", type = \"integer\", constraints = { minLenght = 1 } }]\n",
    );
    let input = write(dir.path(), "x.csv", b"a\n1\n");
    let run = glueless(dir.path(), &["validate", "-c", &contract, &input, "--format", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let msg = run.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("bad.toml") && msg.contains("minLenght"), "{msg}");

    let run = glueless(dir.path(), &["transform", "-c", &contract]);
    assert_eq!(run.code, 2, "usage errors exit 2");
}

#[test]
fn a_missing_input_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let run = glueless(dir.path(), &["validate", "-c", &orders_contract(), "nope.csv", "--format", "json"]);
    assert_eq!(run.code, 1);
    assert!(run.json()["error"]["message"].as_str().unwrap().contains("does not exist"));
}

#[test]
fn latin1_with_title_line_and_transform() {
    let dir = tempfile::tempdir().unwrap();
    let contract = repo().join("schemas/shipments.toml");
    let input = repo().join("examples/shipments-2026-11-20.csv");
    let run = glueless(
        dir.path(),
        &["transform", "-c", path_str(&contract), "-i", path_str(&input), "-o", "s.parquet", "--format", "json"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let r = run.json();
    assert_eq!((r["rows_read"].as_u64(), r["rows_rejected"].as_u64()), (Some(4), Some(1)));
    assert_eq!(r["errors"][0]["line"], 6, "lines count the skipped title line");
    let b = read_parquet(&dir.path().join("s.parquet"));
    assert_eq!(rows(&b), 2, "the transform drops the TEST carrier");
    let dest = b[0].column_by_name("destination").unwrap().as_string::<i32>();
    assert_eq!(dest.value(0), "München");
    assert!(b[0].column_by_name("kg_per_parcel").is_some(), "the transform's column is written");
}

#[test]
fn max_part_bytes_splits_the_output_into_complete_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from(ORDERS_HEADER);
    body.push('\n');
    for i in 0..300_000u64 {
        body.push_str(&format!(
            "{i},2024-01-01T00:00:01Z,{},SKU-{:06},3,1.25,EUR,DE,paid,note {i}\n",
            i * 7,
            i % 999_999
        ));
    }
    let input = write(dir.path(), "big.csv", body.as_bytes());
    let run = glueless(
        dir.path(),
        &[
            "transform",
            "-c",
            &orders_contract(),
            "-i",
            &input,
            "-o",
            "parts/o.parquet",
            "--max-part-bytes",
            "200000",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outputs = run.json()["outputs"].as_array().unwrap().clone();
    assert!(outputs.len() > 1, "split into parts: {outputs:?}");
    let mut total = 0;
    for (i, o) in outputs.iter().enumerate() {
        let url = o["url"].as_str().unwrap();
        assert!(url.ends_with(&format!("o.{i:05}.parquet")), "{url}");
        total += rows(&read_parquet(std::path::Path::new(url)));
    }
    assert_eq!(total, 300_000);
}

#[test]
fn version_flag_prints_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let run = glueless(dir.path(), &["--version"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn transform_sql_is_checked_when_the_contract_loads() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "x.csv", b"a\n1\n");
    for (sql, expect) in [("SELECT nope FROM input", "nope"), ("DROP TABLE input", "load.transform")] {
        let contract = write(
            dir.path(),
            "t.toml",
            format!("name = \"t\"\n[schema]\nfields = [{{ name = \"a\", type = \"integer\" }}]\n[load]\ntransform = \"{sql}\"\n")
                .as_bytes(),
        );
        let run =
            glueless(dir.path(), &["transform", "-c", &contract, "-i", &input, "-o", "o.parquet", "--format", "json"]);
        assert_eq!(run.code, 2, "{sql}: {}", run.stderr);
        let msg = run.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("load.transform") && msg.contains(expect), "{sql}: {msg}");
        assert!(!dir.path().join("o.parquet").exists(), "nothing is read or written");
    }
}
