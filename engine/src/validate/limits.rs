//! What a target warehouse cannot store exactly, checked per cell during validation.
//!
//! A value that passes the contract can still be one the warehouse refuses (a NUL byte in
//! PostgreSQL text, a date before 4713 BC) or changes on the way in (SQLite stores a NaN REAL
//! as NULL). Caught here, such a value is a row error in the quarantine, with rule
//! `constraint-error` and constraint `warehouse`, instead of a load that fails for the whole
//! batch, or a value silently changed. The engine knows no warehouse driver: the caller picks
//! the limits of its target with one constructor per kind ([`WarehouseLimits::sqlite`],
//! [`WarehouseLimits::postgres`], [`WarehouseLimits::redshift`]) and hands them to
//! `FileJob::warehouse_limits`.
//!
//! ```
//! use glueless_engine::validate::limits::WarehouseLimits;
//! let pg = WarehouseLimits::postgres();
//! assert!(pg.nan && !pg.nul_in_text);
//! assert!(!WarehouseLimits::sqlite().nan);
//! assert_eq!(WarehouseLimits::redshift().max_text_bytes, Some(65_535));
//! ```
//!
//! Only the validated cells are checked: values that `load.transform` computes are not, and a
//! warehouse refusal of those is left to the load (which then finds the culprit file).

use super::RowError;
use super::columns::Cell;
use crate::cells::days_from_civil;
use crate::contract::Field;

const US_PER_DAY: i64 = 86_400_000_000;

/// An inclusive range of days since 1970-01-01, with how a person writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub min: i32,
    pub max: i32,
    /// For messages, e.g. `4714-11-24 BC to 5874897-12-31`.
    pub text: &'static str,
}

/// What one warehouse can hold; `true` means it holds the value exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseLimits {
    /// For messages: `SQLite`, `PostgreSQL`, `Redshift`.
    pub warehouse: &'static str,
    /// Its column type for a contract `number` without `decimal`, for messages.
    pub float_type: &'static str,
    pub nan: bool,
    /// Both infinities.
    pub infinity: bool,
    /// Numbers of magnitude below `f64::MIN_POSITIVE` other than zero.
    pub subnormal: bool,
    /// A NUL byte (U+0000) inside text.
    pub nul_in_text: bool,
    /// The longest text, in UTF-8 bytes.
    pub max_text_bytes: Option<usize>,
    /// Dates (`date` fields).
    pub dates: DayRange,
    /// Days of the instants of `datetime` fields (in UTC; the whole last day included).
    pub datetimes: DayRange,
}

/// Julian day 0, 4714-11-24 BC in the proleptic Gregorian calendar: the first day of
/// PostgreSQL's and Redshift's `date` and `timestamptz`.
fn julian_day_zero() -> i32 {
    days_from_civil(-4713, 11, 24)
}

impl WarehouseLimits {
    /// The embedded SQLite warehouse: REAL turns NaN into NULL (infinities are kept); text
    /// holds any byte; dates and datetimes are stored as SQLite's own text forms, which its
    /// date functions read and which sort in time order only for years 0000 to 9999.
    pub fn sqlite() -> WarehouseLimits {
        let years = DayRange {
            min: days_from_civil(0, 1, 1),
            max: days_from_civil(10_000, 1, 1) - 1,
            text: "0000-01-01 to 9999-12-31, the years of SQLite's date and time text",
        };
        WarehouseLimits {
            warehouse: "SQLite",
            float_type: "REAL",
            nan: false,
            infinity: true,
            subnormal: true,
            nul_in_text: true,
            max_text_bytes: None,
            dates: years,
            datetimes: years,
        }
    }

    /// PostgreSQL: `double precision` holds NaN and the infinities; `text` holds no NUL;
    /// `date` runs from 4714-11-24 BC to 5874897-12-31, `timestamptz` to 294276-12-31.
    pub fn postgres() -> WarehouseLimits {
        WarehouseLimits {
            warehouse: "PostgreSQL",
            float_type: "double precision",
            nan: true,
            infinity: true,
            subnormal: true,
            nul_in_text: false,
            max_text_bytes: None,
            dates: DayRange {
                min: julian_day_zero(),
                max: days_from_civil(5_874_898, 1, 1) - 1,
                text: "4714-11-24 BC to 5874897-12-31",
            },
            datetimes: DayRange {
                min: julian_day_zero(),
                max: days_from_civil(294_277, 1, 1) - 1,
                text: "4714-11-24 BC to 294276-12-31 (UTC)",
            },
        }
    }

    /// Amazon Redshift: `DOUBLE PRECISION` is refused NaN, the infinities and subnormal
    /// numbers (its documentation lists none of them, and it has been seen to turn extreme
    /// values into infinities); `VARCHAR` holds at most 65,535 bytes and no NUL; `DATE` and
    /// `TIMESTAMPTZ` run from 4713 BC to 294276 AD.
    pub fn redshift() -> WarehouseLimits {
        let range = DayRange {
            min: julian_day_zero(),
            max: days_from_civil(294_277, 1, 1) - 1,
            text: "4714-11-24 BC to 294276-12-31",
        };
        WarehouseLimits {
            warehouse: "Redshift",
            float_type: "DOUBLE PRECISION",
            nan: false,
            infinity: false,
            subnormal: false,
            nul_in_text: false,
            max_text_bytes: Some(65_535),
            dates: range,
            datetimes: range,
        }
    }

    /// The row error for a parsed `cell` of `field` (its text `s`) that the warehouse cannot
    /// store exactly, if it is one.
    pub fn check(&self, field: &Field, cell: &Cell, s: &str) -> Option<RowError> {
        let limit = match *cell {
            Cell::Float(v) => self.float_limit(v)?,
            Cell::Str { .. } => self.text_limit(s)?,
            Cell::Date(days) => self.day_limit(&self.dates, days, "date")?,
            Cell::Datetime(us) => self.day_limit(
                &self.datetimes,
                us.div_euclid(US_PER_DAY).clamp(i32::MIN as i64, i32::MAX as i64) as i32,
                "datetime",
            )?,
            _ => return None,
        };
        Some(RowError {
            field: Some(field.name.clone()),
            rule: "constraint-error",
            constraint: Some("warehouse"),
            value: Some(s.to_string()),
            message: format!(
                "`{}` cannot be stored exactly by the {} warehouse: {limit}; fix the value in the file (or leave the cell empty)",
                field.name, self.warehouse
            ),
            first_line: None,
        })
    }

    fn float_limit(&self, v: f64) -> Option<String> {
        let t = self.float_type;
        if v.is_nan() && !self.nan {
            let becomes = if self.warehouse == "SQLite" { " (it would be stored as NULL)" } else { "" };
            return Some(format!("its {t} columns hold no NaN{becomes}"));
        }
        if v.is_infinite() && !self.infinity {
            return Some(format!("its {t} columns hold no infinity"));
        }
        if v.is_subnormal() && !self.subnormal {
            return Some(format!(
                "its {t} columns hold no number closer to zero than {:e} except 0",
                f64::MIN_POSITIVE
            ));
        }
        None
    }

    fn text_limit(&self, s: &str) -> Option<String> {
        // `contains` on bytes is a memchr: cheap enough for every string cell.
        if !self.nul_in_text
            && s.as_bytes().contains(&0)
            && let Some(at) = s.bytes().position(|b| b == 0)
        {
            let char_at = s[..at].chars().count() + 1;
            return Some(format!(
                "the text holds a NUL byte (character {char_at}), which its text columns cannot hold"
            ));
        }
        match self.max_text_bytes {
            Some(max) if s.len() > max => {
                Some(format!("the text is {} bytes of UTF-8, more than the {max} bytes its text columns hold", s.len()))
            }
            _ => None,
        }
    }

    fn day_limit(&self, range: &DayRange, days: i32, what: &str) -> Option<String> {
        (days < range.min || days > range.max)
            .then(|| format!("the {what} is outside {}, the range it holds", range.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::{parse_date, parse_datetime, parse_float};
    use crate::contract::{NumberSyntax, TemporalFormat};

    fn field(name: &str) -> Field {
        let toml = format!("name = \"t\"\n[schema]\nfields = [{{ name = \"{name}\", type = \"string\" }}]");
        crate::contract::load_str(&toml, "t.toml", std::path::Path::new(".")).expect("contract").schema.fields.remove(0)
    }

    fn str_cell(s: &str) -> Cell {
        Cell::Str { scratch: false, start: 0, end: s.len() as u32 }
    }

    #[test]
    fn julian_day_zero_is_postgres_first_day() {
        // PostgreSQL: UNIX_EPOCH_JDATE = 2440588.
        assert_eq!(julian_day_zero(), -2_440_588);
    }

    #[test]
    fn floats_per_warehouse() {
        let f = field("x");
        let nan = Cell::Float(parse_float("NaN", &NumberSyntax::default()).unwrap());
        let inf = Cell::Float(f64::NEG_INFINITY);
        let tiny = Cell::Float(2.33125e-315);
        let e = WarehouseLimits::sqlite().check(&f, &nan, "NaN").expect("SQLite would store NULL");
        assert_eq!((e.rule, e.constraint, e.value.as_deref()), ("constraint-error", Some("warehouse"), Some("NaN")));
        assert!(e.message.contains("SQLite") && e.message.contains("NULL"), "{}", e.message);
        assert!(WarehouseLimits::sqlite().check(&f, &inf, "-inf").is_none());
        assert!(WarehouseLimits::postgres().check(&f, &nan, "NaN").is_none());
        assert!(WarehouseLimits::postgres().check(&f, &inf, "-inf").is_none());
        for (cell, s) in [(nan, "NaN"), (inf, "-inf"), (tiny, "2.33125e-315")] {
            let e = WarehouseLimits::redshift().check(&f, &cell, s).unwrap_or_else(|| panic!("{s} on Redshift"));
            assert!(e.message.contains("Redshift") && e.message.contains("DOUBLE PRECISION"), "{}", e.message);
        }
        assert!(WarehouseLimits::redshift().check(&f, &Cell::Float(0.0), "0").is_none());
        assert!(WarehouseLimits::redshift().check(&f, &Cell::Float(-1e308), "-1e308").is_none());
    }

    #[test]
    fn text_per_warehouse() {
        let f = field("name");
        let nul = "ab\0c";
        assert!(WarehouseLimits::sqlite().check(&f, &str_cell(nul), nul).is_none());
        let e = WarehouseLimits::postgres().check(&f, &str_cell(nul), nul).expect("NUL in PostgreSQL text");
        assert!(e.message.contains("NUL byte (character 3)") && e.message.contains("PostgreSQL"), "{}", e.message);
        assert!(WarehouseLimits::redshift().check(&f, &str_cell(nul), nul).is_some());
        let long = "é".repeat(32_768); // 65,536 bytes, 32,768 characters
        let e = WarehouseLimits::redshift().check(&f, &str_cell(&long), &long).expect("over 65,535 bytes");
        assert!(e.message.contains("65536 bytes") && e.message.contains("65535"), "{}", e.message);
        let fits = "é".repeat(32_767);
        assert!(WarehouseLimits::redshift().check(&f, &str_cell(&fits), &fits).is_none());
        assert!(WarehouseLimits::postgres().check(&f, &str_cell(&long), &long).is_none());
    }

    #[test]
    fn dates_and_datetimes_per_warehouse() {
        let f = field("day");
        let date = |s: &str| Cell::Date(parse_date(s, &TemporalFormat::Pattern("%Y-%m-%d".into())).unwrap());
        let dt = |s: &str| {
            Cell::Datetime(parse_datetime(s, &TemporalFormat::Pattern("%Y-%m-%dT%H:%M:%S%z".into())).unwrap())
        };
        let (sqlite, pg, rs) = (WarehouseLimits::sqlite(), WarehouseLimits::postgres(), WarehouseLimits::redshift());
        // Year -5000 (5001 BC) is before every warehouse's first day.
        for l in [&sqlite, &pg, &rs] {
            let e = l.check(&f, &date("-5000-01-01"), "-5000-01-01").unwrap_or_else(|| panic!("{}", l.warehouse));
            assert!(e.message.contains(l.warehouse) && e.message.contains("date is outside"), "{}", e.message);
        }
        // 4714-11-24 BC is astronomical year -4713: PostgreSQL's and Redshift's first day.
        assert!(pg.check(&f, &date("-4713-11-24"), "").is_none());
        assert!(pg.check(&f, &date("-4713-11-23"), "").is_some());
        assert!(rs.check(&f, &date("-4713-11-24"), "").is_none());
        assert!(sqlite.check(&f, &date("0000-01-01"), "").is_none());
        assert!(sqlite.check(&f, &date("9999-12-31"), "").is_none());
        assert!(sqlite.check(&f, &date("+10000-01-01"), "").is_some());
        assert!(pg.check(&f, &date("+200000-01-01"), "").is_none());
        // A datetime whose UTC instant falls on the day before the first day.
        assert!(sqlite.check(&f, &dt("0000-01-01T00:30:00+01:00"), "").is_some());
        assert!(sqlite.check(&f, &dt("0000-01-01T00:30:00+00:00"), "").is_none());
        assert!(pg.check(&f, &dt("-4713-11-24T00:00:00+00:00"), "").is_none());
        assert!(pg.check(&f, &dt("-4713-11-24T00:00:00+00:01"), "").is_some());
        assert!(pg.check(&f, &dt("+250000-01-01T00:00:00+00:00"), "").is_none());
        // Microseconds since 1970 in an i64 end in 294247, inside the range; they start long before it.
        assert!(pg.check(&f, &Cell::Datetime(i64::MAX), "").is_none());
        assert!(pg.check(&f, &Cell::Datetime(i64::MIN), "").is_some());
        assert!(rs.check(&f, &Cell::Date(pg.dates.max), "").is_some());
    }
}
