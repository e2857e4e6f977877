//! Reading a staged Parquet part for a warehouse that loads rows itself (SQLite, PostgreSQL):
//! batch by batch — never a whole file in memory — with the spec's columns picked by name, in
//! spec order, and each widened to the type the adapter reads (only lossless widenings: a part
//! whose columns do not fit was staged for another version of the contract, and says so).

use crate::ports::{SqlType, TableSpec, WarehouseError};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit};
use futures::StreamExt;
use glueless_engine::store::Location;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::async_reader::ParquetRecordBatchStream;

/// Rows per batch read from a part.
pub const BATCH_ROWS: usize = 4096;

// `ParquetObjectReader` is deprecated since parquet 59.2 in favour of a hand-written
// `AsyncFileReader`, which needs the `bytes` crate as a direct dependency; it still works.
#[allow(deprecated)]
type Reader = parquet::arrow::async_reader::ParquetObjectReader;

/// An open part: [`PartReader::next`] yields the spec's columns of the next batch.
pub struct PartReader<'a> {
    spec: &'a TableSpec,
    part: &'a Location,
    stream: ParquetRecordBatchStream<Reader>,
    /// Per spec column: its index in the part and the type the adapter reads.
    picks: Vec<(usize, DataType)>,
}

impl<'a> PartReader<'a> {
    /// Opens `part` and checks its columns against `spec`; `read_as` is the Arrow type the
    /// adapter wants for each column type.
    pub async fn open(
        spec: &'a TableSpec,
        part: &'a Location,
        read_as: fn(SqlType) -> DataType,
    ) -> Result<PartReader<'a>, WarehouseError> {
        #[allow(deprecated)]
        let reader = Reader::new(part.store.clone(), part.path.clone());
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| unreadable(part, e))?;
        let schema = builder.schema().clone();
        let mut picks = Vec::with_capacity(spec.columns.len());
        for c in &spec.columns {
            let Some((idx, field)) = schema.column_with_name(&c.name) else {
                return Err(mismatch(spec, part, format!("has no column `{}`", c.name)));
            };
            if !fits(field.data_type(), c.ty) {
                return Err(mismatch(
                    spec,
                    part,
                    format!("has column `{}` of type {}, which does not fit {:?}", c.name, field.data_type(), c.ty),
                ));
            }
            picks.push((idx, read_as(c.ty)));
        }
        let stream = builder.with_batch_size(BATCH_ROWS).build().map_err(|e| unreadable(part, e))?;
        Ok(PartReader { spec, part, stream, picks })
    }

    /// The next batch: the spec's columns, in spec order, and the number of rows.
    pub async fn next(&mut self) -> Option<Result<(Vec<ArrayRef>, usize), WarehouseError>> {
        let batch = match self.stream.next().await? {
            Ok(b) => b,
            Err(e) => return Some(Err(unreadable(self.part, e))),
        };
        let mut columns = Vec::with_capacity(self.picks.len());
        for (idx, target) in &self.picks {
            let col = batch.column(*idx);
            columns.push(if same_family(col.data_type(), target) {
                col.clone()
            } else {
                // Only lossless widenings get here (see `fits`); `safe: false` errors instead
                // of turning a value it cannot convert into NULL.
                let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
                match arrow::compute::cast_with_options(col, target, &options) {
                    Ok(c) => c,
                    Err(e) => return Some(Err(mismatch(self.spec, self.part, e.to_string()))),
                }
            });
        }
        Some(Ok((columns, batch.num_rows())))
    }
}

fn unreadable(part: &Location, e: parquet::errors::ParquetError) -> WarehouseError {
    WarehouseError::Staged { url: part.url.clone(), message: e.to_string() }
}

/// The file's own staging is at fault, not the table: a refusal of its rows, so that the rest
/// of the batch loads and a replay stages it again.
fn mismatch(spec: &TableSpec, part: &Location, what: String) -> WarehouseError {
    WarehouseError::Load {
        table: spec.table.clone(),
        message: format!(
            "the staged Parquet {} {what}; it was written for another version of the contract of `{}`: stage the file again",
            part.url, spec.dataset
        ),
        cause: crate::ports::LoadCause::Rows,
    }
}

/// Whether a staged column of Arrow type `t` can fill a column of type `ty` without loss: the
/// same [`SqlType`] (decimals with the same precision and scale), or a narrower integer.
pub fn fits(t: &DataType, ty: SqlType) -> bool {
    match SqlType::from_arrow(t) {
        Some(SqlType::Int32) => matches!(ty, SqlType::Int32 | SqlType::Int64),
        Some(found) => found == ty,
        None => false,
    }
}

/// Types read as they are (a timestamp's zone only labels the same UTC instants).
fn same_family(t: &DataType, target: &DataType) -> bool {
    match (t, target) {
        (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Timestamp(TimeUnit::Microsecond, _)) => true,
        _ => t == target,
    }
}

/// One column of a batch read by [`PartReader`], typed: each adapter turns a cell into its
/// own values (PostgreSQL binary COPY, SQLite parameters).
pub(crate) enum Cells<'a> {
    Text(&'a StringArray),
    Int64(&'a Int64Array),
    Int32(&'a Int32Array),
    Float(&'a Float64Array),
    Decimal(&'a Decimal128Array, i8),
    Bool(&'a BooleanArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
}

impl<'a> Cells<'a> {
    /// The column `a` read as `ty` (the type the adapter asked [`PartReader`] for); `None`
    /// when the array is not of that type.
    pub(crate) fn new(a: &'a ArrayRef, ty: SqlType) -> Option<Cells<'a>> {
        Some(match ty {
            SqlType::Text => Cells::Text(a.as_string_opt::<i32>()?),
            SqlType::Int64 => Cells::Int64(a.as_primitive_opt::<Int64Type>()?),
            SqlType::Int32 => Cells::Int32(a.as_primitive_opt::<Int32Type>()?),
            SqlType::Float64 => Cells::Float(a.as_primitive_opt::<Float64Type>()?),
            SqlType::Decimal { scale, .. } => Cells::Decimal(a.as_any().downcast_ref()?, scale),
            SqlType::Boolean => Cells::Bool(a.as_boolean_opt()?),
            SqlType::Date => Cells::Date(a.as_any().downcast_ref()?),
            SqlType::Time => Cells::Time(a.as_any().downcast_ref()?),
            SqlType::Timestamp => Cells::Timestamp(a.as_any().downcast_ref()?),
        })
    }

    pub(crate) fn is_null(&self, row: usize) -> bool {
        let a: &dyn Array = match self {
            Cells::Text(a) => *a,
            Cells::Int64(a) => *a,
            Cells::Int32(a) => *a,
            Cells::Float(a) => *a,
            Cells::Decimal(a, _) => *a,
            Cells::Bool(a) => *a,
            Cells::Date(a) => *a,
            Cells::Time(a) => *a,
            Cells::Timestamp(a) => *a,
        };
        a.is_null(row)
    }
}
