//! The contracts drawn: their fields, types and constraints, as strategies and as TOML.

use super::spell::spell;
use chrono::{Datelike, NaiveDate};
use proptest::collection::btree_set;
use proptest::prelude::*;

pub const US_PER_SEC: i64 = 1_000_000;
pub const US_PER_DAY: i64 = 86_400 * US_PER_SEC;
pub const CE_TO_UNIX_DAYS: i32 = 719_163;

/// Days since 1970-01-01.
fn day(y: i32, m: u32, d: u32) -> i32 {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date").num_days_from_ce() - CE_TO_UNIX_DAYS
}

/// Dates and datetimes are drawn a year inside what `YYYY-MM-DD` can spell, so that a bound
/// minus a few days, or a value shifted by a UTC offset, is still spelled in four digits.
pub fn day_range() -> (i32, i32) {
    (day(2, 1, 1), day(9998, 12, 31))
}

pub fn micros_range() -> (i64, i64) {
    let (lo, hi) = day_range();
    (i64::from(lo) * US_PER_DAY, i64::from(hi + 1) * US_PER_DAY - 1)
}

// ---------------------------------------------------------------------------------------------
// The contract

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Float,
    Decimal { precision: u8, scale: i8 },
    Bool,
    Date,
    Datetime,
}

/// A typed value, in the representation of the Arrow column.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    /// Unscaled, at the field's scale.
    Dec(i128),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Ts(i64),
}

/// The same value; floats bit for bit (any NaN equals any NaN).
pub fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Float(x), Val::Float(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub min: Option<Val>,
    pub max: Option<Val>,
    pub one_of: Option<Vec<Val>>,
    pub max_length: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub name: String,
    pub ty: Ty,
    /// `required` as written in the contract; `None` when not written.
    pub required: Option<bool>,
    pub rules: Rules,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub fields: Vec<FieldSpec>,
    /// Index of the primary-key field (an integer field).
    pub pk: Option<usize>,
    /// The header: field indexes in column order.
    pub order: Vec<usize>,
}

impl Spec {
    /// Required by the contract, or by being the primary key.
    pub fn required(&self, fi: usize) -> bool {
        self.fields[fi].required == Some(true) || self.pk == Some(fi)
    }

    pub fn toml(&self) -> String {
        let mut t = String::from("name = \"prop\"\n\n[load]\nmax_rejected_ratio = 1.0\n\n[schema]\n");
        if let Some(k) = self.pk {
            t += &format!("primaryKey = [{}]\n", json(&self.fields[k].name));
        }
        for f in &self.fields {
            t += &format!("\n[[schema.fields]]\nname = {}\n", json(&f.name));
            t += match f.ty {
                Ty::Str => "type = \"string\"\n".to_string(),
                Ty::Int => "type = \"integer\"\n".to_string(),
                Ty::Float => "type = \"number\"\n".to_string(),
                Ty::Decimal { precision, scale } => format!("type = \"number\"\ndecimal = [{precision}, {scale}]\n"),
                Ty::Bool => "type = \"boolean\"\n".to_string(),
                Ty::Date => "type = \"date\"\n".to_string(),
                Ty::Datetime => "type = \"datetime\"\n".to_string(),
            }
            .as_str();
            let mut c = Vec::new();
            if let Some(r) = f.required {
                c.push(format!("required = {r}"));
            }
            if let Some(v) = &f.rules.min {
                c.push(format!("minimum = {}", toml_value(f.ty, v)));
            }
            if let Some(v) = &f.rules.max {
                c.push(format!("maximum = {}", toml_value(f.ty, v)));
            }
            if let Some(list) = &f.rules.one_of {
                let items: Vec<String> = list.iter().map(|v| toml_value(f.ty, v)).collect();
                c.push(format!("enum = [{}]", items.join(", ")));
            }
            if let Some(n) = f.rules.max_length {
                c.push(format!("maxLength = {n}"));
            }
            if !c.is_empty() {
                t += &format!("constraints = {{ {} }}\n", c.join(", "));
            }
        }
        t
    }
}

/// A TOML basic string (a JSON string is one, for the characters drawn here).
fn json(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A bound or enum member in the contract: integers as TOML integers, the rest as strings in
/// the field's default syntax.
fn toml_value(ty: Ty, v: &Val) -> String {
    match v {
        Val::Int(i) => i.to_string(),
        Val::Float(f) => json(&format!("{f:?}")),
        Val::Str(s) => json(s),
        other => json(&spell(ty, other, 0)),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// An enum member: a short non-empty string that TOML can hold.
fn enum_text() -> BoxedStrategy<String> {
    "[a-zA-Z0-9 ,\"é日\\n-]{1,6}".boxed()
}

/// A finite float: small ones, whole ones, and any bit pattern that is finite.
pub fn finite_f64() -> BoxedStrategy<f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        -1000.0..1000.0f64,
        (-1000i32..1000).prop_map(f64::from),
        (f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO),
    ]
    .boxed()
}

fn ordered<T: PartialOrd>(a: T, b: T) -> (T, T) {
    if b < a { (b, a) } else { (a, b) }
}

/// `minimum` only, `maximum` only, both or neither, from an ordered pair.
fn bounds(pair: BoxedStrategy<(Val, Val)>) -> BoxedStrategy<Rules> {
    (pair, 0u8..4)
        .prop_map(|((lo, hi), which)| Rules {
            min: (which & 1 != 0).then_some(lo),
            max: (which & 2 != 0).then_some(hi),
            ..Rules::default()
        })
        .boxed()
}

fn rules(ty: Ty) -> BoxedStrategy<Rules> {
    let (d0, d1) = day_range();
    let (t0, t1) = micros_range();
    match ty {
        Ty::Str => prop_oneof![
            2 => Just(Rules::default()),
            1 => btree_set(enum_text(), 1..5).prop_map(|s| Rules {
                one_of: Some(s.into_iter().map(Val::Str).collect()),
                ..Rules::default()
            }),
            1 => (1usize..=12).prop_map(|n| Rules { max_length: Some(n), ..Rules::default() }),
        ]
        .boxed(),
        Ty::Int => {
            let lo = prop_oneof![-1000i64..1000, any::<i64>()];
            let span = prop_oneof![0u64..100, 0u64..1_000_000, any::<u64>()];
            let pair = (lo, span).prop_map(|(lo, span)| (Val::Int(lo), Val::Int(lo.saturating_add_unsigned(span))));
            let one_of = btree_set(-50i64..50, 1..5)
                .prop_map(|s| Rules { one_of: Some(s.into_iter().map(Val::Int).collect()), ..Rules::default() });
            prop_oneof![3 => bounds(pair.boxed()), 1 => one_of].boxed()
        }
        Ty::Float => bounds(
            (finite_f64(), finite_f64())
                .prop_map(|(a, b)| {
                    let (lo, hi) = ordered(a, b);
                    (Val::Float(lo), Val::Float(hi))
                })
                .boxed(),
        ),
        Ty::Decimal { precision, .. } => {
            let m = 10i128.pow(u32::from(precision)) - 1;
            bounds(
                (-m..=m, -m..=m)
                    .prop_map(|(a, b)| {
                        let (lo, hi) = ordered(a, b);
                        (Val::Dec(lo), Val::Dec(hi))
                    })
                    .boxed(),
            )
        }
        Ty::Bool => Just(Rules::default()).boxed(),
        Ty::Date => bounds(
            (d0..=d1, d0..=d1)
                .prop_map(|(a, b)| {
                    let (lo, hi) = ordered(a, b);
                    (Val::Date(lo), Val::Date(hi))
                })
                .boxed(),
        ),
        Ty::Datetime => bounds(
            (t0..=t1, t0..=t1)
                .prop_map(|(a, b)| {
                    let (lo, hi) = ordered(a, b);
                    (Val::Ts(lo), Val::Ts(hi))
                })
                .boxed(),
        ),
    }
}

fn ty() -> BoxedStrategy<Ty> {
    prop_oneof![
        Just(Ty::Str),
        Just(Ty::Int),
        Just(Ty::Float),
        (1u8..=38)
            .prop_flat_map(|p| (Just(p), 0..=p as i8))
            .prop_map(|(precision, scale)| Ty::Decimal { precision, scale }),
        Just(Ty::Bool),
        Just(Ty::Date),
        Just(Ty::Datetime),
    ]
    .boxed()
}

fn field(i: usize) -> BoxedStrategy<FieldSpec> {
    (ty(), prop::option::of(any::<bool>()))
        .prop_flat_map(move |(ty, required)| {
            let tag = match ty {
                Ty::Str => "str",
                Ty::Int => "int",
                Ty::Float => "float",
                Ty::Decimal { .. } => "dec",
                Ty::Bool => "bool",
                Ty::Date => "date",
                Ty::Datetime => "ts",
            };
            rules(ty).prop_map(move |rules| FieldSpec { name: format!("f{i}_{tag}"), ty, required, rules })
        })
        .boxed()
}

/// A key field needs room for a distinct key per row (the rows are 40 at most).
fn widen_for_keys(r: &mut Rules) {
    const ROOM: i64 = 10_000;
    match (&mut r.min, &mut r.max) {
        (Some(Val::Int(lo)), Some(Val::Int(hi))) if i128::from(*hi) - i128::from(*lo) < i128::from(ROOM) => {
            if *lo <= i64::MAX - ROOM {
                *hi = *lo + ROOM;
            } else {
                *lo = *hi - ROOM;
            }
        }
        (Some(Val::Int(lo)), None) => *lo = (*lo).min(i64::MAX - ROOM),
        (None, Some(Val::Int(hi))) => *hi = (*hi).max(i64::MIN + ROOM),
        _ => {}
    }
}

pub fn spec() -> BoxedStrategy<Spec> {
    (2usize..=6)
        .prop_flat_map(|n| {
            let order: Vec<usize> = (0..n).collect();
            ((0..n).map(field).collect::<Vec<_>>(), any::<bool>(), Just(order).prop_shuffle())
        })
        .prop_map(|(mut fields, want_pk, order)| {
            let pk =
                if want_pk { fields.iter().position(|f| f.ty == Ty::Int && f.rules.one_of.is_none()) } else { None };
            if let Some(k) = pk {
                widen_for_keys(&mut fields[k].rules);
            }
            Spec { fields, pk, order }
        })
        .boxed()
}

pub fn int_of(v: &Option<Val>) -> Option<i64> {
    match v {
        Some(Val::Int(i)) => Some(*i),
        _ => None,
    }
}

pub fn float_of(v: &Option<Val>) -> Option<f64> {
    match v {
        Some(Val::Float(f)) => Some(*f),
        _ => None,
    }
}
