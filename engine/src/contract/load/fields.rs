//! One field of a Table Schema: its type, the keywords that go with the type, its constraints.

use super::ContractError;
use super::keys::{At, Unsupported, did_you_mean, read_table};
use crate::cells::parse_value;
use crate::contract::model::{Constraints, Field, FieldKind, NumberSyntax, StringFormat, TemporalFormat, Value};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value as Json};
use std::cmp::Ordering;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawField {
    name: Option<String>,
    r#type: Option<String>,
    format: Option<String>,
    #[serde(rename = "title")]
    _title: Option<IgnoredAny>,
    #[serde(rename = "description")]
    _description: Option<IgnoredAny>,
    #[serde(rename = "example")]
    _example: Option<IgnoredAny>,
    true_values: Option<Vec<String>>,
    false_values: Option<Vec<String>>,
    bare_number: Option<bool>,
    group_char: Option<String>,
    decimal_char: Option<String>,
    decimal: Option<Vec<i64>>,
    constraints: Option<Map<String, Json>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConstraints {
    required: Option<bool>,
    unique: Option<bool>,
    minimum: Option<Json>,
    maximum: Option<Json>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enumeration: Option<Vec<Json>>,
}

const FIELD_UNSUPPORTED: &Unsupported = &[
    ("missingValues", "missing values are set for the whole schema with `missingValues`"),
    ("categories", "use `constraints.enum` for a fixed set of values"),
    ("categoriesOrdered", "use `constraints.enum` for a fixed set of values"),
    ("rdfType", "semantic types are not read"),
];
const CONSTRAINTS_UNSUPPORTED: &Unsupported = &[
    ("exclusiveMinimum", "use `minimum`, which includes the bound"),
    ("exclusiveMaximum", "use `maximum`, which includes the bound"),
    ("jsonSchema", "it applies to object and array fields, which glueless does not support"),
];

/// The field types glueless supports, as written in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    Time,
    Datetime,
    Year,
}

const TYPES: [(&str, Ty); 8] = [
    ("string", Ty::String),
    ("integer", Ty::Integer),
    ("number", Ty::Number),
    ("boolean", Ty::Boolean),
    ("date", Ty::Date),
    ("time", Ty::Time),
    ("datetime", Ty::Datetime),
    ("year", Ty::Year),
];
/// Table Schema types that glueless does not load.
const OTHER_TYPES: [&str; 8] = ["object", "array", "list", "duration", "geopoint", "geojson", "yearmonth", "any"];
const ORDERED: &[Ty] = &[Ty::Integer, Ty::Number, Ty::Date, Ty::Time, Ty::Datetime, Ty::Year];
const NUMERIC: &[Ty] = &[Ty::Integer, Ty::Number];

/// Keywords (of fields and of constraints) that only some types take; all others fit any type.
pub(super) const TYPED_KEYWORDS: &[(&str, &[Ty])] = &[
    ("trueValues", &[Ty::Boolean]),
    ("falseValues", &[Ty::Boolean]),
    ("bareNumber", NUMERIC),
    ("groupChar", NUMERIC),
    ("decimalChar", NUMERIC),
    ("decimal", &[Ty::Number]),
    ("minimum", ORDERED),
    ("maximum", ORDERED),
    ("minLength", &[Ty::String]),
    ("maxLength", &[Ty::String]),
    ("pattern", &[Ty::String]),
];

fn type_name(ty: Ty) -> &'static str {
    TYPES.iter().find(|(_, t)| *t == ty).map_or("?", |(n, _)| n)
}

pub(super) fn field(entry: &Json, at: &At) -> Result<Field, ContractError> {
    let Json::Object(map) = entry else {
        return Err(at.err("each field must be a table with at least `name`"));
    };
    let raw: RawField = read_table(map, at, FIELD_UNSUPPORTED)?;
    let name = raw
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| at.key("name").err("missing or empty; every field needs a `name`"))?;
    if let Some((i, c)) = name.char_indices().find(|(_, c)| crate::text::is_unsafe_char(*c)) {
        return Err(at.key("name").err(format!(
            "`{}` holds the control character U+{:04X} (at byte {i}); no warehouse takes it in a column \
             name and no terminal shows it: rename the field",
            crate::text::inert(&name),
            c as u32
        )));
    }
    let type_text = raw.r#type.as_deref().unwrap_or("string");
    let ty = match TYPES.iter().find(|(n, _)| *n == type_text) {
        Some((_, ty)) => *ty,
        None => {
            let supported: Vec<&str> = TYPES.iter().map(|(n, _)| *n).collect();
            let what = if OTHER_TYPES.contains(&type_text) {
                format!("type `{type_text}` of field `{name}` is not supported by glueless")
            } else {
                format!("unknown type `{type_text}` for field `{name}`{}", did_you_mean(type_text, &supported))
            };
            return Err(at.key("type").err(format!(
                "{what}; supported types are: {} — use `string` to keep the text as it is",
                supported.join(", ")
            )));
        }
    };
    check_keywords_fit(map, ty, &name, at)?;
    if let Some(c) = &raw.constraints {
        check_keywords_fit(c, ty, &name, &at.key("constraints"))?;
    }
    let kind = kind(ty, &raw, &name, at)?;
    let constraints = match &raw.constraints {
        Some(c) => constraints(c, &kind, ty, &name, &at.key("constraints"))?,
        None => Constraints::default(),
    };
    Ok(Field { name, kind, constraints })
}

fn check_keywords_fit(map: &Map<String, Json>, ty: Ty, field: &str, at: &At) -> Result<(), ContractError> {
    for key in map.keys() {
        if let Some((_, types)) = TYPED_KEYWORDS.iter().find(|(k, _)| k == key)
            && !types.contains(&ty)
        {
            let fits: Vec<&str> = types.iter().map(|t| type_name(*t)).collect();
            return Err(at.key(key).err(format!(
                "field `{field}` has type {}; `{key}` applies only to {} fields — remove it or \
                 change the field's `type`",
                type_name(ty),
                fits.join(", ")
            )));
        }
    }
    Ok(())
}

fn kind(ty: Ty, raw: &RawField, field: &str, at: &At) -> Result<FieldKind, ContractError> {
    let format = raw.format.as_deref().unwrap_or("default");
    let bad_format = |supported: &str| {
        at.key("format").err(format!(
            "format `{format}` does not exist for {} field `{field}`; supported: {supported}",
            type_name(ty)
        ))
    };
    let temporal = || match format {
        "default" => Ok(TemporalFormat::Default),
        "any" => Ok(TemporalFormat::Any),
        f => strptime_pattern(f.strip_prefix("fmt:").unwrap_or(f))
            .ok_or_else(|| bad_format("default, any, or a strptime pattern such as %Y/%m/%d")),
    };
    Ok(match ty {
        Ty::String => FieldKind::String {
            format: match format {
                "default" => StringFormat::Default,
                "email" => StringFormat::Email,
                "uri" => StringFormat::Uri,
                "uuid" => StringFormat::Uuid,
                "binary" => StringFormat::Binary,
                _ => return Err(bad_format("default, email, uri, uuid, binary")),
            },
        },
        Ty::Date => FieldKind::Date { format: temporal()? },
        Ty::Time => FieldKind::Time { format: temporal()? },
        Ty::Datetime => FieldKind::Datetime { format: temporal()? },
        _ if format != "default" => return Err(bad_format("default")),
        Ty::Integer => FieldKind::Integer { number: number_syntax(raw, at)? },
        Ty::Number => FieldKind::Number {
            number: number_syntax(raw, at)?,
            decimal: match &raw.decimal {
                Some(pair) => Some(decimal(pair, &at.key("decimal"))?),
                None => None,
            },
        },
        Ty::Boolean => {
            let t = strings_or(&raw.true_values, &["true", "True", "TRUE", "1"]);
            let f = strings_or(&raw.false_values, &["false", "False", "FALSE", "0"]);
            if t.is_empty() || f.is_empty() {
                let key = if t.is_empty() { "trueValues" } else { "falseValues" };
                return Err(at.key(key).err("is empty; list at least one value, or remove it"));
            }
            if let Some(both) = t.iter().find(|v| f.contains(v)) {
                return Err(at.key("falseValues").err(format!(
                    "`{both}` is in both trueValues and falseValues of field `{field}`; keep it in one"
                )));
            }
            FieldKind::Boolean { true_values: t, false_values: f }
        }
        Ty::Year => FieldKind::Year,
    })
}

/// A chrono strftime pattern, if `f` is one (it must have a `%` and no unknown specifier).
fn strptime_pattern(f: &str) -> Option<TemporalFormat> {
    use chrono::format::{Item, StrftimeItems};
    let valid = f.contains('%') && !StrftimeItems::new(f).any(|i| matches!(i, Item::Error));
    valid.then(|| TemporalFormat::Pattern(f.to_string()))
}

fn strings_or(given: &Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    given.clone().unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
}

fn number_syntax(raw: &RawField, at: &At) -> Result<NumberSyntax, ContractError> {
    let one_char = |value: &Option<String>, key: &str| match value.as_deref() {
        None => Ok(None),
        Some(s) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_ascii_digit() && c != '-' && c != '+' => Ok(Some(c)),
                _ => Err(at.key(key).err(format!(
                    "`{s}` must be exactly one character that is not a digit or a sign, e.g. \",\" or \".\""
                ))),
            }
        }
    };
    let group_char = one_char(&raw.group_char, "groupChar")?;
    let decimal_char = one_char(&raw.decimal_char, "decimalChar")?.unwrap_or('.');
    if group_char == Some(decimal_char) {
        return Err(at
            .key("groupChar")
            .err(format!("groupChar and decimalChar are both `{decimal_char}`; they must differ")));
    }
    Ok(NumberSyntax { bare_number: raw.bare_number.unwrap_or(true), group_char, decimal_char })
}

fn decimal(pair: &[i64], at: &At) -> Result<(u8, i8), ContractError> {
    match *pair {
        [p, s] if (1..=38).contains(&p) && (0..=p).contains(&s) => Ok((p as u8, s as i8)),
        _ => Err(at.err(format!(
            "{pair:?} is not a valid [precision, scale]; precision must be 1 to 38 and scale 0 \
             to precision, e.g. [12, 2]"
        ))),
    }
}

fn constraints(
    map: &Map<String, Json>,
    kind: &FieldKind,
    ty: Ty,
    field: &str,
    at: &At,
) -> Result<Constraints, ContractError> {
    let raw: RawConstraints = read_table(map, at, CONSTRAINTS_UNSUPPORTED)?;
    let typed = |v: &Json, at: &At| typed_value(v, kind, ty, field, at);
    let minimum = raw.minimum.as_ref().map(|v| typed(v, &at.key("minimum"))).transpose()?;
    let maximum = raw.maximum.as_ref().map(|v| typed(v, &at.key("maximum"))).transpose()?;
    if let (Some(lo), Some(hi)) = (&minimum, &maximum)
        && lo.partial_cmp(hi) == Some(Ordering::Greater)
    {
        let text = |v: &Option<Json>| v.as_ref().map_or_else(String::new, Json::to_string);
        return Err(at.key("minimum").err(format!(
            "minimum {} is above maximum {} for field `{field}`; no value could pass",
            text(&raw.minimum),
            text(&raw.maximum)
        )));
    }
    let length = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let (min_length, max_length) = (length(raw.min_length), length(raw.max_length));
    if let (Some(lo), Some(hi)) = (min_length, max_length)
        && lo > hi
    {
        return Err(at
            .key("minLength")
            .err(format!("minLength {lo} is above maxLength {hi} for field `{field}`; no value could pass")));
    }
    let pattern = match &raw.pattern {
        Some(p) => Some(
            regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| at.key("pattern").err(format!("invalid regular expression for field `{field}`: {e}")))?,
        ),
        None => None,
    };
    let enumeration = match &raw.enumeration {
        Some(items) if items.is_empty() => {
            return Err(at.key("enum").err("is empty; list the allowed values, or remove it"));
        }
        Some(items) => Some(
            items.iter().enumerate().map(|(i, v)| typed(v, &at.key("enum").index(i))).collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(Constraints {
        required: raw.required.unwrap_or(false),
        unique: raw.unique.unwrap_or(false),
        minimum,
        maximum,
        min_length,
        max_length,
        pattern,
        pattern_src: raw.pattern,
        enumeration,
    })
}

/// Parses a bound or enum member with the field's own parser. A string is read as a cell of
/// the field would be (then, failing that, in the default syntax); a native TOML/JSON value is
/// always read in the default syntax, since it was not written in the CSV's locale.
fn typed_value(v: &Json, kind: &FieldKind, ty: Ty, field: &str, at: &At) -> Result<Value, ContractError> {
    let canonical = canonical_kind(kind);
    let parsed = match v {
        Json::String(s) => parse_value(kind, s).or_else(|e| parse_value(&canonical, s).map_err(|_| e)),
        Json::Number(n) => parse_value(&canonical, &n.to_string()),
        Json::Bool(b) => parse_value(&canonical, &b.to_string()),
        _ => Err("expected a single value (a string, number, boolean or date)".to_string()),
    };
    parsed.map_err(|e| {
        at.err(format!(
            "{v} is not a valid {} for field `{field}` ({e}); write it as a value of the field's type",
            type_name(ty)
        ))
    })
}

fn canonical_kind(kind: &FieldKind) -> FieldKind {
    let number = NumberSyntax::default();
    match kind {
        FieldKind::Integer { .. } => FieldKind::Integer { number },
        FieldKind::Number { decimal, .. } => FieldKind::Number { number, decimal: *decimal },
        FieldKind::Boolean { .. } => {
            FieldKind::Boolean { true_values: vec!["true".into()], false_values: vec!["false".into()] }
        }
        FieldKind::Date { .. } => FieldKind::Date { format: TemporalFormat::Default },
        FieldKind::Time { .. } => FieldKind::Time { format: TemporalFormat::Default },
        FieldKind::Datetime { .. } => FieldKind::Datetime { format: TemporalFormat::Default },
        FieldKind::String { .. } | FieldKind::Year => kind.clone(),
    }
}
