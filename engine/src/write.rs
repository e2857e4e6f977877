//! Writing: typed batches to Parquet, rejected rows to the JSON Lines quarantine.
//!
//! Parquet goes through `object_store` multipart uploads (`BufWriter`), so memory is
//! the row group being encoded, not the file: zstd level 3, row groups of up to 1 Mi rows,
//! decimals as exact DECIMAL, datetimes as TIMESTAMP(MICROS, UTC). With a size limit the
//! output is split into parts `<stem>.00000.parquet`, `<stem>.00001.parquet`, ... each a
//! complete Parquet file.

use crate::store::Location;
use crate::validate::RejectedRow;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

/// Rows per Parquet row group. The writer holds a row group in memory until it is complete, so
/// this bounds memory: 512 Ki rows of the orders data is about 40 MB in flight, and files stay
/// within a few percent of the size with 1 Mi-row groups.
pub const ROW_GROUP_ROWS: usize = 512 * 1024;

/// A row group is also closed once its encoded data in memory passes this size, so that rows of
/// long, incompressible text do not pile up 512 Ki rows deep.
pub const ROW_GROUP_BYTES: usize = 64 << 20;

/// A failure writing an output.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write Parquet to {url}: {source}")]
    Parquet {
        url: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot write {url}: {message}")]
    Store { url: String, message: String },
}

/// One file written, as listed in the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Output {
    pub url: String,
    /// `parquet` or `quarantine`.
    pub kind: &'static str,
    pub rows: u64,
    pub bytes: u64,
}

/// A buffered multipart upload with bounded memory: 8 MiB parts (S3's minimum is 5 MiB), at
/// most two in flight. The default (10 MiB, eight in flight) held up to 80 MB per output.
fn upload(loc: &Location) -> BufWriter {
    BufWriter::with_capacity(loc.store.clone(), loc.path.clone(), 8 << 20).with_max_concurrency(2)
}

pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Parquet output, optionally split by size.
pub struct ParquetSink {
    base: Location,
    max_part_bytes: Option<u64>,
    schema: SchemaRef,
    current: Option<(AsyncArrowWriter<BufWriter>, Location, u64)>,
    /// Parts closed so far, with where they are (to remove them if the file is rejected).
    written: Vec<(Location, Output)>,
}

impl ParquetSink {
    pub fn new(base: Location, schema: SchemaRef, max_part_bytes: Option<u64>) -> Self {
        ParquetSink { base, max_part_bytes, schema, current: None, written: Vec::new() }
    }

    fn part_location(&self) -> Location {
        match self.max_part_bytes {
            None => self.base.clone(),
            Some(_) => {
                let name = self.base.file_name();
                let stem = name.strip_suffix(".parquet").unwrap_or(name);
                self.base.with_file_name(&format!("{stem}.{:05}.parquet", self.written.len()))
            }
        }
    }

    fn open(&mut self) -> Result<(), WriteError> {
        let loc = self.part_location();
        let w = upload(&loc);
        let writer = AsyncArrowWriter::try_new(w, self.schema.clone(), Some(writer_properties()))
            .map_err(|source| WriteError::Parquet { url: loc.url.clone(), source })?;
        self.current = Some((writer, loc, 0));
        Ok(())
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open()?;
        }
        let (w, loc, rows) = self.current.as_mut().expect("opened");
        w.write(batch).await.map_err(|source| WriteError::Parquet { url: loc.url.clone(), source })?;
        if w.in_progress_size() >= ROW_GROUP_BYTES {
            w.flush().await.map_err(|source| WriteError::Parquet { url: loc.url.clone(), source })?;
        }
        *rows += batch.num_rows() as u64;
        if let Some(max) = self.max_part_bytes
            && (w.bytes_written() + w.in_progress_size()) as u64 >= max
        {
            self.close_part().await?;
        }
        Ok(())
    }

    async fn close_part(&mut self) -> Result<(), WriteError> {
        if let Some((w, loc, rows)) = self.current.take() {
            w.close().await.map_err(|source| WriteError::Parquet { url: loc.url.clone(), source })?;
            let bytes = loc.store.head(&loc.path).await.map(|m| m.size).unwrap_or(0);
            let output = Output { url: loc.url.clone(), kind: "parquet", rows, bytes };
            self.written.push((loc, output));
        }
        Ok(())
    }

    /// Closes the last part. A file with no valid rows still gets one (empty) Parquet file, so
    /// that the output always exists and carries the schema.
    pub async fn finish(mut self) -> Result<Vec<Output>, WriteError> {
        if self.current.is_none() && self.written.is_empty() {
            self.open()?;
        }
        self.close_part().await?;
        Ok(self.written.into_iter().map(|(_, o)| o).collect())
    }

    /// Removes every part written so far (the file was rejected as a whole).
    pub async fn discard(mut self) -> Vec<String> {
        let mut removed = Vec::new();
        if let Some((w, loc, _)) = self.current.take() {
            // Completing then deleting is the one way to be sure no part is left behind on
            // every store (an abandoned multipart upload is cleaned by the bucket's lifecycle).
            let _ = w.close().await;
            let output = Output { url: loc.url.clone(), kind: "parquet", rows: 0, bytes: 0 };
            self.written.push((loc, output));
        }
        for (loc, _) in self.written {
            if loc.store.delete(&loc.path).await.is_ok() {
                removed.push(loc.url);
            }
        }
        removed
    }
}

/// The quarantine: one JSON object per rejected row, created on the first rejected row. Without
/// a location it only counts what it would write (a dry run keeps to the same bound).
pub struct Quarantine {
    loc: Option<Location>,
    writer: Option<BufWriter>,
    rows: u64,
    bytes: u64,
    line: Vec<u8>,
}

impl Quarantine {
    pub fn new(loc: Location) -> Self {
        Quarantine { loc: Some(loc), writer: None, rows: 0, bytes: 0, line: Vec::new() }
    }

    /// A quarantine that writes nothing and counts the bytes it would have written.
    pub fn counting_only() -> Self {
        Quarantine { loc: None, writer: None, rows: 0, bytes: 0, line: Vec::new() }
    }

    /// Bytes written (or counted) so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub async fn write(&mut self, rows: &[RejectedRow]) -> Result<(), WriteError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.line.clear();
        for r in rows {
            serde_json::to_writer(&mut self.line, r).expect("rows serialize");
            self.line.push(b'\n');
        }
        if let Some(loc) = &self.loc {
            let w = self.writer.get_or_insert_with(|| upload(loc));
            w.write_all(&self.line)
                .await
                .map_err(|e| WriteError::Store { url: loc.url.clone(), message: e.to_string() })?;
        }
        self.rows += rows.len() as u64;
        self.bytes += self.line.len() as u64;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Option<Output>, WriteError> {
        match (self.writer.take(), self.loc) {
            (Some(mut w), Some(loc)) => {
                w.shutdown().await.map_err(|e| WriteError::Store { url: loc.url.clone(), message: e.to_string() })?;
                Ok(Some(Output { url: loc.url, kind: "quarantine", rows: self.rows, bytes: self.bytes }))
            }
            _ => Ok(None),
        }
    }
}
