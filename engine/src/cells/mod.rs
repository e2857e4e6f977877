//! Typed parsing of single cell values: the hot inner loop of validation.
//!
//! Each parser takes one cell's text (already unquoted, never a missing value) and returns the
//! typed value in the representation the Arrow columns use: `i64`, `f64`, unscaled `i128`
//! decimals, days since 1970-01-01, microseconds since midnight or since the Unix epoch (UTC).
//! The semantics are Frictionless Table Schema v1, kept strict: surrounding whitespace is never
//! trimmed, and a decimal with more fractional digits than its scale is an error, never rounded.
//!
//! The common spellings (`-12`, `12.34`, `2024-01-05`, `2024-01-05T10:00:03Z`) are parsed by hand,
//! without allocating; chrono is used only for strptime-style patterns and for the
//! `format = "any"` fallbacks. The hand-written calendar arithmetic is tested against chrono.
//!
//! ```
//! use glueless_engine::cells::{parse_datetime, parse_decimal};
//! use glueless_engine::contract::{NumberSyntax, TemporalFormat};
//!
//! let syn = NumberSyntax::default();
//! assert_eq!(parse_decimal("-1.5", &syn, 12, 2), Ok(-150));
//! let err = parse_decimal("1.234", &syn, 12, 2).unwrap_err();
//! assert_eq!(err.to_string(), "has 3 decimal places but the field allows 2");
//! let ts = parse_datetime("2024-01-01T02:00:00+02:00", &TemporalFormat::Default);
//! assert_eq!(ts, Ok(1_704_067_200_000_000)); // 2024-01-01T00:00:00Z
//! ```

use crate::contract::{FieldKind, NumberSyntax, StringFormat, TemporalFormat, Value};
use chrono::format::ParseErrorKind;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::fmt;

/// Why a cell did not parse. `Display` gives a sentence fragment meant to follow the value,
/// e.g. "`1.234` in `price` " + "has 3 decimal places but the field allows 2".
#[derive(Debug, Clone, PartialEq)]
pub enum CellError {
    NotInteger,
    IntegerOutOfRange,
    NotNumber,
    NotDecimal,
    /// More significant fractional digits (`places`) than the field's scale.
    TooManyDecimalPlaces {
        places: u32,
        scale: i8,
    },
    /// More digits than `precision` allows at `scale`.
    DecimalOutOfRange {
        precision: u8,
        scale: i8,
    },
    NotBoolean,
    /// The text does not have the shape the format asks for.
    BadTemporal {
        kind: TemporalKind,
        format: ExpectedFormat,
    },
    /// The shape is right but no such date/time exists (`2023-02-29`, `25:00:00`, year 0).
    InvalidTemporal {
        kind: TemporalKind,
    },
    NotYear,
    YearOutOfRange,
    /// Not valid for the field's string `format` (never `StringFormat::Default`).
    BadStringFormat(StringFormat),
}

/// Which temporal type a [`CellError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalKind {
    Date,
    Time,
    Datetime,
}

/// The format a temporal cell was expected in, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedFormat {
    Default,
    Any,
    /// The strptime-style pattern (only built on the error path).
    Pattern(Box<str>),
}

impl ExpectedFormat {
    fn of(fmt: &TemporalFormat) -> Self {
        match fmt {
            TemporalFormat::Default => ExpectedFormat::Default,
            TemporalFormat::Any => ExpectedFormat::Any,
            TemporalFormat::Pattern(p) => ExpectedFormat::Pattern(p.as_str().into()),
        }
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TemporalKind::*;
        match self {
            CellError::NotInteger => f.write_str("is not an integer"),
            CellError::IntegerOutOfRange => f.write_str("is out of range for a 64-bit integer"),
            CellError::NotNumber => f.write_str("is not a number"),
            CellError::NotDecimal => f.write_str("is not a decimal number"),
            CellError::TooManyDecimalPlaces { places, scale } if *scale >= 0 => {
                write!(f, "has {places} decimal places but the field allows {scale}")
            }
            CellError::TooManyDecimalPlaces { scale, .. } => {
                write!(f, "is not a whole multiple of 1e{} (decimal scale {scale})", -i32::from(*scale))
            }
            CellError::DecimalOutOfRange { precision, scale } => {
                write!(f, "is out of range for decimal({precision}, {scale})")
            }
            CellError::NotBoolean => f.write_str("is not one of the field's trueValues or falseValues"),
            CellError::BadTemporal { kind, format } => {
                let name = match kind {
                    Date => "date",
                    Time => "time",
                    Datetime => "datetime",
                };
                match format {
                    ExpectedFormat::Pattern(p) => write!(f, "does not match the {name} format {p}"),
                    ExpectedFormat::Any => write!(f, "is not a recognised {name}"),
                    ExpectedFormat::Default => f.write_str(match kind {
                        Date => "is not a date in the form YYYY-MM-DD",
                        Time => "is not a time in the form hh:mm:ss[.ffffff]",
                        Datetime => "is not a datetime in the form YYYY-MM-DDThh:mm:ss[.ffffff][Z|±hh:mm]",
                    }),
                }
            }
            CellError::InvalidTemporal { kind } => f.write_str(match kind {
                Date => "is not a valid calendar date",
                Time => "is not a valid time of day",
                Datetime => "is not a valid date and time",
            }),
            CellError::NotYear => f.write_str("is not a year"),
            CellError::YearOutOfRange => f.write_str("is out of range for a year"),
            CellError::BadStringFormat(format) => f.write_str(match format {
                StringFormat::Email => "is not a valid email address",
                StringFormat::Uri => "is not a URI (scheme:rest, without spaces)",
                StringFormat::Uuid => "is not a UUID (8-4-4-4-12 hexadecimal digits)",
                StringFormat::Binary => "is not valid base64",
                StringFormat::Default => "is not a valid string",
            }),
        }
    }
}

impl std::error::Error for CellError {}

// ------------------------------------------------------------------------------------------
// Numbers

fn is_plain(syn: &NumberSyntax) -> bool {
    syn.bare_number && syn.group_char.is_none() && syn.decimal_char == '.'
}

fn split_sign(b: &[u8]) -> (bool, &[u8]) {
    match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    }
}

/// Rewrites a number in the field's syntax as plain ASCII (`.` decimal point, no group
/// characters) into `buf`, which must be at least `s.len()` long. `None` when a character does
/// not belong in a number.
fn normalize<'b>(s: &str, syn: &NumberSyntax, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let dec = syn.decimal_char;
    let s = if syn.bare_number {
        s
    } else {
        // `$1,000` -> `1,000`, `95 %` -> `95`: keep what can start and end a number.
        s.trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '+' || c == '-' || c == dec))
            .trim_end_matches(|c: char| !c.is_ascii_digit())
    };
    let mut n = 0;
    let mut prev_digit = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let byte = if Some(c) == syn.group_char {
            // Only between two digits: `1,000` but not `,100`, `1,,000` or `1,`.
            if !(prev_digit && chars.peek().is_some_and(char::is_ascii_digit)) {
                return None;
            }
            prev_digit = false;
            continue;
        } else if c == dec {
            b'.'
        } else if c.is_ascii() && c != '.' {
            c as u8
        } else {
            return None;
        };
        prev_digit = byte.is_ascii_digit();
        buf[n] = byte;
        n += 1;
    }
    Some(&buf[..n])
}

/// Runs `f` on the number normalized to plain syntax, on a stack buffer unless it is long.
fn with_normalized<T>(
    s: &str,
    syn: &NumberSyntax,
    err: CellError,
    f: impl FnOnce(&[u8]) -> Result<T, CellError>,
) -> Result<T, CellError> {
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let buf = if s.len() <= stack.len() {
        &mut stack[..]
    } else {
        heap.resize(s.len(), 0);
        &mut heap[..]
    };
    f(normalize(s, syn, buf).ok_or(err)?)
}

fn integer_bytes(b: &[u8]) -> Result<i64, CellError> {
    let (neg, digits) = split_sign(b);
    if digits.is_empty() {
        return Err(CellError::NotInteger);
    }
    if digits.len() <= 18 {
        // Below 10^18 < 2^63: no overflow to watch for.
        let mut acc: u64 = 0;
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err(CellError::NotInteger);
            }
            acc = acc * 10 + u64::from(d);
        }
        return Ok(if neg { -(acc as i64) } else { acc as i64 });
    }
    let mut acc: u64 = 0;
    let mut overflow = false;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err(CellError::NotInteger);
        }
        match acc.checked_mul(10).and_then(|a| a.checked_add(u64::from(d))) {
            Some(a) => acc = a,
            None => overflow = true,
        }
    }
    match (neg, overflow) {
        (false, false) if acc <= i64::MAX as u64 => Ok(acc as i64),
        // Up to 2^63, so that i64::MIN parses; wrapping_neg is exact in that range.
        (true, false) if acc <= 1 << 63 => Ok((acc as i64).wrapping_neg()),
        _ => Err(CellError::IntegerOutOfRange),
    }
}

/// A 64-bit integer: optional sign, ASCII digits (leading zeros allowed), in the field's syntax.
pub fn parse_integer(s: &str, syn: &NumberSyntax) -> Result<i64, CellError> {
    if is_plain(syn) {
        integer_bytes(s.as_bytes())
    } else {
        with_normalized(s, syn, CellError::NotInteger, integer_bytes)
    }
}

/// NaN and the infinities, in the spellings Frictionless and Rust use.
fn special_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if rest.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        f64::INFINITY
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn float_bytes(b: &[u8]) -> Result<f64, CellError> {
    // normalize() produced ASCII only, so this never fails; letters other than an exponent
    // are rejected by the float grammar below (NaN/inf were handled before normalizing).
    let s = std::str::from_utf8(b).map_err(|_| CellError::NotNumber)?;
    if s.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') {
        return Err(CellError::NotNumber);
    }
    s.parse().map_err(|_| CellError::NotNumber)
}

/// A 64-bit float: decimal digits, optional fraction and exponent, or NaN / INF / -INF.
pub fn parse_float(s: &str, syn: &NumberSyntax) -> Result<f64, CellError> {
    if is_plain(syn) {
        // Rust's grammar is Frictionless' plus "infinity" in any case; it rejects "", "1_000",
        // " 1" and hex, as we want.
        return s.parse().map_err(|_| CellError::NotNumber);
    }
    if let Some(v) = special_float(s) {
        return Ok(v);
    }
    with_normalized(s, syn, CellError::NotNumber, float_bytes)
}

fn digits_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |p| from + p)
}

fn decimal_bytes(b: &[u8], precision: u8, scale: i8) -> Result<i128, CellError> {
    let (neg, rest) = split_sign(b);
    let int_end = digits_end(rest, 0);
    let int = &rest[..int_end];
    let mut i = int_end;
    let mut frac: &[u8] = &[];
    if rest.get(i) == Some(&b'.') {
        let end = digits_end(rest, i + 1);
        frac = &rest[i + 1..end];
        i = end;
    }
    if int.is_empty() && frac.is_empty() {
        return Err(CellError::NotDecimal);
    }
    let mut exp: i64 = 0;
    if matches!(rest.get(i), Some(b'e' | b'E')) {
        let (exp_neg, e) = split_sign(&rest[i + 1..]);
        let end = digits_end(e, 0);
        if end == 0 || end != e.len() {
            return Err(CellError::NotDecimal);
        }
        // Saturate: any exponent this large is out of range or too precise anyway.
        exp = e.iter().fold(0i64, |a, &c| (a * 10 + i64::from(c - b'0')).min(1_000_000));
        if exp_neg {
            exp = -exp;
        }
        i = rest.len();
    }
    if i != rest.len() {
        return Err(CellError::NotDecimal);
    }
    // The digits of int ++ frac, significant ones between `first` and `last`.
    let total = int.len() + frac.len();
    let digit = |k: usize| if k < int.len() { int[k] } else { frac[k - int.len()] };
    let Some(first) = (0..total).find(|&k| digit(k) != b'0') else {
        return Ok(0);
    };
    let last = (first..total).rev().find(|&k| digit(k) != b'0').unwrap_or(first);
    let significant = (last - first + 1) as i64;
    // value = m * 10^e with m the significant digits; unscaled = m * 10^(e + scale).
    let e = (total - 1 - last) as i64 - frac.len() as i64 + exp;
    let shift = e + i64::from(scale);
    if shift < 0 {
        let places = u32::try_from(-e).unwrap_or(u32::MAX);
        return Err(CellError::TooManyDecimalPlaces { places, scale });
    }
    if significant + shift > i64::from(precision.min(38)) {
        return Err(CellError::DecimalOutOfRange { precision, scale });
    }
    // At most 38 digits: fits in i128 without overflow checks.
    let mut m: i128 = 0;
    for k in first..=last {
        m = m * 10 + i128::from(digit(k) - b'0');
    }
    m *= 10i128.pow(shift as u32);
    Ok(if neg { -m } else { m })
}

/// An exact decimal as an unscaled `i128` at `scale` (`"12.34"` at scale 2 is `1234`).
///
/// Exponents are accepted (`1.5e3`); trailing zeros beyond the scale are fine (`1.500`), other
/// digits beyond it are an error (never rounded), as is a value with more than `precision`
/// digits at that scale.
pub fn parse_decimal(s: &str, syn: &NumberSyntax, precision: u8, scale: i8) -> Result<i128, CellError> {
    if is_plain(syn) {
        decimal_bytes(s.as_bytes(), precision, scale)
    } else {
        with_normalized(s, syn, CellError::NotDecimal, |b| decimal_bytes(b, precision, scale))
    }
}

/// Exact match against the field's `trueValues` / `falseValues`.
pub fn parse_boolean(s: &str, true_values: &[String], false_values: &[String]) -> Result<bool, CellError> {
    if true_values.iter().any(|v| v == s) {
        Ok(true)
    } else if false_values.iter().any(|v| v == s) {
        Ok(false)
    } else {
        Err(CellError::NotBoolean)
    }
}

/// A year: an optionally signed integer in `i32` range, such as `2024`.
pub fn parse_year(s: &str) -> Result<i32, CellError> {
    let (neg, digits) = split_sign(s.as_bytes());
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CellError::NotYear);
    }
    let mut acc: i64 = 0;
    for &c in digits {
        acc = acc * 10 + i64::from(c - b'0');
        if acc > 1 << 31 {
            return Err(CellError::YearOutOfRange);
        }
    }
    i32::try_from(if neg { -acc } else { acc }).map_err(|_| CellError::YearOutOfRange)
}

// ------------------------------------------------------------------------------------------
// Dates and times

/// Hand-parse failures: wrong shape, or right shape but no such value.
enum Bad {
    Shape,
    Invalid,
}

impl Bad {
    fn into_error(self, kind: TemporalKind, fmt: &TemporalFormat) -> CellError {
        match self {
            Bad::Shape => CellError::BadTemporal { kind, format: ExpectedFormat::of(fmt) },
            Bad::Invalid => CellError::InvalidTemporal { kind },
        }
    }

    fn of_chrono(e: chrono::ParseError) -> Bad {
        match e.kind() {
            ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => Bad::Invalid,
            _ => Bad::Shape,
        }
    }
}

const US_PER_SEC: i64 = 1_000_000;
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;
/// `NaiveDate::num_days_from_ce()` of 1970-01-01.
const CE_TO_UNIX_DAYS: i32 = 719_163;

#[inline]
fn d2(b: &[u8], i: usize) -> Result<u32, Bad> {
    let (hi, lo) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    if hi < 10 && lo < 10 { Ok(u32::from(hi) * 10 + u32::from(lo)) } else { Err(Bad::Shape) }
}

fn is_leap(y: i32) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// The date must be valid.
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32; // [0, 399]
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe as i32 - 719_468
}

/// `YYYY-MM-DD`, years 0001 to 9999.
fn iso_date(b: &[u8]) -> Result<i32, Bad> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(Bad::Shape);
    }
    let y = (d2(b, 0)? * 100 + d2(b, 2)?) as i32;
    let (m, d) = (d2(b, 5)?, d2(b, 8)?);
    let days_in_month = match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month {
        return Err(Bad::Invalid);
    }
    Ok(days_from_civil(y, m, d))
}

/// `hh:mm:ss[.f{1,9}]` at the start of `b`: microseconds since midnight (the fraction truncated)
/// and the bytes used.
fn iso_time_prefix(b: &[u8]) -> Result<(i64, usize), Bad> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return Err(Bad::Shape);
    }
    let (h, m, s) = (d2(b, 0)?, d2(b, 3)?, d2(b, 6)?);
    if h > 23 || m > 59 || s > 59 {
        return Err(Bad::Invalid);
    }
    let mut us = i64::from(h * 3600 + m * 60 + s) * US_PER_SEC;
    let mut used = 8;
    if b.get(8) == Some(&b'.') {
        let end = digits_end(b, 9);
        let frac = &b[9..end];
        if frac.is_empty() || frac.len() > 9 {
            return Err(Bad::Shape);
        }
        let micros = frac.iter().chain(std::iter::repeat(&b'0')).take(6);
        us += micros.fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
        used = end;
    }
    Ok((us, used))
}

fn iso_time(b: &[u8]) -> Result<i64, Bad> {
    let (us, used) = iso_time_prefix(b)?;
    if used == b.len() { Ok(us) } else { Err(Bad::Shape) }
}

/// `Z`, `±hh:mm`, `±hhmm` or `±hh`: the offset east of UTC in seconds.
fn iso_offset(b: &[u8]) -> Result<i64, Bad> {
    let sign = match b.first() {
        Some(b'Z' | b'z') if b.len() == 1 => return Ok(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(Bad::Shape),
    };
    let (h, m) = match b.len() {
        3 => (d2(b, 1)?, 0),
        5 => (d2(b, 1)?, d2(b, 3)?),
        6 if b[3] == b':' => (d2(b, 1)?, d2(b, 4)?),
        _ => return Err(Bad::Shape),
    };
    if h > 23 || m > 59 {
        return Err(Bad::Invalid);
    }
    Ok(sign * i64::from(h * 3600 + m * 60))
}

/// `YYYY-MM-DD[T| ]hh:mm:ss[.f{1,9}][Z|±hh:mm|±hhmm|±hh]`, no offset meaning UTC.
fn iso_datetime(b: &[u8]) -> Result<i64, Bad> {
    iso_datetime_by(b, iso_date)
}

/// [`iso_datetime`] with its date read by `date`.
#[inline(always)]
fn iso_datetime_by(b: &[u8], date: impl FnOnce(&[u8]) -> Result<i32, Bad>) -> Result<i64, Bad> {
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(Bad::Shape);
    }
    let days = date(&b[..10])?;
    if b.len() == 20 && b[19] == b'Z' {
        // The most common spelling, `2024-01-01T00:00:03Z`, without the fraction/offset scan.
        return Ok(i64::from(days) * US_PER_DAY + iso_time(&b[11..19])?);
    }
    let (us, used) = iso_time_prefix(&b[11..])?;
    let rest = &b[11 + used..];
    let offset = if rest.is_empty() { 0 } else { iso_offset(rest)? };
    Ok(i64::from(days) * US_PER_DAY + us - offset * US_PER_SEC)
}

/// chrono skips whitespace before numbers; a cell with surrounding whitespace the pattern does
/// not have is rejected, as everywhere else.
fn edges_match(s: &str, pattern: &str) -> bool {
    let ws_start = |t: &str| t.starts_with(char::is_whitespace);
    let ws_end = |t: &str| t.ends_with(char::is_whitespace);
    (!ws_start(s) || ws_start(pattern)) && (!ws_end(s) || ws_end(pattern))
}

fn chrono_date(s: &str, pattern: &str) -> Result<i32, Bad> {
    if !edges_match(s, pattern) {
        return Err(Bad::Shape);
    }
    let d = NaiveDate::parse_from_str(s, pattern).map_err(Bad::of_chrono)?;
    Ok(d.num_days_from_ce() - CE_TO_UNIX_DAYS)
}

fn micros_of_day(t: NaiveTime) -> Result<i64, Bad> {
    if t.nanosecond() >= 1_000_000_000 {
        return Err(Bad::Invalid); // chrono's leap second, which the default format rejects too
    }
    Ok(i64::from(t.num_seconds_from_midnight()) * US_PER_SEC + i64::from(t.nanosecond() / 1000))
}

fn chrono_time(s: &str, pattern: &str) -> Result<i64, Bad> {
    if !edges_match(s, pattern) {
        return Err(Bad::Shape);
    }
    micros_of_day(NaiveTime::parse_from_str(s, pattern).map_err(Bad::of_chrono)?)
}

/// Whether a strptime pattern reads a UTC offset (`%z`, `%:z`, `%::z`, `%#z`).
fn has_offset_specifier(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.by_ref().find(|c| !matches!(c, ':' | '#')) {
                Some('z') => return true,
                _ => continue, // includes `%%`, whose second `%` is consumed here
            }
        }
    }
    false
}

fn chrono_datetime(s: &str, pattern: &str) -> Result<i64, Bad> {
    if !edges_match(s, pattern) {
        return Err(Bad::Shape);
    }
    let (naive, offset_secs) = if has_offset_specifier(pattern) {
        let dt = DateTime::parse_from_str(s, pattern).map_err(Bad::of_chrono)?;
        (dt.naive_local(), i64::from(dt.offset().local_minus_utc()))
    } else {
        match NaiveDateTime::parse_from_str(s, pattern) {
            Ok(dt) => (dt, 0),
            // A date-only pattern for a datetime field means midnight.
            Err(e) if e.kind() == ParseErrorKind::NotEnough => {
                let d = NaiveDate::parse_from_str(s, pattern).map_err(Bad::of_chrono)?;
                (d.and_time(NaiveTime::MIN), 0)
            }
            Err(e) => return Err(Bad::of_chrono(e)),
        }
    };
    let days = i64::from(naive.date().num_days_from_ce() - CE_TO_UNIX_DAYS);
    Ok(days * US_PER_DAY + micros_of_day(naive.time())? - offset_secs * US_PER_SEC)
}

/// Tries the hand-written ISO parser, then each chrono pattern; `Invalid` wins over `Shape`.
fn first_of<T>(iso: Result<T, Bad>, s: &str, patterns: &[&str], f: fn(&str, &str) -> Result<T, Bad>) -> Result<T, Bad> {
    let mut err = match iso {
        Ok(v) => return Ok(v),
        Err(Bad::Invalid) => return Err(Bad::Invalid),
        Err(Bad::Shape) => Bad::Shape,
    };
    for p in patterns {
        match f(s, p) {
            Ok(v) => return Ok(v),
            Err(Bad::Invalid) => err = Bad::Invalid,
            Err(Bad::Shape) => {}
        }
    }
    Err(err)
}

/// Unambiguous non-ISO spellings accepted by `format = "any"` (no `01/02/2024`: is it
/// January or February?).
const ANY_DATE: &[&str] =
    &["%Y/%m/%d", "%Y%m%d", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y", "%a, %d %b %Y"];
const ANY_TIME: &[&str] = &["%H:%M", "%H%M%S", "%I:%M %p", "%I:%M:%S %p"];
const ANY_DATETIME: &[&str] = &[
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%dT%H%M%S",
    "%Y%m%dT%H%M%SZ",
    "%Y-%m-%d",
    "%a, %d %b %Y %H:%M:%S %z",
    "%d %b %Y %H:%M:%S %z",
];

/// Days since 1970-01-01.
pub fn parse_date(s: &str, fmt: &TemporalFormat) -> Result<i32, CellError> {
    parse_date_after(s, fmt, &mut LastDate::default())
}

/// Microseconds since midnight; fractions beyond microseconds are truncated.
pub fn parse_time(s: &str, fmt: &TemporalFormat) -> Result<i64, CellError> {
    match fmt {
        TemporalFormat::Default => iso_time(s.as_bytes()),
        TemporalFormat::Any => first_of(iso_time(s.as_bytes()), s, ANY_TIME, chrono_time),
        TemporalFormat::Pattern(p) => chrono_time(s, p),
    }
    .map_err(|e| e.into_error(TemporalKind::Time, fmt))
}

/// The last `YYYY-MM-DD` read as valid, with its day number. The cells of a column often share
/// their date (timestamps in order, or grouped by day), and the date is half the work of an ISO
/// datetime: a cell whose first ten bytes are the last date's takes its day number from here.
#[derive(Debug, Default)]
pub struct LastDate(Option<([u8; 10], i32)>);

impl LastDate {
    #[inline(always)]
    fn days(&mut self, b: &[u8]) -> Result<i32, Bad> {
        let Ok(key) = <[u8; 10]>::try_from(b) else { return iso_date(b) };
        match self.0 {
            Some((last, days)) if last == key => Ok(days),
            _ => {
                let days = iso_date(b)?;
                self.0 = Some((key, days));
                Ok(days)
            }
        }
    }
}

/// [`parse_date`], with the day number of a default-format date equal to the last one taken
/// from `last`.
pub fn parse_date_after(s: &str, fmt: &TemporalFormat, last: &mut LastDate) -> Result<i32, CellError> {
    match fmt {
        TemporalFormat::Default => last.days(s.as_bytes()),
        TemporalFormat::Any => first_of(iso_date(s.as_bytes()), s, ANY_DATE, chrono_date),
        TemporalFormat::Pattern(p) => chrono_date(s, p),
    }
    .map_err(|e| e.into_error(TemporalKind::Date, fmt))
}

/// [`parse_datetime`], with the day number of a default-format datetime whose date equals the
/// last one taken from `last`.
pub fn parse_datetime_after(s: &str, fmt: &TemporalFormat, last: &mut LastDate) -> Result<i64, CellError> {
    match fmt {
        TemporalFormat::Default => iso_datetime_by(s.as_bytes(), |d| last.days(d)),
        TemporalFormat::Any => first_of(iso_datetime(s.as_bytes()), s, ANY_DATETIME, chrono_datetime),
        TemporalFormat::Pattern(p) => chrono_datetime(s, p),
    }
    .map_err(|e| e.into_error(TemporalKind::Datetime, fmt))
}

/// Microseconds since the Unix epoch, UTC. A value without an offset is taken as UTC.
pub fn parse_datetime(s: &str, fmt: &TemporalFormat) -> Result<i64, CellError> {
    parse_datetime_after(s, fmt, &mut LastDate::default())
}

// ------------------------------------------------------------------------------------------
// String formats

/// Checks a string against its `format`; `Default` accepts anything.
pub fn check_string_format(s: &str, f: StringFormat) -> Result<(), CellError> {
    let ok = match f {
        StringFormat::Default => true,
        StringFormat::Email => is_email(s),
        StringFormat::Uri => is_uri(s),
        StringFormat::Uuid => is_uuid(s.as_bytes()),
        StringFormat::Binary => is_base64(s.as_bytes()),
    };
    if ok { Ok(()) } else { Err(CellError::BadStringFormat(f)) }
}

/// A deliberately simple check: one `@`, a non-empty local part, a dotted domain, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

/// `scheme:rest` with a scheme `[A-Za-z][A-Za-z0-9+.-]*`, a non-empty rest, no spaces.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sb = scheme.bytes();
    sb.next().is_some_and(|c| c.is_ascii_alphabetic())
        && sb.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
        && !rest.is_empty()
        && !s.contains(char::is_whitespace)
}

/// `8-4-4-4-12` hexadecimal digits, either case.
fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Standard base64 (`A-Z a-z 0-9 + /`) with `=` padding to a multiple of 4 characters.
fn is_base64(b: &[u8]) -> bool {
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take(2).take_while(|c| **c == b'=').count();
    b[..b.len() - pad].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/'))
}

// ------------------------------------------------------------------------------------------
// Slow path for the contract loader

/// Parses a value of a field's type outside the hot loop, for enum members and bounds.
/// Strings are checked against their format; a year is a [`Value::Int`].
pub fn parse_value(kind: &FieldKind, text: &str) -> Result<Value, String> {
    let value = match kind {
        FieldKind::String { format } => check_string_format(text, *format).map(|()| Value::Str(text.to_string())),
        FieldKind::Integer { number } => parse_integer(text, number).map(Value::Int),
        FieldKind::Number { number, decimal: Some((p, s)) } => parse_decimal(text, number, *p, *s).map(Value::Decimal),
        FieldKind::Number { number, decimal: None } => parse_float(text, number).map(Value::Float),
        FieldKind::Boolean { true_values, false_values } => {
            parse_boolean(text, true_values, false_values).map(Value::Bool)
        }
        FieldKind::Date { format } => parse_date(text, format).map(Value::Date),
        FieldKind::Time { format } => parse_time(text, format).map(Value::Time),
        FieldKind::Datetime { format } => parse_datetime(text, format).map(Value::Datetime),
        FieldKind::Year => parse_year(text).map(|y| Value::Int(i64::from(y))),
    };
    value.map_err(|e| format!("`{text}` {e}"))
}

#[cfg(test)]
mod tests;
