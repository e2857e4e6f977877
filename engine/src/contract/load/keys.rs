//! Plumbing of the loader: key paths for messages, reading one table with helpful errors
//! about unknown keys, and turning TOML into the JSON tree both formats are read from.

use super::ContractError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

/// Keywords known from Table Schema or CSV Dialect that glueless does not implement, with why.
pub(super) type Unsupported = [(&'static str, &'static str)];

/// Where an error points: a file and a key path inside it.
pub(super) struct At<'a> {
    file: &'a str,
    path: String,
}

impl<'a> At<'a> {
    pub(super) fn root(file: &'a str) -> Self {
        At { file, path: String::new() }
    }

    pub(super) fn key(&self, key: &str) -> At<'a> {
        let path = if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) };
        At { file: self.file, path }
    }

    pub(super) fn index(&self, i: usize) -> At<'a> {
        At { file: self.file, path: format!("{}[{i}]", self.path) }
    }

    pub(super) fn err(&self, message: impl Into<String>) -> ContractError {
        ContractError { file: self.file.to_string(), key: self.path.clone(), message: message.into() }
    }
}

/// Deserializes one table into its raw struct. Unknown keys are reported first, with the reason
/// when the keyword is known but unsupported; a type error is then pinned to its key by
/// re-reading the table one key at a time.
pub(super) fn read_table<T: DeserializeOwned>(
    map: &Map<String, Json>,
    at: &At,
    unsupported: &Unsupported,
) -> Result<T, ContractError> {
    let allowed = keys_of::<T>();
    for key in map.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        if let Some((k, why)) = unsupported.iter().find(|(k, _)| normalized(k) == normalized(key)) {
            return Err(at.key(key).err(format!("`{k}` is not supported by glueless ({why}); remove it")));
        }
        let mut listed: Vec<&str> = allowed.to_vec();
        listed.sort_unstable();
        return Err(at.key(key).err(format!(
            "unknown keyword `{key}`{}; supported here are: {} — fix the spelling or remove it",
            did_you_mean(key, &listed),
            listed.join(", ")
        )));
    }
    serde_json::from_value(Json::Object(map.clone())).map_err(|whole| {
        for (key, value) in map {
            let one = Map::from_iter([(key.clone(), value.clone())]);
            if let Err(e) = serde_json::from_value::<T>(Json::Object(one)) {
                return at.key(key).err(e.to_string());
            }
        }
        at.err(whole.to_string())
    })
}

/// The keys a raw struct accepts, taken from its derived `Deserialize`, so that the lists in
/// messages cannot drift from the structs.
pub(super) fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error, Visitor, value::Error as E};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = E;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, E> {
            Err(E::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, E> {
            *self.0 = fields;
            Err(E::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Converts parsed TOML into the JSON tree both formats are read from. TOML dates and times
/// become their RFC 3339 text, which the temporal parsers read.
pub(super) fn toml_to_json(v: toml::Value, at: &At) -> Result<Json, ContractError> {
    Ok(match v {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => match serde_json::Number::from_f64(f) {
            Some(n) => Json::Number(n),
            None => return Err(at.err(format!("{f} is not a finite number"))),
        },
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(
            items.into_iter().enumerate().map(|(i, v)| toml_to_json(v, &at.index(i))).collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Json::Object(
            t.into_iter()
                .map(|(k, v)| {
                    let v = toml_to_json(v, &at.key(&k))?;
                    Ok((k, v))
                })
                .collect::<Result<_, ContractError>>()?,
        ),
    })
}

/// Dataset names become table and folder names: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Lower case without `_` and `-`, so that `skipLines`, `skip_lines` and `skip-lines` meet.
fn normalized(s: &str) -> String {
    s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// ` (did you mean `x`?)` for the closest candidate within two edits, or nothing.
pub(super) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let word = normalized(word);
    let best = candidates
        .iter()
        .map(|c| (edit_distance(&word, &normalized(c)), *c))
        .filter(|(d, _)| *d <= 2 && *d < word.chars().count())
        .min_by_key(|(d, _)| *d);
    best.map_or_else(String::new, |(_, c)| format!(" (did you mean `{c}`?)"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
