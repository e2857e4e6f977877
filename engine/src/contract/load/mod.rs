//! Loading a dataset contract file into the checked [`Contract`].
//!
//! A contract is TOML; its `schema` is a Frictionless Table Schema, either inline or in a JSON
//! file beside the contract. Both formats are first turned into one tree (`serde_json::Value`)
//! and then read through one set of raw serde structs, so TOML and JSON accept exactly the same
//! keywords. Each table is read on its own, which lets every error name the file and the full
//! key path (`schema.fields[3].constraints.minLength`). A keyword that Table Schema defines but
//! glueless does not implement is rejected with the reason, never silently ignored: a contract
//! that loads is a contract the engine enforces in full.
//!
//! ```
//! use glueless_engine::contract::load_str;
//! use std::path::Path;
//!
//! let text = r#"
//! name = "orders"
//! [[schema.fields]]
//! name = "quantity"
//! type = "integer"
//! constraints = { minLenght = 1 }
//! "#;
//! let err = load_str(text, "schemas/orders.toml", Path::new("schemas")).unwrap_err();
//! assert_eq!(err.key, "schema.fields[0].constraints.minLenght");
//! assert!(err.to_string().starts_with("schemas/orders.toml: "));
//! ```

use super::model::{Contract, Dialect, Encoding, ExtraColumns, Field, FieldKind, LoadOptions, Schema};
use fields::field;
use keys::{At, Unsupported, is_identifier, read_table, toml_to_json};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value as Json};
use std::path::Path;

/// A contract that cannot be used. Never worth retrying: the file must be fixed.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{message}", key_prefix(.key))]
pub struct ContractError {
    /// The contract file, or the schema JSON file it names.
    pub file: String,
    /// Key path inside `file` (`schema.fields[2].type`); empty for whole-file errors.
    pub key: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() { String::new() } else { format!("`{key}`: ") }
}

/// Reads and checks the contract at `path`; a schema JSON file it names is looked up next to it.
pub fn load_path(path: &Path) -> Result<Contract, ContractError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ContractError {
        file: file.clone(),
        key: String::new(),
        message: format!("cannot read the contract file: {e}; check --contract / contracts.dir"),
    })?;
    load_str(&text, &file, path.parent().unwrap_or(Path::new(".")))
}

/// Checks the contract text `text`; `source` names it in messages and `base_dir` is where a
/// schema JSON file named by `schema = "…"` is looked up.
pub fn load_str(text: &str, source: &str, base_dir: &Path) -> Result<Contract, ContractError> {
    let root = At::root(source);
    let table: toml::Table =
        toml::from_str(text).map_err(|e| root.err(format!("invalid TOML: {}", e.to_string().trim_end())))?;
    let Json::Object(map) = toml_to_json(toml::Value::Table(table), &root)? else {
        unreachable!("a TOML table converts to a JSON object")
    };
    let raw: RawContract = read_table(&map, &root, &[])?;

    let name = raw
        .name
        .ok_or_else(|| root.key("name").err("missing; add `name = \"<dataset>\"` at the top of the contract"))?;
    if !is_identifier(&name) {
        return Err(root.key("name").err(format!(
            "`{}` is not a valid dataset name; it names tables and folders, so it must \
             start with a letter or `_` and contain only letters, digits and `_`",
            crate::text::inert(&name)
        )));
    }
    let table = match raw.table {
        None => name.clone(),
        Some(t) if t.split('.').count() <= 2 && t.split('.').all(is_identifier) => t,
        Some(t) => {
            return Err(root.key("table").err(format!(
                "`{}` is not a valid table name; write `table` or `schema.table`, each part \
                 starting with a letter or `_` and containing only letters, digits and `_`",
                crate::text::inert(&t)
            )));
        }
    };
    if raw.match_glob.as_deref().is_some_and(|g| g.trim().is_empty()) {
        return Err(root.key("match").err("is empty; give a glob such as `landing/orders/**/*.csv*`, or remove it"));
    }

    let dialect = match &raw.dialect {
        Some(m) => dialect(m, &root.key("dialect"))?,
        None => Dialect::default(),
    };
    let schema = match raw.schema {
        Some(Json::Object(m)) => schema(&m, &root.key("schema"))?,
        Some(Json::String(rel)) => schema_file(&base_dir.join(rel))?,
        Some(_) => {
            return Err(root.key("schema").err(
                "must be a table (`[schema]`) or the name of a Table Schema JSON file, relative to the contract",
            ));
        }
        None => {
            return Err(root
                .key("schema")
                .err("missing; add a `[schema]` table with `[[schema.fields]]`, or `schema = \"<file>.json\"`"));
        }
    };
    let load = match &raw.load {
        Some(m) => load_options(m, &root.key("load"), &schema)?,
        None => LoadOptions::default(),
    };
    Ok(Contract { name, match_glob: raw.match_glob, table, source: source.to_string(), dialect, schema, load })
}

// ---------------------------------------------------------------------------------------------
// Raw shapes (those of a field are in `fields.rs`). Every member is optional so that a table
// can be re-read one key at a time to find the key behind a type error (see `read_table`);
// required keys are checked by hand.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    name: Option<String>,
    #[serde(rename = "match")]
    match_glob: Option<String>,
    table: Option<String>,
    #[serde(rename = "description")]
    _description: Option<IgnoredAny>,
    dialect: Option<Map<String, Json>>,
    schema: Option<Json>,
    load: Option<Map<String, Json>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDialect {
    delimiter: Option<String>,
    quote: Option<String>,
    header: Option<bool>,
    encoding: Option<String>,
    skip_lines: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSchema {
    fields: Option<Vec<Json>>,
    primary_key: Option<Json>,
    missing_values: Option<Vec<String>>,
    #[serde(rename = "description")]
    _description: Option<IgnoredAny>,
    #[serde(rename = "title")]
    _title: Option<IgnoredAny>,
    /// The profile URL a Table Schema file may carry; producers' files are used as they are.
    #[serde(rename = "$schema")]
    _profile: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    version_column: Option<String>,
    max_rejected_ratio: Option<f64>,
    extra_columns: Option<String>,
    transform: Option<String>,
}

const DIALECT_UNSUPPORTED: &Unsupported = &[
    ("compression", "compression is taken from the object key: .gz, .zst, or none"),
    ("doubleQuote", "a quote inside a quoted value is always written twice, as in RFC 4180"),
    ("escapeChar", "only RFC 4180 quoting is read: a quote inside a quoted value is doubled"),
    ("lineTerminator", "both \\n and \\r\\n line ends are always accepted"),
    ("commentChar", "comment lines are not skipped; use `skip_lines` for lines before the header"),
    ("headerRows", "the header is one line; use `skip_lines` for lines before it"),
    ("skipInitialSpace", "values are read exactly as written"),
];
const SCHEMA_UNSUPPORTED: &Unsupported = &[
    ("foreignKeys", "each file is validated on its own; references to other datasets are not checked"),
    ("uniqueKeys", "only `primaryKey` and the per-field `unique` constraint are checked"),
    (
        "fieldsMatch",
        "columns are matched by header name; use `load.extra_columns` for columns the contract does not name",
    ),
];
// ---------------------------------------------------------------------------------------------
// Sections.

fn dialect(map: &Map<String, Json>, at: &At) -> Result<Dialect, ContractError> {
    let raw: RawDialect = read_table(map, at, DIALECT_UNSUPPORTED)?;
    let d = Dialect::default();
    let delimiter = match &raw.delimiter {
        Some(s) => csv_char(s, &at.key("delimiter"))?,
        None => d.delimiter,
    };
    let quote = match &raw.quote {
        Some(s) => csv_char(s, &at.key("quote"))?,
        None => d.quote,
    };
    if delimiter == quote {
        return Err(at
            .key("quote")
            .err(format!("the quote and the delimiter are both `{}`; they must differ", quote as char)));
    }
    let encoding = match raw.encoding.as_deref() {
        None => d.encoding,
        Some(e) => match e.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Encoding::Utf8,
            "latin-1" | "latin1" | "iso-8859-1" => Encoding::Latin1,
            _ => {
                return Err(at
                    .key("encoding")
                    .err(format!("encoding `{e}` is not supported; use \"utf-8\" or \"latin-1\" (ISO-8859-1)")));
            }
        },
    };
    Ok(Dialect {
        delimiter,
        quote,
        header: raw.header.unwrap_or(d.header),
        encoding,
        skip_lines: raw.skip_lines.unwrap_or(d.skip_lines),
    })
}

fn csv_char(s: &str, at: &At) -> Result<u8, ContractError> {
    match s.as_bytes() {
        [b'\n' | b'\r'] => Err(at.err("a line end cannot be used; give one other ASCII character")),
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(
            at.err(format!("`{s}` is not one ASCII character; give exactly one, e.g. \",\", \";\", \"|\" or \"\\t\""))
        ),
    }
}

fn schema_file(path: &Path) -> Result<Schema, ContractError> {
    let file = path.display().to_string();
    let at = At::root(&file);
    let text = std::fs::read_to_string(path).map_err(|e| {
        at.err(format!(
            "cannot read the schema file named by `schema`: {e}; the path is relative to the contract's folder"
        ))
    })?;
    match serde_json::from_str::<Json>(&text) {
        Ok(Json::Object(map)) => schema(&map, &at),
        Ok(_) => Err(at.err("a Table Schema file must hold one JSON object with `fields`")),
        Err(e) => Err(at.err(format!("invalid JSON: {e}"))),
    }
}

fn schema(map: &Map<String, Json>, at: &At) -> Result<Schema, ContractError> {
    let raw: RawSchema = read_table(map, at, SCHEMA_UNSUPPORTED)?;
    let entries = raw.fields.unwrap_or_default();
    if entries.is_empty() {
        return Err(at
            .key("fields")
            .err("no fields; list the columns, each with at least `name` (and `type`, default string)"));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at_field = at.key("fields").index(i);
        let field = field(entry, &at_field)?;
        if let Some((j, other)) = fields.iter().enumerate().find(|(_, f)| f.name.eq_ignore_ascii_case(&field.name)) {
            return Err(at_field.key("name").err(format!(
                "field `{}` is already defined at fields[{j}] (`{}`); names must be unique, ignoring \
                 case, because warehouses fold unquoted column names to lower case",
                field.name, other.name
            )));
        }
        fields.push(field);
    }

    let pk_at = at.key("primaryKey");
    let pk_names: Vec<String> = match raw.primary_key {
        None => Vec::new(),
        Some(Json::String(s)) => vec![s],
        Some(Json::Array(items)) if !items.is_empty() => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::String(s) => Ok(s),
                _ => Err(pk_at.index(i).err("must be a field name (a string)")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(pk_at
                .err("must be a field name or a non-empty list of field names; remove it if the dataset has no key"));
        }
    };
    let mut primary_key = Vec::with_capacity(pk_names.len());
    for name in &pk_names {
        let idx = field_index(&fields, name, &pk_at)?;
        if primary_key.contains(&idx) {
            return Err(pk_at.err(format!("`{name}` is listed twice; list each key field once")));
        }
        fields[idx].constraints.required = true;
        primary_key.push(idx);
    }
    Ok(Schema { fields, primary_key, missing_values: raw.missing_values.unwrap_or_else(|| vec![String::new()]) })
}

fn field_index(fields: &[Field], name: &str, at: &At) -> Result<usize, ContractError> {
    fields.iter().position(|f| f.name == name).ok_or_else(|| {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        at.err(format!("there is no field `{}`; the fields are: {}", crate::text::inert(name), names.join(", ")))
    })
}

fn load_options(map: &Map<String, Json>, at: &At, schema: &Schema) -> Result<LoadOptions, ContractError> {
    let raw: RawLoad = read_table(map, at, &[])?;
    let d = LoadOptions::default();
    let version_column = match &raw.version_column {
        None => None,
        Some(name) => {
            let at = at.key("version_column");
            let idx = field_index(&schema.fields, name, &at)?;
            let unorderable = match schema.fields[idx].kind {
                FieldKind::String { .. } => Some("string"),
                FieldKind::Boolean { .. } => Some("boolean"),
                _ => None,
            };
            if let Some(ty) = unorderable {
                return Err(at.err(format!(
                    "field `{name}` is a {ty}, which cannot order versions of a row; use a field \
                     of type integer, number, date, time, datetime or year"
                )));
            }
            Some(idx)
        }
    };
    let max_rejected_ratio = raw.max_rejected_ratio.unwrap_or(d.max_rejected_ratio);
    if !(0.0..=1.0).contains(&max_rejected_ratio) {
        return Err(at
            .key("max_rejected_ratio")
            .err(format!("{max_rejected_ratio} is not a ratio; give a number from 0 (no rejected row allowed) to 1")));
    }
    let extra_columns = match raw.extra_columns.as_deref() {
        None => d.extra_columns,
        Some("reject_file") => ExtraColumns::RejectFile,
        Some("ignore") => ExtraColumns::Ignore,
        Some(other) => {
            return Err(at
                .key("extra_columns")
                .err(format!("`{other}` is not an option; use \"reject_file\" (the default) or \"ignore\"")));
        }
    };
    let transform = raw.transform.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    Ok(LoadOptions { version_column, max_rejected_ratio, extra_columns, transform })
}

mod fields;
mod keys;

#[cfg(test)]
mod tests;
