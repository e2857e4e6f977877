//! The draft as a contract: one JSON tree ([`contract_json`]), and the same tree written as
//! commented TOML ([`toml`]). Every string goes through [`toml_string`], so a header cell with
//! quotes, backslashes, `]]` or control characters is a valid TOML string that loads back to
//! the same text, and comments are [`inert`] (no control character reaches a terminal).

use super::types::{Kind, group};
use super::{Draft, DraftField};
use crate::text::inert;
use serde_json::{Map, Value as Json, json};
use std::fmt::Write;

/// A TOML basic string holding exactly `s`: `"` and `\` escaped, and every control or
/// otherwise unsafe character ([`crate::text::is_unsafe_char`]) as a `\u` escape.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if crate::text::is_unsafe_char(c) => {
                let n = c as u32;
                if n > 0xFFFF {
                    let _ = write!(out, "\\U{n:08X}");
                } else {
                    let _ = write!(out, "\\u{n:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Table Schema keys of a type.
fn kind_json(kind: &Kind) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind.type_name()));
    match kind {
        Kind::Date(p) | Kind::Datetime(p) | Kind::Time(p) if p != "default" => {
            m.insert("format".into(), json!(p));
        }
        Kind::Decimal { precision, scale } => {
            m.insert("decimal".into(), json!([precision, scale]));
        }
        Kind::Boolean { true_values, false_values } => {
            m.insert("trueValues".into(), json!(true_values));
            m.insert("falseValues".into(), json!(false_values));
        }
        _ => {}
    }
    m
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        kind_json(self).serialize(s)
    }
}

/// One field as a Table Schema field.
fn field_json(f: &DraftField, with_bounds: bool) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(f.name));
    m.extend(kind_json(&f.kind));
    let mut c = Map::new();
    if f.required {
        c.insert("required".into(), json!(true));
    }
    if let Some(e) = &f.enumeration {
        c.insert("enum".into(), json!(e));
    }
    if with_bounds && let Some((lo, hi)) = &f.bounds {
        let bound = |t: &str| match f.kind {
            Kind::Integer | Kind::Year => t.parse::<i64>().map_or_else(|_| json!(t), |v| json!(v)),
            _ => json!(t),
        };
        c.insert("minimum".into(), bound(lo));
        c.insert("maximum".into(), bound(hi));
    }
    if !c.is_empty() {
        m.insert("constraints".into(), Json::Object(c));
    }
    Json::Object(m)
}

/// The contract as a JSON tree with the keys of the TOML file.
pub fn contract_json(d: &Draft) -> Json {
    let mut schema = Map::new();
    if d.primary_key.checked_all_rows && !d.primary_key.columns.is_empty() {
        schema.insert("primaryKey".into(), json!(d.primary_key.columns));
    }
    schema.insert("missingValues".into(), json!(d.missing_values));
    schema.insert("fields".into(), Json::Array(d.fields.iter().map(|f| field_json(f, d.with_bounds)).collect()));
    json!({
        "name": d.name,
        "match": d.match_glob,
        "table": d.table,
        "dialect": {
            "delimiter": d.dialect.delimiter.to_string(),
            "quote": d.dialect.quote.to_string(),
            "header": d.dialect.header,
            "encoding": d.dialect.encoding,
            "skip_lines": d.dialect.skip_lines,
        },
        "schema": Json::Object(schema),
    })
}

/// A JSON value as a TOML value (inline tables and arrays).
fn toml_value(v: &Json) -> String {
    match v {
        Json::Null => "\"\"".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => toml_string(s),
        Json::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        Json::Object(m) => {
            let items: Vec<String> =
                ordered(m).into_iter().map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v))).collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

/// Keys in the order a person reads a field (serde_json's map is sorted by key).
const KEY_ORDER: &[&str] = &[
    "name",
    "type",
    "format",
    "decimal",
    "trueValues",
    "falseValues",
    "constraints",
    "required",
    "enum",
    "minimum",
    "maximum",
];

fn ordered(m: &Map<String, Json>) -> Vec<(&String, &Json)> {
    let rank = |k: &str| KEY_ORDER.iter().position(|o| *o == k).unwrap_or(KEY_ORDER.len());
    let mut items: Vec<(&String, &Json)> = m.iter().collect();
    items.sort_by_key(|(k, _)| rank(k));
    items
}

fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        k.to_string()
    } else {
        toml_string(k)
    }
}

/// `# text`, made inert and one line.
fn comment(out: &mut String, text: &str) {
    let _ = writeln!(out, "# {}", inert(text));
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{} {one}s", group(&n.to_string())) }
}

/// What was seen in a column, as the comment above its field.
fn field_comment(f: &DraftField) -> String {
    let e = &f.evidence;
    let mut parts = vec![plural(e.values, "value")];
    for (marker, n) in &e.missing {
        parts.push(format!("{} missing as {}", group(&n.to_string()), toml_string(marker)));
    }
    if e.absent > 0 {
        parts.push(format!("{} rows of files without this column", group(&e.absent.to_string())));
    }
    parts.push(e.reason.clone());
    if let Some(cell) = &e.header_cell {
        parts.push(format!("header cell {} cannot name a field: bound by position", toml_string(cell)));
    }
    if f.enumeration.is_some() {
        parts.push(format!(
            "enum: {} distinct values (at most {}, each seen {} times on average)",
            e.distinct.unwrap_or(0),
            super::types::ENUM_MAX_VALUES,
            super::types::ENUM_MIN_REPEAT
        ));
    }
    parts.join(", ")
}

/// The commented TOML contract.
pub fn toml(d: &Draft) -> String {
    let tree = contract_json(d);
    let mut out = String::new();
    comment(
        &mut out,
        "Drafted by `glueless infer`: a starting point. Review the types, the key and the enums before loading.",
    );
    comment(&mut out, &format!("{} from {}:", plural(d.rows, "row"), plural(d.files.len() as u64, "file")));
    for f in &d.files {
        comment(
            &mut out,
            &format!(
                "  {} ({}, {:.1} MB{})",
                f.url,
                plural(f.rows, "row"),
                f.bytes as f64 / 1e6,
                if f.complete { ", read whole" } else { ", the first part only" }
            ),
        );
    }
    let u = &d.unacceptable;
    if u.total() > 0 {
        let at = u.first_lines.first().map(|(f, l)| format!("; the first is line {l} of {f}")).unwrap_or_default();
        comment(
            &mut out,
            &format!(
                "{} no contract can accept ({} malformed, {} blank, {} with the wrong number of cells): validate rejects them{at}",
                plural(u.total(), "row"),
                u.malformed,
                u.blank,
                u.wrong_cells
            ),
        );
    }
    for cap in &d.caps {
        comment(&mut out, &format!("Bound reached: {cap}"));
    }
    out.push('\n');
    for key in ["name", "match", "table"] {
        let _ = writeln!(out, "{key} = {}", toml_value(&tree[key]));
    }
    out.push_str("\n[dialect]\n");
    for e in &d.dialect_evidence {
        comment(&mut out, e);
    }
    for key in ["delimiter", "quote", "header", "encoding", "skip_lines"] {
        let _ = writeln!(out, "{key} = {}", toml_value(&tree["dialect"][key]));
    }
    let compressions: Vec<&str> = d.files.iter().map(|f| f.compression).filter(|c| *c != "none").collect();
    if compressions.is_empty() {
        comment(&mut out, "compression comes from each object's key (.gz, .zst); these files were not compressed");
    } else {
        comment(&mut out, &format!("compression comes from each object's key; read here: {}", compressions.join(", ")));
    }
    out.push_str("\n[schema]\n");
    let pk = &d.primary_key;
    comment(&mut out, &format!("primaryKey: {}", pk.reason));
    if !pk.columns.is_empty() {
        let list = toml_value(&serde_json::json!(pk.columns));
        if pk.checked_all_rows {
            comment(&mut out, "it makes rows upsert by this key in the warehouse: remove it if rows have no identity");
            let _ = writeln!(out, "primaryKey = {list}");
        } else {
            comment(&mut out, "not checked on every row read, so left as a comment:");
            let _ = writeln!(out, "# primaryKey = {list}");
        }
    }
    let used: Vec<String> = d.missing_values.iter().map(|m| toml_string(m)).collect();
    comment(
        &mut out,
        &format!("missingValues: the markers used where a column is otherwise typed: {}", used.join(", ")),
    );
    let _ = writeln!(out, "missingValues = {}", toml_value(&tree["schema"]["missingValues"]));
    let fields = tree["schema"]["fields"].as_array().expect("fields are an array");
    for (f, j) in d.fields.iter().zip(fields) {
        out.push('\n');
        comment(&mut out, &field_comment(f));
        out.push_str("[[schema.fields]]\n");
        for (k, v) in ordered(j.as_object().expect("a field is an object")) {
            let _ = writeln!(out, "{} = {}", toml_key(k), toml_value(v));
        }
    }
    // Left as comments: the draft states only what the files showed, and the default (one
    // rejected row rejects the file) is the safe one; the lines show where to loosen it.
    out.push_str(
        "\n# By default one rejected row rejects the whole file (its rows go to the quarantine).\n\
         # To load the valid rows of files with up to 1 % rejected rows, uncomment:\n\
         # [load]\n\
         # max_rejected_ratio = 0.01\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_load_back_exactly() {
        for s in ["plain", "a\"b", "back\\slash", "]]", "new\nline", "tab\tdel\u{7f}", "bidi\u{202e}x", "nul\0"] {
            let text = format!("k = {}", toml_string(s));
            let t: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(t["k"].as_str(), Some(s));
            assert!(!toml_string(s).chars().any(crate::text::is_unsafe_char), "{text}");
        }
    }
}
