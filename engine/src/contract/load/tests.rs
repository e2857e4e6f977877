use super::fields::{RawConstraints, RawField, TYPED_KEYWORDS};
use super::keys::keys_of;
use super::*;
use crate::contract::model::{
    Dialect, Encoding, ExtraColumns, FieldKind, NumberSyntax, StringFormat, TemporalFormat, Value,
};
use std::path::PathBuf;

const SOURCE: &str = "schemas/t.toml";

fn load(text: &str) -> Result<Contract, ContractError> {
    load_str(text, SOURCE, Path::new("schemas"))
}

/// Loads `text`, expects an error at `key`, and checks that its message has every `needle`.
fn fails(text: &str, key: &str, needles: &[&str]) -> ContractError {
    let err = load(text).expect_err("contract should be rejected");
    assert_eq!(err.file, SOURCE, "{err}");
    assert_eq!(err.key, key, "{err}");
    for needle in needles {
        assert!(err.message.contains(needle), "`{needle}` not in: {err}");
    }
    err
}

/// A contract whose only field, `f`, has the TOML keys `field`.
fn one_field(field: &str) -> String {
    format!("name = \"t\"\n[[schema.fields]]\nname = \"f\"\n{field}\n")
}

#[test]
fn bench_orders_contract_loads() {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../shared/bench/orders.toml");
    let c = load_path(&path).unwrap();
    assert_eq!(c.name, "orders");
    assert_eq!(c.table, "fact_orders");
    assert_eq!(c.match_glob.as_deref(), Some("**/orders*.csv*"));
    assert_eq!(c.dialect, Dialect::default());
    let s = &c.schema;
    assert_eq!(s.fields.len(), 10);
    assert_eq!(s.primary_key, vec![0]);
    assert_eq!(s.missing_values, vec![String::new()]);
    assert!(s.fields[0].constraints.required);
    assert!(!s.fields[9].constraints.required);
    let qty = &s.fields[4].constraints;
    assert_eq!((qty.minimum.clone(), qty.maximum.clone()), (Some(Value::Int(1)), Some(Value::Int(20))));
    assert!(matches!(s.fields[5].kind, FieldKind::Number { decimal: Some((12, 2)), .. }));
    assert!(matches!(s.fields[1].kind, FieldKind::Datetime { format: TemporalFormat::Default }));
    let currencies = s.fields[6].constraints.enumeration.as_ref().unwrap();
    assert_eq!(currencies.len(), 8);
    assert_eq!(currencies[0], Value::Str("USD".into()));
    assert_eq!(c.load.version_column, Some(1));
    assert_eq!(c.load.max_rejected_ratio, 0.01);
    assert_eq!(c.load.extra_columns, ExtraColumns::RejectFile);
}

#[test]
fn defaults_fill_a_minimal_contract() {
    let c = load(&one_field("")).unwrap();
    assert_eq!(c.table, "t");
    assert_eq!(c.match_glob, None);
    assert_eq!(c.source, SOURCE);
    assert_eq!(c.dialect, Dialect::default());
    assert!(matches!(c.schema.fields[0].kind, FieldKind::String { format: StringFormat::Default }));
    assert!(c.schema.primary_key.is_empty());
    assert_eq!(c.load.max_rejected_ratio, 0.0);
    assert_eq!(c.load.transform, None);
}

#[test]
fn dialect_and_load_options_are_read() {
    let text = r#"
name = "t"
table = "raw.events"
description = "ignored"
[dialect]
delimiter = "\t"
quote = "'"
header = false
encoding = "ISO-8859-1"
skip_lines = 2
[schema]
[[schema.fields]]
name = "n"
type = "number"
decimalChar = ","
groupChar = "."
bareNumber = false
[load]
version_column = "n"
max_rejected_ratio = 1
extra_columns = "ignore"
transform = """

SELECT * FROM input
"""
"#;
    let c = load(text).unwrap();
    assert_eq!(c.table, "raw.events");
    let d = Dialect { delimiter: b'\t', quote: b'\'', header: false, encoding: Encoding::Latin1, skip_lines: 2 };
    assert_eq!(c.dialect, d);
    let syntax = NumberSyntax { bare_number: false, group_char: Some('.'), decimal_char: ',' };
    assert!(matches!(&c.schema.fields[0].kind, FieldKind::Number { number, decimal: None } if *number == syntax));
    assert_eq!(c.load.version_column, Some(0));
    assert_eq!(c.load.max_rejected_ratio, 1.0);
    assert_eq!(c.load.extra_columns, ExtraColumns::Ignore);
    assert_eq!(c.load.transform.as_deref(), Some("SELECT * FROM input"));
    let empty = load(&format!("{}\n[load]\ntransform = \"  \"", one_field(""))).unwrap();
    assert_eq!(empty.load.transform, None);
}

#[test]
fn field_keywords_are_typed() {
    let text = r#"
name = "t"
[schema]
primaryKey = "id"
missingValues = ["", "NA"]
[[schema.fields]]
name = "id"
type = "integer"
title = "Id"
example = 3
[[schema.fields]]
name = "ok"
type = "boolean"
trueValues = ["y"]
falseValues = ["n"]
constraints = { enum = ["y", true] }
[[schema.fields]]
name = "day"
type = "date"
format = "%d/%m/%Y"
constraints = { minimum = 2024-01-01, maximum = "31/12/2024" }
[[schema.fields]]
name = "at"
type = "time"
format = "fmt:%H.%M"
[[schema.fields]]
name = "code"
constraints = { pattern = "[A-Z]{3}", minLength = 3, maxLength = 3, unique = true }
"#;
    let c = load(text).unwrap();
    let f = &c.schema.fields;
    assert!(f[0].constraints.required, "primary key fields are required");
    assert_eq!(c.schema.missing_values, vec!["".to_string(), "NA".to_string()]);
    assert_eq!(f[1].constraints.enumeration, Some(vec![Value::Bool(true), Value::Bool(true)]));
    assert!(matches!(&f[2].kind, FieldKind::Date { format: TemporalFormat::Pattern(p) } if p == "%d/%m/%Y"));
    assert_eq!(f[2].constraints.minimum, Some(Value::Date(19723)));
    assert_eq!(f[2].constraints.maximum, Some(Value::Date(20088)));
    assert!(matches!(&f[3].kind, FieldKind::Time { format: TemporalFormat::Pattern(p) } if p == "%H.%M"));
    let code = &f[4].constraints;
    let re = code.pattern.as_ref().unwrap();
    assert!(re.is_match("ABC") && !re.is_match("ABCD") && !re.is_match("xABC"), "anchored");
    assert_eq!(code.pattern_src.as_deref(), Some("[A-Z]{3}"));
    assert_eq!((code.min_length, code.max_length, code.unique), (Some(3), Some(3), true));
}

#[test]
fn schema_from_a_json_file_beside_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{
        "fields": [
            {"name": "id", "type": "integer", "constraints": {"minimum": 1}},
            {"name": "price", "type": "number", "decimal": [10, 2], "constraints": {"maximum": "99.50"}}
        ],
        "primaryKey": ["id"],
        "missingValues": ["-"],
        "title": "Prices"
    }"#;
    std::fs::write(dir.path().join("prices.schema.json"), json).unwrap();
    let contract = dir.path().join("prices.toml");
    std::fs::write(&contract, "name = \"prices\"\nschema = \"prices.schema.json\"\n").unwrap();
    let c = load_path(&contract).unwrap();
    assert_eq!(c.source, contract.display().to_string());
    assert_eq!(c.schema.primary_key, vec![0]);
    assert_eq!(c.schema.missing_values, vec!["-".to_string()]);
    assert_eq!(c.schema.fields[0].constraints.minimum, Some(Value::Int(1)));
    assert_eq!(c.schema.fields[1].constraints.maximum, Some(Value::Decimal(9950)));

    let bad = r#"{"fields": [{"name": "id", "type": "integer", "constraints": {"minLenght": 1}}]}"#;
    std::fs::write(dir.path().join("prices.schema.json"), bad).unwrap();
    let err = load_path(&contract).unwrap_err();
    assert!(err.file.ends_with("prices.schema.json"), "{err}");
    assert_eq!(err.key, "fields[0].constraints.minLenght");

    std::fs::write(&contract, "name = \"prices\"\nschema = \"nope.json\"\n").unwrap();
    let err = load_path(&contract).unwrap_err();
    assert!(err.file.ends_with("nope.json") && err.message.contains("relative to the contract"), "{err}");
}

#[test]
fn unreadable_or_malformed_files() {
    let err = load_path(Path::new("/no/such/orders.toml")).unwrap_err();
    assert_eq!(err.file, "/no/such/orders.toml");
    assert!(err.message.contains("--contract") && err.message.contains("contracts.dir"), "{err}");
    let err = fails("name = \"t\"\n[schema\n", "", &["invalid TOML", "line 2"]);
    assert!(!err.to_string().contains("``"), "no empty key part: {err}");
    fails("table = \"x\"\n[schema]\n", "name", &["missing"]);
    fails("name = \"t\"\n", "schema", &["missing", "[schema]"]);
    fails("name = \"t\"\nschema = 3\n", "schema", &["table"]);
    fails("name = \"t\"\n[schema]\n", "schema.fields", &["no fields"]);
}

#[test]
fn display_names_file_and_key() {
    let err = fails("name = \"my-data\"\n[schema]\n", "name", &["letter", "_"]);
    assert!(err.to_string().starts_with("schemas/t.toml: `name`: `my-data` is not a valid"), "{err}");
    fails("name = \"t\"\ntable = \"a.b.c\"\n[[schema.fields]]\nname = \"f\"", "table", &["schema.table"]);
}

#[test]
fn unknown_keywords_anywhere_name_their_path() {
    let err = fails(
        "name = \"t\"\nnmae = 1\n[schema]\n",
        "nmae",
        &["unknown keyword `nmae`", "did you mean `name`?", "fix the spelling"],
    );
    assert!(err.message.contains("dialect, load, match, name, schema, table"), "{err}");
    fails(
        &format!("{}[dialect]\nskipLines = 1\n", one_field("")),
        "dialect.skipLines",
        &["did you mean `skip_lines`?"],
    );
    fails("name = \"t\"\n[schema]\nprimary_key = \"f\"\n", "schema.primary_key", &["did you mean `primaryKey`?"]);
    fails(&one_field("typ = \"integer\""), "schema.fields[0].typ", &["did you mean `type`?"]);
    fails(
        &one_field("constraints = { minLenght = 1 }"),
        "schema.fields[0].constraints.minLenght",
        &["did you mean `minLength`?", "required, unique"],
    );
    fails(
        &format!("{}[load]\nmax_reject_ratio = 0.1\n", one_field("")),
        "load.max_reject_ratio",
        &["max_rejected_ratio"],
    );
}

#[test]
fn known_but_unsupported_keywords_say_why() {
    fails(
        "name = \"t\"\n[schema]\nforeignKeys = []\n",
        "schema.foreignKeys",
        &["`foreignKeys` is not supported by glueless (", "other datasets"],
    );
    fails(
        &one_field("constraints = { exclusiveMinimum = 1 }"),
        "schema.fields[0].constraints.exclusiveMinimum",
        &["not supported", "`minimum`"],
    );
    fails(
        &format!("{}[dialect]\ndouble_quote = false\n", one_field("")),
        "dialect.double_quote",
        &["`doubleQuote` is not supported"],
    );
}

#[test]
fn unsupported_and_unknown_types() {
    fails(
        &one_field("type = \"geopoint\""),
        "schema.fields[0].type",
        &["`geopoint`", "field `f`", "not supported", "string, integer, number, boolean, date, time, datetime, year"],
    );
    fails(&one_field("type = \"interger\""), "schema.fields[0].type", &["unknown type", "did you mean `integer`?"]);
}

#[test]
fn keywords_must_fit_the_field_type() {
    let cases = [
        ("type = \"integer\"\ntrueValues = [\"y\"]", "schema.fields[0].trueValues", "boolean"),
        ("type = \"integer\"\nconstraints = { minLength = 1 }", "schema.fields[0].constraints.minLength", "string"),
        ("type = \"integer\"\ndecimal = [10, 2]", "schema.fields[0].decimal", "number"),
        ("type = \"boolean\"\ngroupChar = \",\"", "schema.fields[0].groupChar", "integer, number"),
        ("constraints = { maximum = \"z\" }", "schema.fields[0].constraints.maximum", "integer, number, date"),
        ("type = \"date\"\nconstraints = { pattern = \"x\" }", "schema.fields[0].constraints.pattern", "string"),
    ];
    for (field, key, fits) in cases {
        fails(&one_field(field), key, &["field `f` has type", fits, "remove it"]);
    }
    fails(&one_field("type = \"integer\"\nformat = \"hex\""), "schema.fields[0].format", &["`hex`", "default"]);
    fails(&one_field("format = \"url\""), "schema.fields[0].format", &["email, uri, uuid"]);
    fails(&one_field("type = \"date\"\nformat = \"dd/mm/yyyy\""), "schema.fields[0].format", &["strptime"]);
}

#[test]
fn bad_values_of_keywords() {
    fails(
        &one_field("type = \"integer\"\nconstraints = { enum = [1, \"two\"] }"),
        "schema.fields[0].constraints.enum[1]",
        &["\"two\"", "not a valid integer", "field `f`"],
    );
    fails(
        &one_field("type = \"integer\"\nconstraints = { minimum = 5, maximum = 1 }"),
        "schema.fields[0].constraints.minimum",
        &["above maximum"],
    );
    fails(
        &one_field("constraints = { minLength = 5, maxLength = 1 }"),
        "schema.fields[0].constraints.minLength",
        &["above maxLength"],
    );
    fails(&one_field("constraints = { enum = [] }"), "schema.fields[0].constraints.enum", &["empty"]);
    fails(
        &one_field("constraints = { pattern = \"(\" }"),
        "schema.fields[0].constraints.pattern",
        &["invalid regular expression"],
    );
    fails(
        &one_field("constraints = { required = \"yes\" }"),
        "schema.fields[0].constraints.required",
        &["expected a boolean"],
    );
    fails(&one_field("type = \"number\"\ndecimal = [39, 2]"), "schema.fields[0].decimal", &["1 to 38"]);
    fails(&one_field("type = \"number\"\ndecimal = [5, 6]"), "schema.fields[0].decimal", &["scale"]);
    fails(&one_field("type = \"number\"\ngroupChar = \",,\""), "schema.fields[0].groupChar", &["one character"]);
    fails(
        &one_field("type = \"number\"\ndecimalChar = \",\"\ngroupChar = \",\""),
        "schema.fields[0].groupChar",
        &["must differ"],
    );
    fails(
        &one_field("type = \"boolean\"\ntrueValues = [\"1\"]\nfalseValues = [\"1\"]"),
        "schema.fields[0].falseValues",
        &["both"],
    );
    fails(
        "name = \"t\"\n[[schema.fields]]\nname = \"a\"\n[[schema.fields]]\nname = \"A\"\n",
        "schema.fields[1].name",
        &["fields[0]", "unique"],
    );
    fails("name = \"t\"\n[[schema.fields]]\ntype = \"integer\"\n", "schema.fields[0].name", &["missing"]);
}

#[test]
fn primary_key_names_fields() {
    let text = "name = \"t\"\n[schema]\nprimaryKey = [\"f\", \"g\"]\n[[schema.fields]]\nname = \"f\"\n[[schema.fields]]\nname = \"h\"\n";
    fails(text, "schema.primaryKey", &["no field `g`", "the fields are: f, h"]);
    fails(&text.replace("\"g\"", "\"f\""), "schema.primaryKey", &["twice"]);
    fails(&text.replace("[\"f\", \"g\"]", "[]"), "schema.primaryKey", &["non-empty"]);
}

#[test]
fn dialect_errors() {
    let with = |d: &str| format!("{}[dialect]\n{d}\n", one_field(""));
    fails(&with("encoding = \"utf-16\""), "dialect.encoding", &["`utf-16`", "\"utf-8\"", "\"latin-1\""]);
    fails(&with("delimiter = \";;\""), "dialect.delimiter", &["one ASCII character"]);
    fails(&with("delimiter = \"\\n\""), "dialect.delimiter", &["line end"]);
    fails(&with("delimiter = '\"'"), "dialect.quote", &["must differ"]);
    fails(&with("header = \"yes\""), "dialect.header", &["expected a boolean"]);
    fails(&with("skip_lines = -1"), "dialect.skip_lines", &["-1"]);
    fails("name = \"t\"\ndialect = 1\n[schema]\n", "dialect", &["expected a map"]);
}

#[test]
fn load_errors() {
    let with = |l: &str| format!("{}[load]\n{l}\n", one_field(""));
    fails(
        &with("version_column = \"f\""),
        "load.version_column",
        &["field `f`", "integer, number, date, time, datetime or year"],
    );
    fails(&with("version_column = \"g\""), "load.version_column", &["no field `g`"]);
    fails(&with("max_rejected_ratio = 1.5"), "load.max_rejected_ratio", &["from 0"]);
    fails(&with("max_rejected_ratio = nan"), "load.max_rejected_ratio", &["finite"]);
    fails(&with("extra_columns = \"keep\""), "load.extra_columns", &["\"reject_file\"", "\"ignore\""]);
}

#[test]
fn raw_struct_keys_come_from_serde() {
    let keys = keys_of::<RawField>();
    assert!(keys.contains(&"trueValues") && keys.contains(&"type") && keys.contains(&"constraints"));
    assert!(keys_of::<RawConstraints>().contains(&"enum"));
    for (key, _) in TYPED_KEYWORDS {
        assert!(
            keys.contains(key) || keys_of::<RawConstraints>().contains(key),
            "typed keyword `{key}` is not a raw key"
        );
    }
}

/// Issue 11: names no warehouse takes are contract errors, not failed loads.
#[test]
fn control_characters_in_names_are_refused() {
    for (name, code) in
        [("a\\u0000b", "U+0000"), ("col\\u001b[31m", "U+001B"), ("x\\ny", "U+000A"), ("\\u007f", "U+007F")]
    {
        let text = format!("name = \"t\"\n[[schema.fields]]\nname = \"{name}\"\n");
        let err = fails(&text, "schema.fields[0].name", &[code, "rename the field"]);
        assert!(!err.to_string().chars().any(crate::text::is_unsafe_char), "{err:?}");
    }
    // Dataset and table names are identifiers; their messages show what was given, inert.
    let err = fails("name = \"a\\u0000\"\n[[schema.fields]]\nname = \"f\"\n", "name", &["a\\u{0}"]);
    assert!(!err.to_string().contains('\0'));
    fails("name = \"t\"\ntable = \"x\\u0007\"\n[[schema.fields]]\nname = \"f\"\n", "table", &["x\\u{7}"]);
    // Also from a Table Schema JSON file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.json"), r#"{"fields": [{"name": "ok"}, {"name": "b\u0000d"}]}"#).unwrap();
    let contract = dir.path().join("t.toml");
    std::fs::write(&contract, "name = \"t\"\nschema = \"s.json\"\n").unwrap();
    let err = load_path(&contract).unwrap_err();
    assert!(err.file.ends_with("s.json") && err.key == "fields[1].name" && err.message.contains("U+0000"), "{err}");
}
