//! Typed cells of the row being validated, and the Arrow builders they are committed to once
//! the whole row has passed.

use crate::contract::{Field, FieldKind, Schema, Value};
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field as ArrowField, Schema as ArrowSchema, SchemaRef, TimeUnit};
use std::cmp::Ordering;
use std::sync::Arc;

/// The Arrow type of a contract field. This is also the staging Parquet type.
pub fn arrow_type(kind: &FieldKind) -> DataType {
    match kind {
        FieldKind::String { .. } => DataType::Utf8,
        FieldKind::Integer { .. } => DataType::Int64,
        FieldKind::Number { decimal: Some((p, s)), .. } => DataType::Decimal128(*p, *s),
        FieldKind::Number { decimal: None, .. } => DataType::Float64,
        FieldKind::Boolean { .. } => DataType::Boolean,
        FieldKind::Date { .. } => DataType::Date32,
        FieldKind::Time { .. } => DataType::Time64(TimeUnit::Microsecond),
        FieldKind::Datetime { .. } => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldKind::Year => DataType::Int32,
    }
}

/// The Arrow schema of validated rows: contract order; required fields are not nullable.
pub fn arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(ArrowSchema::new(
        schema
            .fields
            .iter()
            .map(|f: &Field| ArrowField::new(&f.name, arrow_type(&f.kind), !f.constraints.required))
            .collect::<Vec<_>>(),
    ))
}

/// A parsed cell. Strings point into the record's text or into the row's scratch buffer (a
/// record is at most 64 MiB, so u32 offsets suffice). Decimals are split into two halves so the
/// cell stays 8-byte aligned and small: copying 32-byte, 16-aligned cells showed up as
/// store-forwarding stalls in profiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    Null,
    Str {
        scratch: bool,
        start: u32,
        end: u32,
    },
    Int(i64),
    Float(f64),
    /// High and low halves of an i128.
    Decimal(i64, u64),
    Bool(bool),
    Date(i32),
    Time(i64),
    Datetime(i64),
    Year(i32),
}

impl Cell {
    pub fn from_decimal(v: i128) -> Cell {
        Cell::Decimal((v >> 64) as i64, v as u64)
    }

    pub fn decimal(&self) -> i128 {
        match *self {
            Cell::Decimal(hi, lo) => ((hi as i128) << 64) | lo as i128,
            _ => 0,
        }
    }

    /// Compares with a typed bound or enum member of the same field.
    pub fn cmp_value(&self, text: &str, v: &Value) -> Option<Ordering> {
        match (self, v) {
            (Cell::Str { .. }, Value::Str(s)) => Some(text.cmp(s.as_str())),
            (Cell::Int(a), Value::Int(b)) => a.partial_cmp(b),
            (Cell::Year(a), Value::Int(b)) => (*a as i64).partial_cmp(b),
            (Cell::Float(a), Value::Float(b)) => a.partial_cmp(b),
            (c @ Cell::Decimal(..), Value::Decimal(b)) => c.decimal().partial_cmp(b),
            (Cell::Bool(a), Value::Bool(b)) => a.partial_cmp(b),
            (Cell::Date(a), Value::Date(b)) => a.partial_cmp(b),
            (Cell::Time(a), Value::Time(b)) => a.partial_cmp(b),
            (Cell::Datetime(a), Value::Datetime(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// One Arrow builder per field.
pub enum Column {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Boolean(BooleanBuilder),
    Date32(Date32Builder),
    Time64(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Int32(Int32Builder),
}

impl Column {
    pub fn new(kind: &FieldKind, capacity: usize) -> Column {
        match kind {
            FieldKind::String { .. } => Column::Utf8(StringBuilder::with_capacity(capacity, capacity * 16)),
            FieldKind::Integer { .. } => Column::Int64(Int64Builder::with_capacity(capacity)),
            FieldKind::Number { decimal: Some((p, s)), .. } => {
                Column::Decimal(Decimal128Builder::with_capacity(capacity), *p, *s)
            }
            FieldKind::Number { decimal: None, .. } => Column::Float64(Float64Builder::with_capacity(capacity)),
            FieldKind::Boolean { .. } => Column::Boolean(BooleanBuilder::with_capacity(capacity)),
            FieldKind::Date { .. } => Column::Date32(Date32Builder::with_capacity(capacity)),
            FieldKind::Time { .. } => Column::Time64(Time64MicrosecondBuilder::with_capacity(capacity)),
            FieldKind::Datetime { .. } => Column::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
            FieldKind::Year => Column::Int32(Int32Builder::with_capacity(capacity)),
        }
    }

    /// Appends the cells `rows` of `cells`, which have passed validation, in that order. A
    /// string cell's text is in `text` or, once unescaped, in `scratch` ([`Cell::Str`]). One
    /// loop per column type: the type is matched once, not per cell.
    #[inline]
    pub fn extend(&mut self, cells: &[Cell], rows: &[u32], text: &str, scratch: &str) {
        macro_rules! each {
            ($b:expr, $cell:pat => $v:expr) => {
                for &j in rows {
                    match cells[j as usize] {
                        $cell => $b.append_value($v),
                        Cell::Null => $b.append_null(),
                        other => unreachable!("cell {other:?} does not fit its column"),
                    }
                }
            };
        }
        // Fixed-width values go in as one extension of the builder's values (reserved once,
        // written without a capacity check each).
        macro_rules! fixed {
            ($b:expr, $cell:pat => $v:expr) => {
                $b.extend_from_iter_option(rows.iter().map(|&j| match cells[j as usize] {
                    $cell => Some($v),
                    Cell::Null => None,
                    other => unreachable!("cell {other:?} does not fit its column"),
                }))
            };
        }
        match self {
            Column::Utf8(b) => each!(b, Cell::Str { scratch: s, start, end } => {
                let from = if s { scratch } else { text };
                &from[start as usize..end as usize]
            }),
            Column::Int64(b) => fixed!(b, Cell::Int(v) => v),
            Column::Float64(b) => fixed!(b, Cell::Float(v) => v),
            Column::Decimal(b, ..) => fixed!(b, c @ Cell::Decimal(..) => c.decimal()),
            Column::Boolean(b) => each!(b, Cell::Bool(v) => v),
            Column::Date32(b) => fixed!(b, Cell::Date(v) => v),
            Column::Time64(b) => fixed!(b, Cell::Time(v) => v),
            Column::Timestamp(b) => fixed!(b, Cell::Datetime(v) => v),
            Column::Int32(b) => fixed!(b, Cell::Year(v) => v),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Utf8(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::Decimal(b, p, s) => {
                Arc::new(b.finish().with_precision_and_scale(*p, *s).expect("precision checked by the contract loader"))
            }
            Column::Boolean(b) => Arc::new(b.finish()),
            Column::Date32(b) => Arc::new(b.finish()),
            Column::Time64(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish().with_timezone("UTC")),
            Column::Int32(b) => Arc::new(b.finish()),
        }
    }
}
