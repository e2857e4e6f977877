//! Unit, regression and property tests of `cells`.

use super::*;
use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

fn plain() -> NumberSyntax {
    NumberSyntax::default()
}

fn syntax(bare_number: bool, group_char: Option<char>, decimal_char: char) -> NumberSyntax {
    NumberSyntax { bare_number, group_char, decimal_char }
}

fn pat(p: &str) -> TemporalFormat {
    TemporalFormat::Pattern(p.to_string())
}

fn ymd(y: i32, m: u32, d: u32) -> i32 {
    NaiveDate::from_ymd_opt(y, m, d).unwrap().num_days_from_ce() - CE_TO_UNIX_DAYS
}

fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().timestamp_micros()
}

const D: TemporalFormat = TemporalFormat::Default;
const ANY: TemporalFormat = TemporalFormat::Any;

#[test]
fn integers() {
    let p = plain();
    assert_eq!(parse_integer("004", &p), Ok(4));
    assert_eq!(parse_integer("-0", &p), Ok(0));
    assert_eq!(parse_integer("+17", &p), Ok(17));
    assert_eq!(parse_integer("9223372036854775807", &p), Ok(i64::MAX));
    assert_eq!(parse_integer("-9223372036854775808", &p), Ok(i64::MIN));
    assert_eq!(parse_integer("000000000000000000000009223372036854775807", &p), Ok(i64::MAX));
    // Either side of the 18 digits parsed without overflow checks.
    assert_eq!(parse_integer("-999999999999999999", &p), Ok(-999_999_999_999_999_999));
    assert_eq!(parse_integer("1000000000000000000", &p), Ok(1_000_000_000_000_000_000));
    assert_eq!(parse_integer("99999999999999999a", &p), Err(CellError::NotInteger));
    for over in ["9223372036854775808", "-9223372036854775809", "99999999999999999999999"] {
        assert_eq!(parse_integer(over, &p), Err(CellError::IntegerOutOfRange), "{over}");
    }
    for bad in ["", "+", "-", " 12", "12 ", "1.0", "1e3", "1_000", "0x10", "12a", "--1", "１"] {
        assert_eq!(parse_integer(bad, &p), Err(CellError::NotInteger), "{bad:?}");
    }
    assert_eq!(CellError::IntegerOutOfRange.to_string(), "is out of range for a 64-bit integer");
}

#[test]
fn integers_with_group_char_and_bare_number() {
    let grouped = syntax(true, Some(','), '.');
    assert_eq!(parse_integer("1,000,000", &grouped), Ok(1_000_000));
    assert_eq!(parse_integer("-1,000", &grouped), Ok(-1000));
    for bad in [",100", "100,", "1,,000", "$1,000"] {
        assert_eq!(parse_integer(bad, &grouped), Err(CellError::NotInteger), "{bad}");
    }
    let loose = syntax(false, Some(','), '.');
    assert_eq!(parse_integer("$1,000", &loose), Ok(1000));
    assert_eq!(parse_integer("95%", &loose), Ok(95));
    assert_eq!(parse_integer("-12 EUR", &loose), Ok(-12));
    assert_eq!(parse_integer("EUR", &loose), Err(CellError::NotInteger));
    // A non-ASCII group character (narrow no-break space), and `.` as group char.
    assert_eq!(parse_integer("1\u{202f}234", &syntax(true, Some('\u{202f}'), ',')), Ok(1234));
    assert_eq!(parse_integer("1.234.567", &syntax(true, Some('.'), ',')), Ok(1_234_567));
    // Longer than the stack buffer.
    let long = format!("{}42", "0".repeat(100));
    assert_eq!(parse_integer(&long, &grouped), Ok(42));
}

#[test]
fn floats() {
    let p = plain();
    assert_eq!(parse_float("1.5", &p), Ok(1.5));
    assert_eq!(parse_float("-1.5e3", &p), Ok(-1500.0));
    assert_eq!(parse_float("004.25", &p), Ok(4.25));
    assert_eq!(parse_float("INF", &p), Ok(f64::INFINITY));
    assert_eq!(parse_float("-INF", &p), Ok(f64::NEG_INFINITY));
    assert_eq!(parse_float("+INF", &p), Ok(f64::INFINITY));
    assert_eq!(parse_float("Infinity", &p), Ok(f64::INFINITY));
    assert!(parse_float("NaN", &p).unwrap().is_nan());
    assert!(parse_float("nan", &p).unwrap().is_nan());
    for bad in ["", " 1", "1 ", "1_000", "1,5", "0x10", "abc", "1e", "."] {
        assert_eq!(parse_float(bad, &p), Err(CellError::NotNumber), "{bad:?}");
    }
    let eu = syntax(true, Some('.'), ',');
    assert_eq!(parse_float("1.234,5", &eu), Ok(1234.5));
    assert_eq!(parse_float("-INF", &eu), Ok(f64::NEG_INFINITY));
    assert_eq!(parse_float("1,5e2", &eu), Ok(150.0));
    let comma = syntax(true, None, ',');
    assert_eq!(parse_float("1.5", &comma), Err(CellError::NotNumber));
    assert_eq!(parse_float("1,5", &comma), Ok(1.5));
    assert_eq!(parse_float("1,5x", &comma), Err(CellError::NotNumber));
    let loose = syntax(false, Some(','), '.');
    assert_eq!(parse_float("$1,234.50", &loose), Ok(1234.5));
    assert_eq!(parse_float("12.5 %", &loose), Ok(12.5));
    assert_eq!(parse_float("INF", &loose), Ok(f64::INFINITY));
}

#[test]
fn decimals_exact_values() {
    let p = plain();
    let dec = |s: &str| parse_decimal(s, &p, 12, 2);
    assert_eq!(dec("12.34"), Ok(1234));
    assert_eq!(dec("0.10"), Ok(10));
    assert_eq!(dec("-1.5"), Ok(-150));
    assert_eq!(dec("+7"), Ok(700));
    assert_eq!(dec("1.500"), Ok(150));
    assert_eq!(dec("1.50000000000000000000000000000000000000000000"), Ok(150));
    assert_eq!(dec("0000000000000000000000000000000000000000000001.5"), Ok(150));
    assert_eq!(dec("1.5e3"), Ok(150_000));
    assert_eq!(dec("15E-1"), Ok(150));
    assert_eq!(dec("1234e-2"), Ok(1234));
    assert_eq!(dec("0"), Ok(0));
    assert_eq!(dec("-0.000"), Ok(0));
    assert_eq!(dec("0e999999999999"), Ok(0));
    assert_eq!(dec(".5"), Ok(50));
    assert_eq!(dec("5."), Ok(500));
    assert_eq!(dec("9999999999.99"), Ok(999_999_999_999));
    assert_eq!(dec("-9999999999.99"), Ok(-999_999_999_999));
    assert_eq!(parse_decimal("12", &p, 5, 0), Ok(12));
    let max38 = "9".repeat(38);
    assert_eq!(parse_decimal(&max38, &p, 38, 0), Ok(max38.parse::<i128>().unwrap()));
    let eu = syntax(false, Some('.'), ',');
    assert_eq!(parse_decimal("€ 1.234,50", &eu, 12, 2), Ok(123_450));
}

#[test]
fn decimals_scale_and_precision_errors() {
    let p = plain();
    let dec = |s: &str| parse_decimal(s, &p, 12, 2);
    let places = |places| CellError::TooManyDecimalPlaces { places, scale: 2 };
    assert_eq!(dec("1.234"), Err(places(3)));
    assert_eq!(dec("1.2340"), Err(places(3)));
    assert_eq!(dec("1.001e1"), Ok(1001)); // 10.01 is fine
    assert_eq!(dec("1.5e-3"), Err(places(4)));
    let range = CellError::DecimalOutOfRange { precision: 12, scale: 2 };
    assert_eq!(dec("10000000000"), Err(range.clone()));
    assert_eq!(dec("-10000000000.00"), Err(range.clone()));
    assert_eq!(dec("1e10"), Err(range.clone()));
    assert_eq!(dec("1e999999999999999"), Err(range.clone()));
    assert_eq!(
        parse_decimal(&"9".repeat(39), &p, 38, 0),
        Err(CellError::DecimalOutOfRange { precision: 38, scale: 0 })
    );
    for bad in ["", ".", "-", "1.2.3", "1e", "1e+", " 1", "1,5", "NaN", "INF", "1.5x", "e5"] {
        assert_eq!(dec(bad), Err(CellError::NotDecimal), "{bad:?}");
    }
    assert_eq!(places(3).to_string(), "has 3 decimal places but the field allows 2");
    assert_eq!(range.to_string(), "is out of range for decimal(12, 2)");
}

#[test]
fn booleans() {
    let t = vec!["true".to_string(), "True".to_string(), "1".to_string()];
    let f = vec!["false".to_string(), "0".to_string()];
    assert_eq!(parse_boolean("True", &t, &f), Ok(true));
    assert_eq!(parse_boolean("0", &t, &f), Ok(false));
    assert_eq!(parse_boolean("FALSE", &t, &f), Err(CellError::NotBoolean));
    assert_eq!(parse_boolean(" true", &t, &f), Err(CellError::NotBoolean));
    let (yes, no) = (vec!["ja".to_string()], vec!["nein".to_string()]);
    assert_eq!(parse_boolean("ja", &yes, &no), Ok(true));
    assert_eq!(parse_boolean("nein", &yes, &no), Ok(false));
    assert_eq!(parse_boolean("true", &yes, &no), Err(CellError::NotBoolean));
}

#[test]
fn dates_default() {
    assert_eq!(parse_date("1970-01-01", &D), Ok(0));
    assert_eq!(parse_date("2024-01-05", &D), Ok(ymd(2024, 1, 5)));
    assert_eq!(parse_date("2024-02-29", &D), Ok(ymd(2024, 2, 29)));
    assert_eq!(parse_date("2000-02-29", &D), Ok(ymd(2000, 2, 29)));
    assert_eq!(parse_date("0001-01-01", &D), Ok(ymd(1, 1, 1)));
    assert_eq!(parse_date("9999-12-31", &D), Ok(ymd(9999, 12, 31)));
    let invalid = Err(CellError::InvalidTemporal { kind: TemporalKind::Date });
    for bad in ["2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00", "0000-01-01"] {
        assert_eq!(parse_date(bad, &D), invalid, "{bad}");
    }
    let shape = CellError::BadTemporal { kind: TemporalKind::Date, format: ExpectedFormat::Default };
    for bad in ["2024-1-05", "2024/01/05", " 2024-01-05", "2024-01-05 ", "2024-01-05T00:00:00Z", "", "20240105"] {
        assert_eq!(parse_date(bad, &D), Err(shape.clone()), "{bad:?}");
    }
    assert_eq!(shape.to_string(), "is not a date in the form YYYY-MM-DD");
}

#[test]
fn dates_any_and_patterns() {
    let jan5 = Ok(ymd(2024, 1, 5));
    for s in [
        "2024-01-05",
        "2024/01/05",
        "20240105",
        "05 Jan 2024",
        "Jan 05 2024",
        "Jan 5, 2024",
        "January 5 2024",
        "5 January 2024",
    ] {
        assert_eq!(parse_date(s, &ANY), jan5, "{s}");
    }
    assert_eq!(parse_date("01/05/2024", &ANY).unwrap_err().to_string(), "is not a recognised date");
    assert_eq!(parse_date("2023/02/29", &ANY), Err(CellError::InvalidTemporal { kind: TemporalKind::Date }));
    assert_eq!(parse_date("2024/01/05", &pat("%Y/%m/%d")), jan5);
    assert_eq!(parse_date("Jan 05 2024", &pat("%b %d %Y")), jan5);
    assert_eq!(parse_date("05.01.2024", &pat("%d.%m.%Y")), jan5);
    assert_eq!(parse_date("2024/02/29", &pat("%Y/%m/%d")), Ok(ymd(2024, 2, 29)));
    assert_eq!(
        parse_date("2023/02/29", &pat("%Y/%m/%d")),
        Err(CellError::InvalidTemporal { kind: TemporalKind::Date })
    );
    let err = parse_date("2024-01-05", &pat("%Y/%m/%d")).unwrap_err();
    assert_eq!(err.to_string(), "does not match the date format %Y/%m/%d");
    // chrono would skip the leading space; the cell is still rejected, as in the default format.
    assert!(parse_date(" 2024/01/05", &pat("%Y/%m/%d")).is_err());
    assert!(parse_date("2024/01/05 ", &pat("%Y/%m/%d")).is_err());
}

#[test]
fn times() {
    assert_eq!(parse_time("00:00:00", &D), Ok(0));
    assert_eq!(parse_time("23:59:59", &D), Ok(86_399_000_000));
    assert_eq!(parse_time("12:30:15.5", &D), Ok(45_015_500_000));
    assert_eq!(parse_time("12:30:15.123456", &D), Ok(45_015_123_456));
    assert_eq!(parse_time("12:30:15.123456789", &D), Ok(45_015_123_456)); // truncated
    let invalid = Err(CellError::InvalidTemporal { kind: TemporalKind::Time });
    for bad in ["24:00:00", "12:60:00", "12:00:60"] {
        assert_eq!(parse_time(bad, &D), invalid, "{bad}");
    }
    for bad in ["12:30", "12:30:15.", "12:30:15.1234567890", "1:30:15", "12:30:15Z", " 12:30:15", ""] {
        assert!(matches!(parse_time(bad, &D), Err(CellError::BadTemporal { .. })), "{bad:?}");
    }
    assert_eq!(parse_time("12:30", &ANY), Ok(45_000_000_000));
    assert_eq!(parse_time("02:30 PM", &ANY), Ok(52_200_000_000));
    assert_eq!(parse_time("12:30:15", &ANY), Ok(45_015_000_000));
    assert_eq!(parse_time("12h30", &pat("%Hh%M")), Ok(45_000_000_000));
    assert_eq!(parse_time("12:30:15.25", &pat("%H:%M:%S%.f")), Ok(45_015_250_000));
    assert_eq!(parse_time("23:59:60", &pat("%H:%M:%S")), invalid);
}

#[test]
fn datetimes_default() {
    let base = ts(2024, 1, 1, 0, 0, 3);
    assert_eq!(parse_datetime("2024-01-01T00:00:03Z", &D), Ok(base));
    assert_eq!(parse_datetime("2024-01-01T00:00:03", &D), Ok(base));
    assert_eq!(parse_datetime("2024-01-01 00:00:03", &D), Ok(base));
    assert_eq!(parse_datetime("2024-01-01T00:00:03.250Z", &D), Ok(base + 250_000));
    assert_eq!(parse_datetime("2024-01-01T00:00:03.123456789", &D), Ok(base + 123_456));
    assert_eq!(parse_datetime("2024-01-01T02:00:03+02:00", &D), Ok(base));
    assert_eq!(parse_datetime("2024-01-01T02:00:03+0200", &D), Ok(base));
    assert_eq!(parse_datetime("2024-01-01T02:00:03+02", &D), Ok(base));
    assert_eq!(parse_datetime("2023-12-31T19:30:03-04:30", &D), Ok(base));
    assert_eq!(parse_datetime("2024-01-01T02:00:03.5+02:00", &D), Ok(base + 500_000));
    assert_eq!(parse_datetime("1969-12-31T23:59:59.999999Z", &D), Ok(-1));
    assert_eq!(parse_datetime("0001-01-01T00:00:00Z", &D), Ok(ts(1, 1, 1, 0, 0, 0)));
    assert_eq!(parse_datetime("9999-12-31T23:59:59Z", &D), Ok(ts(9999, 12, 31, 23, 59, 59)));
    let invalid = Err(CellError::InvalidTemporal { kind: TemporalKind::Datetime });
    for bad in ["2023-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00+24:00", "0000-01-01T00:00:00Z"] {
        assert_eq!(parse_datetime(bad, &D), invalid, "{bad}");
    }
    for bad in [
        "2024-01-01",
        "2024-01-01T00:00",
        "2024-01-01T00:00:03ZZ",
        "2024-01-01T00:00:03 Z",
        "2024-01-01T00:00:03+2:00",
        "2024-01-01X00:00:03",
        " 2024-01-01T00:00:03Z",
        "2024-01-01T00:00:3.Z",
    ] {
        assert!(matches!(parse_datetime(bad, &D), Err(CellError::BadTemporal { .. })), "{bad:?}");
    }
}

#[test]
fn datetimes_any_and_patterns() {
    let noon = ts(2024, 1, 5, 12, 30, 0);
    for s in ["2024-01-05T12:30:00Z", "2024-01-05T12:30", "2024-01-05 12:30", "2024/01/05 12:30:00", "20240105T123000"]
    {
        assert_eq!(parse_datetime(s, &ANY), Ok(noon), "{s}");
    }
    assert_eq!(parse_datetime("Fri, 05 Jan 2024 14:30:00 +0200", &ANY), Ok(noon));
    assert_eq!(parse_datetime("2024-01-05", &ANY), Ok(ts(2024, 1, 5, 0, 0, 0)));
    assert_eq!(parse_datetime("05/01/2024 12:30", &pat("%d/%m/%Y %H:%M")), Ok(noon));
    assert_eq!(parse_datetime("05/01/2024 14:30 +02:00", &pat("%d/%m/%Y %H:%M %:z")), Ok(noon));
    assert_eq!(parse_datetime("05/01/2024 07:30 -0500", &pat("%d/%m/%Y %H:%M %z")), Ok(noon));
    assert_eq!(parse_datetime("05/01/2024", &pat("%d/%m/%Y")), Ok(ts(2024, 1, 5, 0, 0, 0)));
    let err = parse_datetime("2024-01-05T12:30", &pat("%d/%m/%Y %H:%M")).unwrap_err();
    assert_eq!(err.to_string(), "does not match the datetime format %d/%m/%Y %H:%M");
    assert!(has_offset_specifier("%Y %#z") && has_offset_specifier("%::z") && !has_offset_specifier("%Y %%z"));
}

#[test]
fn years() {
    assert_eq!(parse_year("2024"), Ok(2024));
    assert_eq!(parse_year("0"), Ok(0));
    assert_eq!(parse_year("-44"), Ok(-44));
    assert_eq!(parse_year("2147483647"), Ok(i32::MAX));
    assert_eq!(parse_year("-2147483648"), Ok(i32::MIN));
    assert_eq!(parse_year("2147483648"), Err(CellError::YearOutOfRange));
    assert_eq!(parse_year("99999999999999999999"), Err(CellError::YearOutOfRange));
    for bad in ["", "20 24", "2024.0", " 2024", "MMXXIV", "-"] {
        assert_eq!(parse_year(bad), Err(CellError::NotYear), "{bad:?}");
    }
}

#[test]
fn string_formats() {
    let ok = |s: &str, f| check_string_format(s, f).is_ok();
    assert!(ok("anything at all", StringFormat::Default));
    assert!(ok("a.b+tag@example.co.uk", StringFormat::Email));
    for bad in ["", "a@b", "@example.com", "a@@example.com", "a b@example.com", "a@.com", "a@example.", "a@b@c.d"] {
        assert!(!ok(bad, StringFormat::Email), "{bad:?}");
    }
    for good in ["https://example.com/x?y=1", "urn:isbn:0451450523", "mailto:a@b.c", "s3://bucket/key", "x+y.z-w:1"] {
        assert!(ok(good, StringFormat::Uri), "{good}");
    }
    for bad in ["", "example.com", "1http://x", "http:", "http://a b", ":x", "ht_tp://x"] {
        assert!(!ok(bad, StringFormat::Uri), "{bad:?}");
    }
    assert!(ok("123e4567-e89b-12d3-a456-426614174000", StringFormat::Uuid));
    assert!(ok("123E4567-E89B-12D3-A456-426614174000", StringFormat::Uuid));
    for bad in [
        "123e4567e89b12d3a456426614174000",
        "123e4567-e89b-12d3-a456-42661417400g",
        "{123e4567-e89b-12d3-a456-426614174000}",
    ] {
        assert!(!ok(bad, StringFormat::Uuid), "{bad}");
    }
    for good in ["", "TWFu", "TWE=", "TQ==", "aGVsbG8gd29ybGQ=", "+/+/"] {
        assert!(ok(good, StringFormat::Binary), "{good:?}");
    }
    for bad in ["TWF", "T===", "TQ=a", "TW-_", "TWFu TWFu", "=TWF"] {
        assert!(!ok(bad, StringFormat::Binary), "{bad:?}");
    }
    let err = check_string_format("x", StringFormat::Email).unwrap_err();
    assert_eq!(err.to_string(), "is not a valid email address");
}

#[test]
fn parse_value_dispatches_on_kind() {
    let number = plain();
    assert_eq!(parse_value(&FieldKind::Integer { number: number.clone() }, "004"), Ok(Value::Int(4)));
    let dec = FieldKind::Number { number: number.clone(), decimal: Some((12, 2)) };
    assert_eq!(parse_value(&dec, "0.1"), Ok(Value::Decimal(10)));
    assert_eq!(parse_value(&FieldKind::Number { number, decimal: None }, "0.5"), Ok(Value::Float(0.5)));
    assert_eq!(parse_value(&FieldKind::Year, "2024"), Ok(Value::Int(2024)));
    assert_eq!(parse_value(&FieldKind::Date { format: D }, "1970-01-02"), Ok(Value::Date(1)));
    assert_eq!(parse_value(&FieldKind::Time { format: D }, "00:00:01"), Ok(Value::Time(1_000_000)));
    assert_eq!(parse_value(&FieldKind::Datetime { format: D }, "1970-01-01T00:00:01Z"), Ok(Value::Datetime(1_000_000)));
    let b = FieldKind::Boolean { true_values: vec!["y".into()], false_values: vec!["n".into()] };
    assert_eq!(parse_value(&b, "n"), Ok(Value::Bool(false)));
    let uuid = FieldKind::String { format: StringFormat::Uuid };
    assert_eq!(parse_value(&uuid, "nope"), Err("`nope` is not a UUID (8-4-4-4-12 hexadecimal digits)".to_string()));
    assert_eq!(parse_value(&dec, "1.234"), Err("`1.234` has 3 decimal places but the field allows 2".to_string()));
}

/// Days of 0001-01-01 and 9999-12-31.
const MIN_DAY: i32 = -719_162;
const MAX_DAY: i32 = 2_932_896;

proptest! {
    #[test]
    fn integer_roundtrip(v in any::<i64>()) {
        prop_assert_eq!(parse_integer(&v.to_string(), &plain()), Ok(v));
        let grouped = syntax(true, Some(','), '.');
        let text = v.to_string();
        let (sign, digits) = text.split_at(usize::from(v < 0));
        let mut with_groups = String::from(sign);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                with_groups.push(',');
            }
            with_groups.push(c);
        }
        prop_assert_eq!(parse_integer(&with_groups, &grouped), Ok(v));
    }

    #[test]
    fn float_roundtrip(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        prop_assert_eq!(parse_float(&v.to_string(), &plain()), Ok(v));
        prop_assert_eq!(parse_float(&format!("{v:e}"), &plain()), Ok(v));
        let comma = v.to_string().replace('.', ",");
        prop_assert_eq!(parse_float(&comma, &syntax(true, None, ',')), Ok(v));
    }

    #[test]
    fn decimal_roundtrip(m in -(10i128.pow(18) - 1)..10i128.pow(18), scale in 0i8..=18, extra_zeros in 0usize..4) {
        let s = scale as usize;
        let abs = m.unsigned_abs().to_string();
        let padded = format!("{abs:0>width$}", width = s + 1);
        let (int, frac) = padded.split_at(padded.len() - s);
        let sign = if m < 0 { "-" } else { "" };
        let text = format!("{sign}{int}.{frac}{}", "0".repeat(extra_zeros));
        prop_assert_eq!(parse_decimal(&text, &plain(), 38, scale), Ok(m));
        let exp = format!("{sign}{abs}e-{s}");
        prop_assert_eq!(parse_decimal(&exp, &plain(), 38, scale), Ok(m));
    }

    #[test]
    fn date_roundtrip(days in MIN_DAY..=MAX_DAY) {
        let d = NaiveDate::from_num_days_from_ce_opt(days + CE_TO_UNIX_DAYS).unwrap();
        prop_assert_eq!(parse_date(&d.format("%Y-%m-%d").to_string(), &D), Ok(days));
        prop_assert_eq!(parse_date(&d.format("%Y/%m/%d").to_string(), &pat("%Y/%m/%d")), Ok(days));
        prop_assert_eq!(parse_date(&d.format("%b %d %Y").to_string(), &pat("%b %d %Y")), Ok(days));
        prop_assert_eq!(parse_date(&d.format("%Y/%m/%d").to_string(), &ANY), Ok(days));
    }

    /// Hinnant's algorithm and the hand-written validation agree with chrono on every
    /// `DDDD-DD-DD`, valid or not.
    #[test]
    fn iso_date_agrees_with_chrono(y in 0i32..=9999, m in 0u32..=13, d in 0u32..=32) {
        let s = format!("{y:04}-{m:02}-{d:02}");
        let chrono = NaiveDate::from_ymd_opt(y, m, d).filter(|_| y >= 1);
        let ours = parse_date(&s, &D).ok();
        prop_assert_eq!(ours, chrono.map(|c| c.num_days_from_ce() - CE_TO_UNIX_DAYS));
        prop_assert_eq!(ours, parse_date(&s, &pat("%Y-%m-%d")).ok().filter(|_| y >= 1));
    }

    #[test]
    fn datetime_roundtrip(
        us in i64::from(MIN_DAY) * US_PER_DAY..(i64::from(MAX_DAY) + 1) * US_PER_DAY,
        offset_min in -(23 * 60 + 59)..=(23 * 60 + 59),
    ) {
        let utc = DateTime::from_timestamp_micros(us).unwrap();
        prop_assert_eq!(parse_datetime(&utc.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), &D), Ok(us));
        let secs = us.div_euclid(US_PER_SEC) * US_PER_SEC;
        prop_assert_eq!(parse_datetime(&utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(), &D), Ok(secs));
        prop_assert_eq!(parse_datetime(&utc.format("%Y-%m-%d %H:%M:%S%.f").to_string(), &D), Ok(us));
        let tz = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
        let local = utc.with_timezone(&tz);
        if (1..=9999).contains(&local.year()) {
            prop_assert_eq!(parse_datetime(&local.format("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(), &D), Ok(us));
            let p = "%d/%m/%Y %H:%M:%S%.f %z";
            prop_assert_eq!(parse_datetime(&local.format(p).to_string(), &pat(p)), Ok(us));
        }
        let p = "%Y/%m/%d %H:%M:%S%.f";
        prop_assert_eq!(parse_datetime(&utc.format(p).to_string(), &pat(p)), Ok(us));
    }

    #[test]
    fn time_roundtrip(us in 0i64..US_PER_DAY) {
        let (secs, micros) = ((us / US_PER_SEC) as u32, (us % US_PER_SEC) as u32);
        let t = NaiveTime::from_num_seconds_from_midnight_opt(secs, micros * 1000).unwrap();
        prop_assert_eq!(parse_time(&t.format("%H:%M:%S%.f").to_string(), &D), Ok(us));
        prop_assert_eq!(parse_time(&t.format("%H:%M:%S%.f").to_string(), &pat("%H:%M:%S%.f")), Ok(us));
    }
}

/// Dates that repeat, valid and not, with times that parse and times that do not.
const DAYS: [&str; 9] = [
    "2024-01-01",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "0000-01-01",
    "2024-01-0x",
    "2024/01/01",
    "\0\0\0\0\0\0\0\0\0\0",
    "9999-12-31",
];
const TIMES: [&str; 7] = ["T00:00:05Z", " 23:59:59", "T12:00:00.5+02:00", "T24:00:00Z", "Tnoon", "", "t01:02:03-0130"];

proptest! {
    /// A date read after others, equal or not, gives what it gives alone: the same day number,
    /// or the same error, whether the last date was valid or not.
    #[test]
    fn a_date_read_after_others_reads_as_it_does_alone(cells in prop::collection::vec((0..DAYS.len(), 0..TIMES.len()), 1..60)) {
        let (mut last_dt, mut last_d) = (LastDate::default(), LastDate::default());
        for (d, t) in cells {
            let s = format!("{}{}", DAYS[d], TIMES[t]);
            prop_assert_eq!(parse_datetime_after(&s, &D, &mut last_dt), parse_datetime(&s, &D), "{:?}", s);
            prop_assert_eq!(parse_date_after(DAYS[d], &D, &mut last_d), parse_date(DAYS[d], &D), "{:?}", DAYS[d]);
            // Other formats do not use the last date.
            prop_assert_eq!(parse_datetime_after(&s, &ANY, &mut last_dt), parse_datetime(&s, &ANY), "{:?}", s);
        }
    }
}
