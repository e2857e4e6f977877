//! Property test: random contracts and random rows through the whole [`FileJob`].
//!
//! Each case draws a contract (2 to 6 fields of the types string, integer, number as a float or
//! as `decimal(p, s)`, boolean, date and datetime; random `required`; some `minimum` /
//! `maximum`, `enum` or `maxLength`; sometimes an integer `primaryKey`) and up to 40 rows. A row
//! is either valid, its values drawn to satisfy the contract and spelled in one of the ways the
//! contract accepts (signs, leading zeros, exponents, UTC offsets, quoted or not; strings with
//! delimiters, quotes, line breaks and non-ASCII), or broken in exactly one known way: a bad
//! type, a value out of range, an empty required cell, a wrong cell count, a duplicate primary
//! key, or a stray quote. The CSV (RFC 4180 quoting, LF / CRLF / mixed terminators, with or
//! without a BOM and a final terminator, columns in any order, sometimes padded so that the
//! engine's first read ends inside a later row) goes through `FileJob` on the in-memory store,
//! and the outputs must say exactly which rows were broken:
//!
//! - `rows_read = rows_valid + rows_rejected` = the number of data rows;
//! - the quarantine holds exactly the broken rows, each with its starting physical line (counted
//!   here from the bytes written, independently of the tokenizer), its Frictionless row number,
//!   its raw text, a rule that fits the break, and for a duplicate key the line of the first;
//! - the Parquet holds exactly the valid rows, in file order, with the values drawn, compared
//!   typed: floats bit for bit, decimals unscaled, dates in days, datetimes in microseconds UTC,
//!   strings exactly, NULL for an empty optional cell.
//!
//! - [`contract`]: the contracts drawn, as strategies and as TOML;
//! - [`spell`]: values written as CSV cells;
//! - [`rows`]: the rows drawn, how a row is broken, and the file they make.
//!
//! A failure prints the contract and the CSV, then proptest's shrunk draws.

mod contract;
mod rows;
mod spell;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use contract::{Spec, Ty, Val, same};
use glueless_engine::{Dataset, FileJob, Report, Stores, contract::load_str};
use object_store::{ObjectStoreExt, PutPayload, path::Path as StorePath};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;
use rows::{Case, ExpectedRow, build, case};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::path::Path;

proptest! {
    // 48 cases take about two seconds in a debug build; PROPTEST_CASES does not apply here, so
    // raise `cases` by hand to search longer.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_broken_row_is_quarantined_and_every_valid_row_loads((spec, draws, file) in case()) {
        let case = build(&spec, &draws, &file);
        check(&spec, &case)?;
    }
}

fn check(spec: &Spec, case: &Case) -> Result<(), TestCaseError> {
    let context = || format!("contract:\n{}\ncsv:\n{}", case.toml, short(&String::from_utf8_lossy(&case.csv)));
    let out = run(spec, case)?;
    let r = &out.report;
    let broken: Vec<&ExpectedRow> = case.rows.iter().filter(|x| x.broken.is_some()).collect();
    let valid: Vec<&ExpectedRow> = case.rows.iter().filter(|x| x.broken.is_none()).collect();
    prop_assert!(r.file_problem.is_none(), "file rejected: {:?}\n{}", r.file_problem, context());
    prop_assert_eq!(r.rows_read, case.rows.len() as u64, "rows_read\n{}", context());
    prop_assert_eq!(r.rows_read, r.rows_valid + r.rows_rejected, "the counts add up\n{}", context());
    prop_assert_eq!(r.rows_valid, valid.len() as u64, "rows_valid\n{}", context());
    prop_assert_eq!(r.rows_rejected, broken.len() as u64, "rows_rejected\n{}", context());

    // The quarantine: exactly the broken rows, by line.
    let got_lines: Vec<u64> = out.quarantine.iter().map(|q| q["line"].as_u64().expect("`line`")).collect();
    let want_lines: Vec<u64> = broken.iter().map(|x| x.line).collect();
    prop_assert_eq!(&got_lines, &want_lines, "lines of the rejected rows\n{}", context());
    let row_of_line: HashMap<u64, usize> = case.rows.iter().enumerate().map(|(i, x)| (x.line, i)).collect();
    for (q, want) in out.quarantine.iter().zip(&broken) {
        let (kind, rules) = want.broken.as_ref().expect("broken");
        prop_assert_eq!(q["raw"].as_str(), Some(want.raw.as_str()), "raw text, line {}\n{}", want.line, context());
        // The Frictionless row number: the header is row 1.
        let row = row_of_line[&want.line] as u64 + 2;
        prop_assert_eq!(q["row"].as_u64(), Some(row), "row number, line {}\n{}", want.line, context());
        let errors = q["errors"].as_array().expect("`errors`");
        let got_rules: HashSet<&str> = errors.iter().filter_map(|e| e["rule"].as_str()).collect();
        prop_assert!(
            rules.iter().any(|x| got_rules.contains(x)),
            "line {}, broken by {:?}: rules {:?}, expected one of {:?}\n{}\n{}",
            want.line,
            kind,
            got_rules,
            rules,
            q,
            context()
        );
        if let Some(first) = want.first_line {
            let firsts: Vec<u64> = errors.iter().filter_map(|e| e["first_line"].as_u64()).collect();
            prop_assert_eq!(firsts, vec![first], "first line of the duplicate key, line {}\n{}", want.line, context());
        }
    }

    // The Parquet: exactly the valid rows, typed.
    prop_assert_eq!(out.rows.len(), valid.len(), "Parquet rows\n{}", context());
    for (got, want) in out.rows.iter().zip(&valid) {
        for (fi, f) in spec.fields.iter().enumerate() {
            let ok = match (&got[fi], &want.values[fi]) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            };
            prop_assert!(
                ok,
                "line {}, field `{}`: Parquet has {}, the CSV says {} (raw {})\n{}",
                want.line,
                f.name,
                short(&got[fi]),
                short(&want.values[fi]),
                short(&want.raw),
                context()
            );
        }
    }
    Ok(())
}

struct Outcome {
    report: Report,
    /// Per Parquet row, per contract field.
    rows: Vec<Vec<Option<Val>>>,
    quarantine: Vec<Json>,
}

fn run(spec: &Spec, case: &Case) -> Result<Outcome, TestCaseError> {
    let c = load_str(&case.toml, "property.toml", Path::new("."))
        .map_err(|e| TestCaseError::fail(format!("the contract does not load: {e}\n{}", case.toml)))?;
    let dataset = Dataset::from_contract(c).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    rt.block_on(async {
        let stores = Stores::new();
        let mem = stores.memory();
        mem.put(&StorePath::from("in.csv"), PutPayload::from(case.csv.clone())).await.expect("put");
        let report = FileJob::new(&dataset, stores.resolve("memory://in.csv").expect("memory URL"))
            .output(stores.resolve("memory://out.parquet").expect("memory URL"))
            .rejects(stores.resolve("memory://rejects.jsonl").expect("memory URL"))
            .max_errors(usize::MAX)
            .run()
            .await
            .map_err(|e| TestCaseError::fail(format!("the job failed: {e}")))?;

        let mut rows = Vec::new();
        if let Ok(got) = mem.get(&StorePath::from("out.parquet")).await {
            let bytes = got.bytes().await.expect("read");
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes).expect("Parquet").build().expect("reader") {
                let batch = batch.expect("a batch");
                let cols: Vec<_> = spec
                    .fields
                    .iter()
                    .map(|f| {
                        let col = batch.column_by_name(&f.name).expect("every field is a column");
                        assert_eq!(col.data_type(), &arrow_type(f.ty), "type of column `{}`", f.name);
                        col
                    })
                    .collect();
                for i in 0..batch.num_rows() {
                    rows.push(spec.fields.iter().zip(&cols).map(|(f, c)| read_cell(c.as_ref(), f.ty, i)).collect());
                }
            }
        }
        let mut quarantine = Vec::new();
        if let Ok(got) = mem.get(&StorePath::from("rejects.jsonl")).await {
            let bytes = got.bytes().await.expect("read");
            let text = std::str::from_utf8(&bytes).expect("the quarantine is UTF-8");
            quarantine = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
        }
        Ok::<_, TestCaseError>(Outcome { report, rows, quarantine })
    })
}

fn arrow_type(ty: Ty) -> DataType {
    match ty {
        Ty::Str => DataType::Utf8,
        Ty::Int => DataType::Int64,
        Ty::Float => DataType::Float64,
        Ty::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        Ty::Bool => DataType::Boolean,
        Ty::Date => DataType::Date32,
        Ty::Datetime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

fn read_cell(col: &dyn Array, ty: Ty, i: usize) -> Option<Val> {
    if col.is_null(i) {
        return None;
    }
    Some(match ty {
        Ty::Str => Val::Str(col.as_string::<i32>().value(i).to_string()),
        Ty::Int => Val::Int(col.as_primitive::<Int64Type>().value(i)),
        Ty::Float => Val::Float(col.as_primitive::<Float64Type>().value(i)),
        Ty::Decimal { .. } => Val::Dec(col.as_primitive::<Decimal128Type>().value(i)),
        Ty::Bool => Val::Bool(col.as_boolean().value(i)),
        Ty::Date => Val::Date(col.as_primitive::<Date32Type>().value(i)),
        Ty::Datetime => Val::Ts(col.as_primitive::<TimestampMicrosecondType>().value(i)),
    })
}

/// `{:?}` of `v`, cut short: a padded row holds a megabyte.
fn short<T: std::fmt::Debug + ?Sized>(v: &T) -> String {
    const MAX: usize = 4000;
    let s = format!("{v:?}");
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} more bytes)", &s[..cut], s.len() - cut),
        None => s,
    }
}
