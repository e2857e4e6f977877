//! Values spelled as CSV cells, in the spellings the default syntax of each type accepts.

use super::contract::{CE_TO_UNIX_DAYS, Ty, US_PER_DAY, US_PER_SEC, Val};
use chrono::{Datelike, NaiveDate};

/// A value in one of the spellings the default syntax of its type accepts; `s` picks which.
pub fn spell(ty: Ty, v: &Val, s: u32) -> String {
    match (ty, v) {
        (_, Val::Str(x)) => x.clone(),
        (_, Val::Int(i)) => match s % 4 {
            0 | 1 => i.to_string(),
            2 if *i >= 0 => format!("+{i}"),
            2 => i.to_string(),
            _ => format!("{}00{}", if *i < 0 { "-" } else { "" }, i.unsigned_abs()),
        },
        (_, Val::Float(f)) => match s % 4 {
            0 => format!("{f}"),
            1 => format!("{f:?}"),
            2 => format!("{f:e}"),
            _ => format!("{f:E}"),
        },
        (Ty::Decimal { scale, .. }, Val::Dec(u)) => {
            let canonical = decimal_text(*u, scale);
            match s % 5 {
                0 => canonical,
                // Trailing zeros of the fraction dropped: `1.50` -> `1.5`, `2.00` -> `2`.
                1 if scale > 0 => canonical.trim_end_matches('0').trim_end_matches('.').to_string(),
                // Zeros beyond the scale are accepted: `1.50` -> `1.5000`.
                2 if scale > 0 => canonical + "00",
                2 => canonical + ".00",
                3 => format!("{u}e-{scale}"),
                4 if *u >= 0 => format!("+{canonical}"),
                _ => canonical,
            }
        }
        (_, Val::Dec(u)) => u.to_string(),
        (_, Val::Bool(b)) => {
            let (t, f) = (["true", "True", "TRUE", "1"], ["false", "False", "FALSE", "0"]);
            (if *b { t } else { f })[s as usize % 4].to_string()
        }
        (_, Val::Date(d)) => date_text(*d),
        (_, Val::Ts(us)) => datetime_text(*us, s),
    }
}

fn decimal_text(u: i128, scale: i8) -> String {
    let sign = if u < 0 { "-" } else { "" };
    let scale = scale.max(0) as u32;
    if scale == 0 {
        return u.to_string();
    }
    let p = 10u128.pow(scale);
    let a = u.unsigned_abs();
    format!("{sign}{}.{:0w$}", a / p, a % p, w = scale as usize)
}

fn date_text(days: i32) -> String {
    let d = NaiveDate::from_num_days_from_ce_opt(days + CE_TO_UNIX_DAYS).expect("in range");
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `YYYY-MM-DD[T|t| ]hh:mm:ss[.f{3,6,9}][Z|z|±hh:mm|±hhmm|±hh|]`, the local time shifted by
/// the offset so that it means `us` in UTC. `s` picks the spelling; `s == 0` is
/// `YYYY-MM-DDThh:mm:ss.ffffffZ`.
fn datetime_text(us: i64, s: u32) -> String {
    let kind = s % 6;
    let minutes = match kind {
        2 | 3 => i64::from((s >> 3) % 1440),
        4 => i64::from((s >> 3) % 24) * 60,
        _ => 0,
    };
    let negative = (s >> 14) & 1 == 1;
    let offset = if negative { -minutes } else { minutes };
    let (hh, mm) = (minutes / 60, minutes % 60);
    let sign = if negative { '-' } else { '+' };
    let suffix = match kind {
        0 => "Z".to_string(),
        1 => String::new(),
        2 => format!("{sign}{hh:02}:{mm:02}"),
        3 => format!("{sign}{hh:02}{mm:02}"),
        4 => format!("{sign}{hh:02}"),
        _ => "z".to_string(),
    };
    let local = us + offset * 60 * US_PER_SEC;
    let (days, tod) = (local.div_euclid(US_PER_DAY), local.rem_euclid(US_PER_DAY));
    let sep = ['T', 't', ' '][((s >> 15) % 3) as usize];
    let frac_us = tod % US_PER_SEC;
    let digits: &[u32] = if s == 0 {
        &[6]
    } else if frac_us == 0 {
        &[0, 3, 6, 9]
    } else if frac_us % 1000 == 0 {
        &[3, 6, 9]
    } else {
        &[6, 9]
    };
    let frac = match digits[((s >> 17) as usize) % digits.len()] {
        0 => String::new(),
        3 => format!(".{:03}", frac_us / 1000),
        6 => format!(".{frac_us:06}"),
        // Digits past the microsecond are truncated, never rounded.
        _ => format!(".{frac_us:06}{:03}", (s >> 20) % 1000),
    };
    let secs = tod / US_PER_SEC;
    format!(
        "{}{sep}{:02}:{:02}:{:02}{frac}{suffix}",
        date_text(i32::try_from(days).expect("in range")),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// RFC 4180: quoted when it must be (or when asked), inner quotes doubled.
pub fn csv_cell(text: &str, force_quote: bool) -> String {
    if force_quote || text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[test]
fn canonical_spellings() {
    assert_eq!(datetime_text(0, 0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(decimal_text(-5, 2), "-0.05");
    assert_eq!(spell(Ty::Decimal { precision: 5, scale: 2 }, &Val::Dec(150), 1), "1.5");
    assert_eq!(spell(Ty::Int, &Val::Int(i64::MIN), 3), "-009223372036854775808");
}
