//! Types per column: what every sampled value of a column fits, and the narrowest type of those.
//!
//! A [`Column`] sees each non-missing cell once ([`Column::observe`]) and keeps, for every
//! candidate type, whether all values so far parse as it (with the engine's own cell parsers,
//! so that what is inferred is what `validate` accepts), plus bounded evidence: counts, the
//! missing markers used, lengths, the smallest and largest value, and up to
//! [`ENUM_MAX_VALUES`]` + 1` distinct short texts. Memory per column is constant whatever the
//! file holds.

use crate::cells::{parse_date, parse_datetime, parse_decimal, parse_float, parse_integer, parse_time};
use crate::contract::{NumberSyntax, TemporalFormat};

/// Cells that may mean "no value". `""` is always a missing value; the others become missing
/// values only where a column is otherwise typed (see [`super::Draft`]).
pub const MISSING_MARKERS: [&str; 7] = ["", "NA", "N/A", "null", "NULL", "-", "."];

/// A text column becomes an enum when it has at most this many distinct values…
pub const ENUM_MAX_VALUES: usize = 10;
/// …each seen at least this many times on average (`values >= distinct * ENUM_MIN_REPEAT`)…
pub const ENUM_MIN_REPEAT: u64 = 10;
/// …and every value is at most this many bytes long.
pub const ENUM_MAX_VALUE_BYTES: usize = 64;
/// Exact decimals are inferred up to this many decimal places; more is a float (`number`).
pub const MAX_DECIMAL_SCALE: u32 = 4;
/// Precision given to inferred decimals: room to grow, and still 8 bytes in every warehouse.
pub const DECIMAL_PRECISION: u32 = 18;

/// Date patterns tried, in order of preference: when several fit every value (`01/02/2024`
/// is both January 2nd and February 1st), the first one wins and the comment says so.
pub const DATE_FORMATS: &[&str] = &[
    "default",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%b %d %Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%d %B %Y",
    "%B %d, %Y",
];
/// Datetime patterns tried, in order (`default` is ISO 8601 with `T` or a space, optional
/// fraction and offset).
pub const DATETIME_FORMATS: &[&str] = &[
    "default",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%d/%b/%Y:%H:%M:%S %z",
];
/// Time patterns tried, in order.
pub const TIME_FORMATS: &[&str] = &["default", "%H:%M", "%I:%M %p", "%I:%M:%S %p"];

/// Spellings of booleans, as pairs of families; a column is boolean when all its values are
/// of one family (so `Y`/`N` and `yes`/`no` never mix). `0`/`1` stay integers.
const BOOLEAN_FAMILIES: &[(&[&str], &[&str])] = &[
    (&["true", "True", "TRUE"], &["false", "False", "FALSE"]),
    (&["yes", "Yes", "YES"], &["no", "No", "NO"]),
    (&["y", "Y"], &["n", "N"]),
    (&["t", "T"], &["f", "F"]),
];

fn format_of(f: &str) -> TemporalFormat {
    if f == "default" { TemporalFormat::Default } else { TemporalFormat::Pattern(f.to_string()) }
}

/// One value kept with its text, for bounds and comments.
#[derive(Debug, Clone)]
struct Extreme<T> {
    min: (T, String),
    max: (T, String),
}

impl<T: PartialOrd + Copy> Extreme<T> {
    fn update(slot: &mut Option<Self>, v: T, text: &str) {
        match slot {
            None => *slot = Some(Extreme { min: (v, text.to_string()), max: (v, text.to_string()) }),
            Some(e) => {
                if v < e.min.0 {
                    e.min = (v, text.to_string());
                }
                if v > e.max.0 {
                    e.max = (v, text.to_string());
                }
            }
        }
    }

    fn texts(slot: &Option<Self>) -> Option<(String, String)> {
        slot.as_ref().map(|e| (e.min.1.clone(), e.max.1.clone()))
    }
}

/// One temporal candidate format and the extremes of the values it read.
#[derive(Debug, Clone)]
struct Temporal<T> {
    format: &'static str,
    ok: bool,
    extreme: Option<Extreme<T>>,
}

fn temporals<T>(formats: &[&'static str]) -> Vec<Temporal<T>> {
    formats.iter().map(|f| Temporal { format: f, ok: true, extreme: None }).collect()
}

/// The first format every value fits, and the other formats that read the same values: only
/// its day/month swap can (`%b` and `%B` read the same ones), and a format with no day and
/// month to swap (ISO's `default`) is ambiguous with nothing.
fn first_fitting<T>(candidates: &[Temporal<T>]) -> Option<(&Temporal<T>, Vec<&'static str>)> {
    let t = candidates.iter().find(|t| t.ok)?;
    let swapped = swap_day_month(t.format);
    let others = candidates.iter().filter(|o| o.ok && o.format == swapped && swapped != t.format).map(|o| o.format);
    Some((t, others.collect()))
}

/// What every sampled value of one column fits.
#[derive(Debug, Clone)]
pub struct Column {
    /// Cells that are not a missing marker.
    pub values: u64,
    /// Count of each of [`MISSING_MARKERS`] in the column.
    pub markers: [u64; MISSING_MARKERS.len()],
    /// Rows in which the column had no cell at all (a file without this column).
    pub absent: u64,
    integer: bool,
    /// Every integer is written as its canonical text (no `+`, no `-0`), so text equality is
    /// value equality (for key guesses).
    integer_canonical: bool,
    int_extreme: Option<Extreme<i64>>,
    /// Every value is four digits (a year, if the column is named like one).
    year: bool,
    /// Every value is a plain decimal `-?\d+(\.\d+)?` (no leading zeros).
    decimal: bool,
    decimal_int_digits: u32,
    decimal_scale: u32,
    dec_extreme: Option<Extreme<i128>>,
    float: bool,
    float_extreme: Option<Extreme<f64>>,
    /// Index into [`BOOLEAN_FAMILIES`] once a value picked one.
    boolean: Option<Option<usize>>,
    true_seen: Vec<String>,
    false_seen: Vec<String>,
    dates: Vec<Temporal<i32>>,
    datetimes: Vec<Temporal<i64>>,
    times: Vec<Temporal<i64>>,
    /// Some digit-only value starts with `0` (a code such as `007`).
    pub leading_zeros: bool,
    /// Some datetime value carries an offset or `Z`.
    has_offset: bool,
    /// Length in characters of the shortest and longest value.
    pub min_chars: usize,
    pub max_chars: usize,
    /// Every value has the same length in bytes.
    same_bytes: Option<Option<usize>>,
    /// Distinct values while they are few and short; `None` once the cap was passed.
    distinct: Option<Vec<String>>,
}

impl Default for Column {
    fn default() -> Self {
        Column {
            values: 0,
            markers: [0; MISSING_MARKERS.len()],
            absent: 0,
            integer: true,
            integer_canonical: true,
            int_extreme: None,
            year: true,
            decimal: true,
            decimal_int_digits: 0,
            decimal_scale: 0,
            dec_extreme: None,
            float: true,
            float_extreme: None,
            boolean: Some(None),
            true_seen: Vec::new(),
            false_seen: Vec::new(),
            dates: temporals(DATE_FORMATS),
            datetimes: temporals(DATETIME_FORMATS),
            times: temporals(TIME_FORMATS),
            leading_zeros: false,
            has_offset: false,
            min_chars: usize::MAX,
            max_chars: 0,
            same_bytes: None,
            distinct: Some(Vec::new()),
        }
    }
}

/// `-?\d+(\.\d+)?`: the integer digits and decimal places, or `None`.
fn plain_decimal(s: &str) -> Option<(u32, u32)> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Some((int.len() as u32, frac.map_or(0, |f| f.len() as u32)))
}

/// A number written with a leading zero before another digit (`007`, `-01.5`): a code.
fn has_leading_zero(s: &str) -> bool {
    let b = s.trim_start_matches(['-', '+']).as_bytes();
    b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit()
}

impl Column {
    /// Counts a cell that is one of [`MISSING_MARKERS`] (`i` its index) instead of a value.
    pub fn observe_marker(&mut self, i: usize) {
        self.markers[i] += 1;
    }

    /// One value (a cell that is not a missing marker).
    pub fn observe(&mut self, s: &str) {
        self.values += 1;
        let chars = s.chars().count();
        self.min_chars = self.min_chars.min(chars);
        self.max_chars = self.max_chars.max(chars);
        self.same_bytes = match self.same_bytes {
            None => Some(Some(s.len())),
            Some(Some(n)) if n == s.len() => Some(Some(n)),
            _ => Some(None),
        };
        if let Some(d) = &mut self.distinct
            && !d.iter().any(|v| v == s)
        {
            if d.len() >= ENUM_MAX_VALUES || s.len() > ENUM_MAX_VALUE_BYTES {
                self.distinct = None;
            } else {
                d.push(s.to_string());
            }
        }
        let syn = NumberSyntax::default();
        let leading_zero = has_leading_zero(s);
        if leading_zero && s.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.') {
            self.leading_zeros = true;
        }
        if self.integer {
            match parse_integer(s, &syn) {
                Ok(v) if !leading_zero => {
                    if s.starts_with('+') || s == "-0" {
                        self.integer_canonical = false;
                    }
                    Extreme::update(&mut self.int_extreme, v, s);
                }
                _ => self.integer = false,
            }
        }
        if self.year && !(s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())) {
            self.year = false;
        }
        if self.decimal {
            match plain_decimal(s) {
                Some((int, scale)) if !leading_zero && scale <= MAX_DECIMAL_SCALE => {
                    self.decimal_int_digits = self.decimal_int_digits.max(int);
                    self.decimal_scale = self.decimal_scale.max(scale);
                    match parse_decimal(s, &syn, 38, MAX_DECIMAL_SCALE as i8) {
                        Ok(v) => Extreme::update(&mut self.dec_extreme, v, s),
                        Err(_) => self.decimal = false,
                    }
                }
                _ => self.decimal = false,
            }
        }
        if self.float {
            match parse_float(s, &syn) {
                Ok(v) if !leading_zero => {
                    if !v.is_nan() {
                        Extreme::update(&mut self.float_extreme, v, s);
                    }
                }
                _ => self.float = false,
            }
        }
        if let Some(family) = self.boolean {
            let found = BOOLEAN_FAMILIES.iter().enumerate().find_map(|(i, (t, f))| {
                if t.contains(&s) {
                    Some((i, true))
                } else if f.contains(&s) {
                    Some((i, false))
                } else {
                    None
                }
            });
            self.boolean = match (family, found) {
                (None, Some((i, _))) => Some(Some(i)),
                (Some(f), Some((i, _))) if f == i => Some(Some(f)),
                _ => None,
            };
            if let Some((_, truth)) = found {
                let seen = if truth { &mut self.true_seen } else { &mut self.false_seen };
                if !seen.iter().any(|v| v == s) {
                    seen.push(s.to_string());
                }
            }
        }
        // Temporal candidates only for text with a digit; most columns drop them at once.
        let digit = s.bytes().any(|b| b.is_ascii_digit());
        for t in self.dates.iter_mut().filter(|t| t.ok) {
            match parse_date(s, &format_of(t.format)) {
                Ok(v) if digit => Extreme::update(&mut t.extreme, v, s),
                _ => t.ok = false,
            }
        }
        let mut offset = false;
        for t in self.datetimes.iter_mut().filter(|t| t.ok) {
            match parse_datetime(s, &format_of(t.format)) {
                Ok(v) if digit => {
                    Extreme::update(&mut t.extreme, v, s);
                    offset = true;
                }
                _ => t.ok = false,
            }
        }
        let after_seconds = s.as_bytes().get(19..).unwrap_or_default();
        if offset && (s.ends_with(['Z', 'z']) || after_seconds.iter().any(|b| matches!(b, b'+' | b'-'))) {
            self.has_offset = true;
        }
        for t in self.times.iter_mut().filter(|t| t.ok) {
            match parse_time(s, &format_of(t.format)) {
                Ok(v) if digit => Extreme::update(&mut t.extreme, v, s),
                _ => t.ok = false,
            }
        }
    }

    /// The narrowest type that every value fits; `name` is the column's name (a year is only
    /// inferred for a column named like one).
    pub fn decide(&self, name: &str) -> Guess {
        if self.values == 0 {
            return Guess {
                kind: Kind::String,
                reason: "no value to go by: text".into(),
                bounds: None,
                key_safe: false,
            };
        }
        if let Some(Some(family)) = self.boolean {
            let (t, f) = BOOLEAN_FAMILIES[family];
            // A side never seen gets the spelling in the same case as the side that was.
            let pick = |seen: &[String], other_seen: &[String], mine: &[&str], other: &[&str]| -> Vec<String> {
                if !seen.is_empty() {
                    return seen.to_vec();
                }
                let pos = other.iter().position(|o| other_seen.iter().any(|s| s == o)).unwrap_or(0);
                vec![mine[pos.min(mine.len() - 1)].to_string()]
            };
            let true_values = pick(&self.true_seen, &self.false_seen, t, f);
            let false_values = pick(&self.false_seen, &self.true_seen, f, t);
            let reason = format!("boolean: {} true, {} false", true_values.join("/"), false_values.join("/"));
            return Guess { kind: Kind::Boolean { true_values, false_values }, reason, bounds: None, key_safe: false };
        }
        let ints = Extreme::texts(&self.int_extreme);
        if self.integer && self.year && name.to_ascii_lowercase().contains("year") {
            let (lo, hi) = ints.clone().unwrap_or_default();
            return Guess {
                kind: Kind::Year,
                reason: format!("year from {lo} to {hi}"),
                bounds: ints,
                key_safe: self.integer_canonical,
            };
        }
        if self.integer {
            let (lo, hi) = ints.clone().unwrap_or_default();
            return Guess {
                kind: Kind::Integer,
                reason: format!("integer from {} to {}", group(&lo), group(&hi)),
                bounds: ints,
                key_safe: self.integer_canonical,
            };
        }
        if self.decimal && self.decimal_int_digits + self.decimal_scale <= 38 {
            let (lo, hi) = Extreme::texts(&self.dec_extreme).unwrap_or_default();
            let scale = self.decimal_scale;
            let precision = DECIMAL_PRECISION.max(self.decimal_int_digits + scale).min(38);
            let reason = if scale == 0 {
                format!("whole numbers beyond 64 bits ({} digits): exact decimal", self.decimal_int_digits)
            } else {
                format!("decimal from {lo} to {hi}, at most {scale} decimal place{}", if scale == 1 { "" } else { "s" })
            };
            return Guess { kind: Kind::Decimal { precision, scale }, reason, bounds: Some((lo, hi)), key_safe: false };
        }
        if self.float {
            let bounds = Extreme::texts(&self.float_extreme);
            let (lo, hi) = bounds.clone().unwrap_or_default();
            return Guess { kind: Kind::Number, reason: format!("number from {lo} to {hi}"), bounds, key_safe: false };
        }
        let fitting = |ts: &[&'static str]| ts.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
        if let Some((t, others)) = first_fitting(&self.dates) {
            let bounds = Extreme::texts(&t.extreme);
            let (lo, hi) = bounds.clone().unwrap_or_default();
            let mut reason = format!("date `{}` from {lo} to {hi}", t.format);
            if !others.is_empty() {
                reason.push_str(&format!(
                    "; ambiguous: every value also reads as {} (no day above 12 in the sample), so the first in the list was taken: check it",
                    fitting(&others)
                ));
            } else if t.format == "%d/%m/%Y" {
                reason.push_str("; day first: some day is above 12");
            }
            return Guess { kind: Kind::Date(t.format.to_string()), reason, bounds, key_safe: t.format == "default" };
        }
        if let Some((t, others)) = first_fitting(&self.datetimes) {
            let bounds = Extreme::texts(&t.extreme);
            let (lo, hi) = bounds.clone().unwrap_or_default();
            let mut reason = format!("datetime `{}` from {lo} to {hi}", t.format);
            if self.has_offset {
                reason.push_str(", with UTC offsets (stored in UTC)");
            } else {
                reason.push_str(", no offset (taken as UTC)");
            }
            if !others.is_empty() {
                reason.push_str(&format!("; ambiguous: every value also reads as {}: check it", fitting(&others)));
            }
            return Guess {
                kind: Kind::Datetime(t.format.to_string()),
                reason,
                bounds,
                key_safe: !self.has_offset && matches!(self.same_bytes, Some(Some(_))),
            };
        }
        if let Some(t) = self.times.iter().find(|t| t.ok) {
            let bounds = Extreme::texts(&t.extreme);
            let (lo, hi) = bounds.clone().unwrap_or_default();
            return Guess {
                kind: Kind::Time(t.format.to_string()),
                reason: format!("time `{}` from {lo} to {hi}", t.format),
                bounds,
                key_safe: matches!(self.same_bytes, Some(Some(_))),
            };
        }
        let mut reason = if self.min_chars == self.max_chars {
            format!("text of {} characters", self.min_chars)
        } else {
            format!("text of {} to {} characters", self.min_chars, self.max_chars)
        };
        if self.leading_zeros {
            reason.push_str("; codes with leading zeros stay text");
        }
        Guess { kind: Kind::String, reason, bounds: None, key_safe: true }
    }

    /// The distinct values, when there were few and short ones.
    pub fn distinct(&self) -> Option<&[String]> {
        self.distinct.as_deref()
    }
}

/// `%m/%d/%Y` for `%d/%m/%Y` and the other way round (the same pattern when it has no both).
fn swap_day_month(format: &str) -> String {
    format.replace("%m", "%\u{0}").replace("%d", "%m").replace("%\u{0}", "%d")
}

/// `1234567` as `1,234,567` (comments only).
pub fn group(n: &str) -> String {
    let (sign, digits) = n.strip_prefix('-').map_or(("", n), |d| ("-", d));
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return n.to_string();
    }
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// The inferred type of a column; serialized as the Table Schema keys it becomes (`type`,
/// `format`, `decimal`, `trueValues`, `falseValues`).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Integer,
    Decimal { precision: u32, scale: u32 },
    Number,
    Boolean { true_values: Vec<String>, false_values: Vec<String> },
    Date(String),
    Datetime(String),
    Time(String),
    Year,
}

impl Kind {
    /// The contract's `type` for this kind.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Decimal { .. } | Kind::Number => "number",
            Kind::Boolean { .. } => "boolean",
            Kind::Date(_) => "date",
            Kind::Datetime(_) => "datetime",
            Kind::Time(_) => "time",
            Kind::Year => "year",
        }
    }
}

/// A column's type with why, and its smallest and largest value as written.
#[derive(Debug, Clone)]
pub struct Guess {
    pub kind: Kind,
    pub reason: String,
    pub bounds: Option<(String, String)>,
    /// Equal texts are equal values and the type can be a key (not a float or a boolean).
    pub key_safe: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> Kind {
        let mut c = Column::default();
        values.iter().for_each(|v| c.observe(v));
        c.decide("x").kind
    }

    #[test]
    fn narrowest_types() {
        assert_eq!(guess(&["1", "-43", "9007199254740993"]), Kind::Integer);
        assert_eq!(guess(&["007", "12"]), Kind::String);
        assert_eq!(guess(&["1.5", "2.25"]), Kind::Decimal { precision: 18, scale: 2 });
        assert_eq!(guess(&["1.123456", "2"]), Kind::Number);
        assert_eq!(guess(&["99999999999999999999"]), Kind::Decimal { precision: 20, scale: 0 });
        assert_eq!(guess(&["2024-01-31"]), Kind::Date("default".into()));
        assert_eq!(guess(&["31.01.2024"]), Kind::Date("%d.%m.%Y".into()));
        assert_eq!(guess(&["25/12/2024", "01/02/2024"]), Kind::Date("%d/%m/%Y".into()));
        assert_eq!(guess(&["Jan 05 2024"]), Kind::Date("%b %d %Y".into()));
        assert_eq!(guess(&["2024-01-01T10:00:00+02:00"]), Kind::Datetime("default".into()));
        assert_eq!(guess(&["10:30"]), Kind::Time("%H:%M".into()));
        assert_eq!(
            guess(&["yes", "No"]),
            Kind::Boolean { true_values: vec!["yes".into()], false_values: vec!["No".into()] }
        );
        assert_eq!(guess(&["yes", "N"]), Kind::String);
        assert_eq!(guess(&["0", "1"]), Kind::Integer);
        assert_eq!(swap_day_month("%m/%d/%Y %H:%M"), "%d/%m/%Y %H:%M");
    }

    #[test]
    fn grouping() {
        assert_eq!(group("-1301"), "-1,301");
        assert_eq!(group("336776"), "336,776");
        assert_eq!(group("12"), "12");
    }
}
