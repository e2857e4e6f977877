//! The validated, in-memory form of a dataset contract.
//!
//! Everything here has been checked by the loader (`super::load`): field names are unique,
//! every keyword fits its field's type, enum values and bounds are already typed, patterns are
//! compiled. The validator and the warehouse adapters read these structs and never re-check.

use regex::Regex;

/// One dataset contract (`schemas/<name>.toml`).
#[derive(Debug, Clone)]
pub struct Contract {
    /// Dataset name (`name`).
    pub name: String,
    /// Glob over object keys routed to this dataset (`match`); `None` when absent.
    pub match_glob: Option<String>,
    /// Warehouse fact table, optionally schema-qualified (`table`); defaults to `name`.
    pub table: String,
    /// The file the contract was loaded from (for messages); `<inline>` in tests.
    pub source: String,
    pub dialect: Dialect,
    pub schema: Schema,
    pub load: LoadOptions,
}

/// CSV dialect (`[dialect]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub encoding: Encoding,
    /// Physical lines skipped before the header (or before the first row without a header).
    pub skip_lines: u64,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect { delimiter: b',', quote: b'"', header: true, encoding: Encoding::Utf8, skip_lines: 0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8; a leading byte-order mark is accepted and dropped.
    Utf8,
    /// ISO-8859-1: every byte is one character.
    Latin1,
}

/// The Frictionless Table Schema part of the contract.
#[derive(Debug, Clone)]
pub struct Schema {
    pub fields: Vec<Field>,
    /// Indexes into `fields` (in the order of `primaryKey`).
    pub primary_key: Vec<usize>,
    /// Strings that mean "no value" (`missingValues`, default `[""]`).
    pub missing_values: Vec<String>,
}

/// One column of the dataset.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub constraints: Constraints,
}

/// A field's type with the keywords that belong to it.
#[derive(Debug, Clone)]
pub enum FieldKind {
    String {
        format: StringFormat,
    },
    Integer {
        number: NumberSyntax,
    },
    /// `decimal = [precision, scale]` makes it an exact decimal; otherwise a 64-bit float.
    Number {
        number: NumberSyntax,
        decimal: Option<(u8, i8)>,
    },
    Boolean {
        true_values: Vec<String>,
        false_values: Vec<String>,
    },
    Date {
        format: TemporalFormat,
    },
    Time {
        format: TemporalFormat,
    },
    Datetime {
        format: TemporalFormat,
    },
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringFormat {
    Default,
    Email,
    Uri,
    Uuid,
    Binary,
}

/// Frictionless number keywords (`bareNumber`, `groupChar`, `decimalChar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberSyntax {
    /// `bareNumber` (default true). When false, leading/trailing non-numeric characters such as
    /// `$` or `%` are stripped before parsing.
    pub bare_number: bool,
    /// `groupChar`: a thousands separator to drop, e.g. `,`.
    pub group_char: Option<char>,
    /// `decimalChar` (default `.`).
    pub decimal_char: char,
}

impl Default for NumberSyntax {
    fn default() -> Self {
        NumberSyntax { bare_number: true, group_char: None, decimal_char: '.' }
    }
}

/// `format` of date, time and datetime fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemporalFormat {
    /// `default`: ISO 8601 (dates `YYYY-MM-DD`; times `hh:mm:ss[.ffffff]`; datetimes
    /// `YYYY-MM-DDThh:mm:ss[.ffffff][Z|±hh:mm]`, no offset meaning UTC).
    Default,
    /// `any`: ISO 8601 and a few common unambiguous spellings.
    Any,
    /// A strptime-style pattern such as `%Y/%m/%d` or `%b %d %Y` (chrono syntax).
    Pattern(String),
}

/// A typed scalar, used for enum members and bounds.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    /// Unscaled decimal at the field's scale.
    Decimal(i128),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Datetime(i64),
}

/// Field constraints, typed to the field.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// `required`, or member of the primary key.
    pub required: bool,
    /// `unique`: checked within the file.
    pub unique: bool,
    pub minimum: Option<Value>,
    pub maximum: Option<Value>,
    /// In characters (Unicode scalar values).
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    /// Anchored at both ends, like Table Schema's XML Schema patterns.
    pub pattern: Option<Regex>,
    /// The pattern as written, for messages.
    pub pattern_src: Option<String>,
    pub enumeration: Option<Vec<Value>>,
}

/// What to do with header columns that the contract does not name (`load.extra_columns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraColumns {
    RejectFile,
    Ignore,
}

/// `[load]`.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Index into `schema.fields`.
    pub version_column: Option<usize>,
    /// Above this ratio of rejected rows the whole file is rejected. Default 0: any rejected
    /// row rejects the file, unless the contract allows some.
    pub max_rejected_ratio: f64,
    pub extra_columns: ExtraColumns,
    /// DataFusion SQL over the validated rows, which are the table `input`.
    pub transform: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            version_column: None,
            max_rejected_ratio: 0.0,
            extra_columns: ExtraColumns::RejectFile,
            transform: None,
        }
    }
}
