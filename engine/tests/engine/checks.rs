//! The row checks: which errors a row gets, in which order, and which rows load.
//!
//! The validator skips the constraint checks of a field that has none on its value (enum,
//! bounds, lengths, pattern) and writes each parsed cell in place; these tests hold what a row
//! is told whatever path its fields take: one error per failing field, in field order, the
//! constraint before the warehouse limit, and the valid rows' values unchanged.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use glueless_engine::contract::load_str;
use glueless_engine::decode::tokenizer::{Records, Tokenizer};
use glueless_engine::validate::limits::WarehouseLimits;
use glueless_engine::validate::{Counts, RejectedRow, Validator};
use std::sync::Arc;

/// Validates `csv` (header first) against the `[schema]` body `schema`, checked for Redshift.
fn validate(schema: &str, csv: &str) -> (Counts, Vec<RejectedRow>, Vec<RecordBatch>) {
    let toml = format!("name = \"t\"\n[load]\nmax_rejected_ratio = 1.0\n[schema]\n{schema}");
    let contract = load_str(&toml, "t.toml", std::path::Path::new(".")).expect("contract");
    let mut v = Validator::new(Arc::new(contract));
    v.set_warehouse_limits(Some(WarehouseLimits::redshift()));
    let mut recs = Records::default();
    Tokenizer::new(b',', b'"').parse(csv.as_bytes(), true, &mut recs);
    let header = recs.records.remove(0);
    let names: Vec<String> = recs.fields_of(&header).iter().map(|f| csv[f.start..f.end].to_string()).collect();
    v.bind_header(&names).expect("header binds");
    let (mut batches, mut rejects) = (Vec::new(), Vec::new());
    v.push_records(csv.as_bytes(), &recs, &mut batches, &mut rejects);
    batches.extend(v.finish());
    (v.counts(), rejects, batches)
}

/// One field of each kind of check, then two fields with no constraints on their value.
const EVERY_CHECK: &str = r#"fields = [
  { name = "a", type = "integer" },
  { name = "b", type = "string", constraints = { required = true } },
  { name = "c", type = "string", constraints = { enum = ["USD", "EUR"] } },
  { name = "d", type = "integer", constraints = { minimum = 1 } },
  { name = "e", type = "integer", constraints = { maximum = 20 } },
  { name = "f", type = "string", constraints = { minLength = 3 } },
  { name = "g", type = "string", constraints = { maxLength = 2 } },
  { name = "h", type = "string", constraints = { pattern = "[a-z]+" } },
  { name = "i", type = "number" },
  { name = "j", type = "integer" },
]
"#;

#[test]
fn a_row_failing_every_check_gets_one_error_per_field_in_field_order() {
    let csv = "a,b,c,d,e,f,g,h,i,j\n\
               x,,GBP,0,21,ab,abc,A1,NaN,7\n\
               1,b,EUR,1,20,abc,ab,az,2.5,-8\n";
    let (counts, rejects, batches) = validate(EVERY_CHECK, csv);
    assert_eq!(counts, Counts { rows_read: 2, rows_valid: 1, rows_rejected: 1 });
    // (field, rule, constraint, value) of each error.
    let got: Vec<[Option<&str>; 4]> = rejects[0]
        .errors
        .iter()
        .map(|e| [e.field.as_deref(), Some(e.rule), e.constraint, e.value.as_deref()])
        .collect();
    assert_eq!(
        got,
        vec![
            [Some("a"), Some("type-error"), None, Some("x")],
            [Some("b"), Some("constraint-error"), Some("required"), Some("")],
            [Some("c"), Some("constraint-error"), Some("enum"), Some("GBP")],
            [Some("d"), Some("constraint-error"), Some("minimum"), Some("0")],
            [Some("e"), Some("constraint-error"), Some("maximum"), Some("21")],
            [Some("f"), Some("constraint-error"), Some("minLength"), Some("ab")],
            [Some("g"), Some("constraint-error"), Some("maxLength"), Some("abc")],
            [Some("h"), Some("constraint-error"), Some("pattern"), Some("A1")],
            // No constraint on `i`'s value, but Redshift holds no NaN.
            [Some("i"), Some("constraint-error"), Some("warehouse"), Some("NaN")],
        ]
    );
    assert_eq!(rejects[0].errors[2].message, "`GBP` in `c` is not one of: USD, EUR");
    // The valid row's values, typed: a cell parsed after a failing row is its own.
    let b = &batches[0];
    assert_eq!(b.num_rows(), 1);
    assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(b.column(2).as_string::<i32>().value(0), "EUR");
    assert_eq!(b.column(8).as_primitive::<Float64Type>().value(0), 2.5);
    assert_eq!(b.column(9).as_primitive::<Int64Type>().value(0), -8);
}

#[test]
fn a_constraint_error_comes_before_the_warehouse_limit_of_the_same_cell() {
    // `s` fails minLength and holds a NUL, which Redshift cannot store: the field gets one
    // error, the constraint's; `t`, with no constraint, gets the warehouse's.
    let schema = r#"fields = [
  { name = "s", type = "string", constraints = { minLength = 5 } },
  { name = "t", type = "string" },
]
"#;
    let csv = "s,t\na\u{0}b,c\u{0}d\nabcde,ok\n";
    let (counts, rejects, batches) = validate(schema, csv);
    assert_eq!((counts.rows_valid, counts.rows_rejected), (1, 1));
    let got: Vec<(Option<&str>, Option<&str>)> =
        rejects[0].errors.iter().map(|e| (e.field.as_deref(), e.constraint)).collect();
    assert_eq!(got, vec![(Some("s"), Some("minLength")), (Some("t"), Some("warehouse"))]);
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "abcde");
    assert!(batches[0].column(1).is_valid(0));
}
