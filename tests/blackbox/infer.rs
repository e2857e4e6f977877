//! `glueless infer` as a user runs it: the printed TOML loads, and `glueless validate` with it
//! rejects no row of the files it was drafted from; `--format json` carries the same contract
//! and the evidence; hostile headers print valid, inert TOML; the exit codes.

use crate::support::*;
use std::path::Path;

/// Runs `glueless infer ARGS` in `dir`, saves the TOML it prints as `dir/draft.toml`, and
/// returns the run.
fn infer(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["infer"];
    all.extend_from_slice(args);
    let run = glueless(dir, &all);
    assert_eq!(run.code, 0, "infer: {}", run.stderr);
    std::fs::write(dir.join("draft.toml"), &run.stdout).unwrap();
    run
}

/// `glueless validate --contract draft.toml FILE --format json`: the report.
fn validate(dir: &Path, file: &str) -> serde_json::Value {
    let run = glueless(dir, &["validate", "--contract", "draft.toml", file, "--format", "json", "--quiet"]);
    let report = run.json();
    assert_eq!(report["exit_code"], run.code, "{}", run.stderr);
    report
}

/// No control character but the line end, anywhere.
fn inert(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn the_drafted_contract_validates_the_examples_with_no_row_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for example in ["orders-2026-11-20.csv", "shipments-2026-11-20.csv"] {
        let file = repo().join("examples").join(example);
        let run = infer(dir.path(), &[path_str(&file)]);
        assert!(run.stdout.starts_with("# Drafted by `glueless infer`"), "{}", run.stdout);
        let report = validate(dir.path(), path_str(&file));
        assert_eq!(report["status"], "valid", "{example}: {report}\n{}", run.stdout);
        assert!(report["rows_read"].as_u64().unwrap() >= 3);
        assert_eq!(report["rows_rejected"], 0);
    }
    // The orders: what a reader would expect, from the sample alone.
    let run = infer(dir.path(), &[path_str(&repo().join("examples/orders-2026-11-20.csv"))]);
    let t = &run.stdout;
    assert!(t.contains("name = \"orders\""), "{t}");
    // Five rows lack an order_id, so it is no key; the guess falls on a column that is one.
    assert!(t.contains("5 missing as \"\", integer") && !t.contains("primaryKey = [\"order_id\"]"), "{t}");
    assert!(t.contains("name = \"status\"\ntype = \"string\"\nconstraints = { required = true, enum = ["), "{t}");
    // `two` among the quantities: text, so that the round trip holds.
    assert!(t.contains("name = \"quantity\"\ntype = \"string\""), "{t}");
    assert!(t.contains("name = \"order_ts\"\ntype = \"datetime\""), "{t}");
    assert!(t.contains("name = \"unit_price\"\ntype = \"number\"\ndecimal = [18, 2]"), "{t}");
}

#[test]
fn a_folder_of_files_is_one_dataset_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("landing");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("sales-2026-01.csv"),
        "id,zip,amount,day\n1,01234,NA,01/31/2026\n2,99999,12.5,02/01/2026\n",
    )
    .unwrap();
    std::fs::write(data.join("sales-2026-02.csv"), "id,zip,amount,day\n3,00501,3,03/01/2026\n4,10001,NA,03/02/2026\n")
        .unwrap();
    std::fs::write(data.join("README.md"), "not data").unwrap();
    let run = infer(dir.path(), &["landing", "--table", "analytics.fact_sales"]);
    let t = &run.stdout;
    assert!(t.contains("name = \"sales\"") && t.contains("table = \"analytics.fact_sales\""), "{t}");
    assert!(t.contains("missingValues = [\"\", \"NA\"]"), "{t}");
    assert!(t.contains("name = \"zip\"\ntype = \"string\""), "leading zeros stay text: {t}");
    assert!(t.contains("format = \"%m/%d/%Y\""), "{t}");
    assert!(run.stderr.contains("from 2 file(s), 4 rows"), "{}", run.stderr);
    for f in ["landing/sales-2026-01.csv", "landing/sales-2026-02.csv"] {
        assert_eq!(validate(dir.path(), f)["rows_rejected"], 0, "{f}");
    }
}

#[test]
fn json_carries_the_same_contract_and_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.csv"),
        "species,bill,sex,seen\nAdelie,39.1,male,Jan 1 2007\nGentoo,NA,NA,Feb 2 2008\nAdelie,40.3,female,Mar 3 2009\n",
    )
    .unwrap();
    let run = glueless(dir.path(), &["infer", "p.csv", "--format", "json", "--name", "penguins", "--bounds"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!((j["status"].as_str(), j["exit_code"].as_i64()), (Some("drafted"), Some(0)));
    // The contract in the JSON is the TOML's tree, key for key.
    let from_toml: toml::Table = toml::from_str(j["toml"].as_str().unwrap()).expect("the TOML parses");
    let from_toml = serde_json::to_value(from_toml).unwrap();
    assert_eq!(from_toml, j["contract"], "{j:#}");
    assert_eq!(j["contract"]["name"], "penguins");
    let bill = &j["contract"]["schema"]["fields"][1];
    assert_eq!(bill["constraints"], serde_json::json!({ "minimum": "39.1", "maximum": "40.3" }));
    // The evidence: per field, what was seen and why.
    let e = &j["evidence"]["fields"][1];
    assert_eq!((e["name"].as_str(), e["evidence"]["values"].as_u64()), (Some("bill"), Some(2)));
    assert_eq!(e["evidence"]["missing"], serde_json::json!({ "NA": 1 }));
    assert!(e["evidence"]["reason"].as_str().unwrap().starts_with("decimal"), "{e}");
    assert_eq!(j["evidence"]["rows"], 3);
    assert_eq!(j["evidence"]["files"][0]["complete"], true);
    assert!(j["evidence"]["dialect"].as_array().unwrap().iter().any(|d| d.as_str().unwrap().starts_with("delimiter")));
    assert!(j["evidence"]["primary_key"]["reason"].is_string());
    // A field's evidence carries its Table Schema type keys too.
    let seen = &j["evidence"]["fields"][3];
    assert_eq!((seen["type"].as_str(), seen["format"].as_str()), (Some("date"), Some("%b %d %Y")), "{seen}");
}

#[test]
fn hostile_headers_print_valid_inert_toml_that_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    // Quotes, `]]`, TOML syntax, backslashes: kept as names.
    let kept = "\"say \"\"hi\"\"\",]],\"[[schema.fields]]\",a\\b,\"x = 1 # y\"\n1,2,3,4,5\n6,7,8,9,10\n";
    std::fs::write(dir.path().join("kept.csv"), kept).unwrap();
    let run = infer(dir.path(), &["kept.csv"]);
    let c = glueless_engine::contract::load_path(&dir.path().join("draft.toml")).expect("loads");
    let names: Vec<&str> = c.schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["say \"hi\"", "]]", "[[schema.fields]]", "a\\b", "x = 1 # y"], "{}", run.stdout);
    assert_eq!(validate(dir.path(), "kept.csv")["rows_rejected"], 0);
    // Empty, duplicate, newline and escape-sequence names: bound by position, printed inert.
    let odd = ",id,ID,\"two\nlines\",\"\u{1b}]0;owned\u{7}\u{1b}[2J\",\"\u{202e}evil\"\n1,2,3,4,5,6\n";
    std::fs::write(dir.path().join("odd.csv"), odd).unwrap();
    let run = infer(dir.path(), &["odd.csv"]);
    assert!(inert(&run.stdout) && inert(&run.stderr), "{:?}", run.stdout);
    assert!(!run.stdout.contains('\u{202e}'), "no bidi override reaches the terminal");
    let c = glueless_engine::contract::load_path(&dir.path().join("draft.toml")).expect("loads");
    assert!(!c.dialect.header && c.dialect.skip_lines == 2, "{}", run.stdout);
    assert_eq!(c.schema.fields.len(), 6);
    assert_eq!(validate(dir.path(), "odd.csv")["rows_rejected"], 0);
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.csv"), "").unwrap();
    std::fs::write(d.join("a.csv"), "id,v\n1,2\n").unwrap();
    std::fs::write(d.join("b.csv"), "id,w\n1,2\n").unwrap();
    // Nothing to infer from, files that disagree, bad options: 2, nothing printed on stdout.
    for args in [
        &["infer", "empty.csv"][..],
        &["infer", "a.csv", "b.csv"],
        &["infer", "a.csv", "--sample-mb", "0"],
        &["infer", "a.csv", "--name", "not a name"],
        &["infer", "a.csv", "--full", "--sample-mb", "3"],
        &["infer"],
    ] {
        let run = glueless(d, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // A file that cannot be read: 1, and with --format json one error object.
    let run = glueless(d, &["infer", "missing.csv", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let j = run.json();
    assert_eq!((j["status"].as_str(), j["exit_code"].as_i64()), (Some("error"), Some(1)));
    assert!(j["error"]["message"].as_str().unwrap().contains("missing.csv"), "{j}");
    let run = glueless(d, &["infer", "a.csv", "b.csv", "--format", "json"]);
    assert_eq!(run.json()["error"]["kind"], "usage");
    assert!(run.stderr.contains("differ in their header"), "{}", run.stderr);
}

/// An `s3://` object, gzipped, read through the emulator with the real SDK path: the key's
/// `.gz` decides the decompression, and the draft validates the same object.
#[test]
fn an_s3_object_is_drafted_from_its_key() {
    use object_store::{ObjectStoreExt, PutPayload, path::Path as ObjPath};
    use std::io::Write;
    let bucket = make_bucket("infer");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"id;amount;day\n1;2,5;31.01.2026\n2;NA;01.02.2026\n").unwrap();
    let key = "landing/refunds/2026-02-01.csv.gz";
    crate::s3::rt()
        .block_on(crate::s3::store(&bucket).put(&ObjPath::from(key), PutPayload::from(gz.finish().unwrap())))
        .unwrap();
    let url = format!("s3://{bucket}/{key}");
    let run = crate::s3::glueless_s3(&["infer", &url, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["contract"]["name"], "refunds");
    assert_eq!(j["contract"]["dialect"]["delimiter"], ";");
    assert_eq!(j["evidence"]["files"][0]["compression"], "gzip");
    assert_eq!(j["contract"]["schema"]["fields"][2]["format"], "%d.%m.%Y");
}
