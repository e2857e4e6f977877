//! Writing: typed batches to Parquet, rejected rows to the JSON Lines quarantine.
//!
//! Parquet goes through `object_store` multipart uploads (`BufWriter`), so memory is the row
//! group being encoded, not the file: zstd level 1 ([`ZSTD_LEVEL`]), row groups of up to 128 Ki
//! rows, decimals as exact DECIMAL, datetimes as TIMESTAMP(MICROS, UTC). With a size limit the
//! output is split into parts `<stem>.00000.parquet`, `<stem>.00001.parquet`, ... each a
//! complete Parquet file. The pages of integer and string columns are encoded by our own code
//! (`encode`), the rest and the file around them by arrow-rs (`file`).

use crate::store::Location;
use crate::validate::RejectedRow;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

mod encode;
mod file;
use file::FileEncoder;

/// Rows per Parquet row group (DuckDB writes 122,880). The writer holds a row group in memory
/// until it is complete, so this bounds memory: 128 Ki rows of the orders data are about 3 MB
/// of encoded pages, and the file is 0.06 % larger than with 512 Ki-row groups (19.68 MB
/// against 19.67), which held 30 MB more and took 2 % longer (1e6 orders on one core).
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A row group is also closed once its encoded data in memory passes this size, so that rows of
/// long, incompressible text do not pile up 128 Ki rows deep.
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

/// A buffered multipart upload with bounded memory: 8 MiB parts to S3 (its minimum is 5 MiB),
/// 1 MiB parts to a local file (any size will do there, and each part is memory touched for
/// the first time: 8 MiB parts cost 2,400 page faults on a 20 MB output), at most two in
/// flight. The default (10 MiB, eight in flight) held up to 80 MB per output.
fn upload(loc: &Location) -> BufWriter {
    let part = if loc.is_remote() { 8 << 20 } else { 1 << 20 };
    BufWriter::with_capacity(loc.store.clone(), loc.path.clone(), part).with_max_concurrency(2)
}

/// The zstd level of the Parquet pages, chosen by measurement on the validated 1e6-row orders
/// file of `../shared/bench/peers.sh` (88 MB of CSV, one pinned core, 2026-12-06): the output
/// and the CPU time zstd took (`perf record`) at each level.
///
/// | level | output | zstd CPU |
/// | --- | --- | --- |
/// | 1 | 19.67 MB | 0.17 s |
/// | 2 | 19.02 MB | 0.21 s |
/// | 3 | 17.59 MB | 0.30 s |
///
/// Level 1 takes 0.13 s (about 10 % of the whole conversion on one core) off level 3 for a file
/// 12 % larger; the peers write level 3: DuckDB 18.03 MB, Polars 19.03 MB, pyarrow 21.43 MB,
/// DataFusion 16.48 MB. The staging Parquet is read once by the warehouse's load, where its
/// size matters less than the time to make it. Our pages take level 1 with a smaller window and
/// hash table (`encode::small_window_parameters`): 19.31 MB, zstd 7 % faster.
pub const ZSTD_LEVEL: i32 = 1;

pub fn writer_properties() -> WriterProperties {
    properties_for(&[], true)
}

/// [`writer_properties`], with the columns named in `plain` written without a dictionary, and
/// without compression unless `compress`.
fn properties_for(plain: &[String], compress: bool) -> WriterProperties {
    let codec = if compress {
        Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("valid level"))
    } else {
        Compression::UNCOMPRESSED
    };
    let mut b = WriterProperties::builder().set_compression(codec).set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for name in plain {
        b = b.set_column_dictionary_enabled(ColumnPath::from(name.as_str()), false);
    }
    b.build()
}

/// Rows of the first batch looked at to decide each column's encoding.
const SAMPLE_ROWS: usize = 8192;

/// The columns of `batch` whose values are mostly distinct, so that a dictionary would only cost
/// time: the writer interns every value, then gives the dictionary up once it passes its page
/// size, in every row group. Decided once per file on the start of the first batch, as DuckDB and
/// Polars decide per column; the file is the same data either way, only its encoding differs.
pub fn mostly_distinct_columns(batch: &RecordBatch) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    let rows = batch.num_rows().min(SAMPLE_ROWS);
    let mut plain = Vec::new();
    // Distinct values counted by their 64-bit hashes, sorted: a collision among 8,192 values
    // is as likely as none matters, and it costs a tenth of a std HashSet (SipHash), which was
    // 3 % of a run of many small files, where the sample is the whole file.
    let mut hashes: Vec<u64> = Vec::with_capacity(rows);
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let column = column.slice(0, rows);
        let valid = rows - column.null_count();
        if valid < 64 {
            continue;
        }
        hashes.clear();
        if let Some(strings) = column.as_string_opt::<i32>() {
            hashes.extend(strings.iter().flatten().map(|v| twox_hash::XxHash3_64::oneshot(v.as_bytes())));
        } else if let Some(width) = column.data_type().primitive_width() {
            let data = column.to_data();
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + rows) * width];
            hashes.extend(
                (0..rows)
                    .filter(|&i| column.is_valid(i))
                    .map(|i| twox_hash::XxHash3_64::oneshot(&bytes[i * width..(i + 1) * width])),
            );
        } else {
            continue;
        }
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.len() * 2 > valid {
            plain.push(field.name().clone());
        }
    }
    plain
}

/// One Parquet file being written: its encoder, the upload its bytes go to, its rows so far.
struct Part {
    enc: FileEncoder,
    out: BufWriter,
    loc: Location,
    rows: u64,
}

impl Part {
    fn error(&self, source: ParquetError) -> WriteError {
        WriteError::Parquet { url: self.loc.url.clone(), source }
    }

    /// Uploads what the encoder has made since the last call.
    async fn drain(&mut self) -> Result<(), WriteError> {
        let bytes = self.enc.take_bytes().map_err(|e| self.error(e))?;
        if !bytes.is_empty() {
            self.out.write_all(&bytes).await.map_err(|e| self.error(ParquetError::External(Box::new(e))))?;
        }
        Ok(())
    }

    /// Writes the footer and completes the upload.
    async fn close(mut self) -> Result<Location, WriteError> {
        let tail = self.enc.finish().map_err(|e| self.error(e))?;
        self.out.write_all(&tail).await.map_err(|e| self.error(ParquetError::External(Box::new(e))))?;
        self.out.shutdown().await.map_err(|e| self.error(ParquetError::External(Box::new(e))))?;
        Ok(self.loc)
    }
}

/// Parquet output, optionally split by size.
pub struct ParquetSink {
    base: Location,
    max_part_bytes: Option<u64>,
    schema: SchemaRef,
    current: Option<Part>,
    /// Columns written without a dictionary, decided on the first batch (see
    /// [`mostly_distinct_columns`]) and kept for every part.
    plain: Option<Vec<String>>,
    /// zstd ([`ZSTD_LEVEL`]), or no compression at all (see [`ParquetSink::uncompressed`]).
    compress: bool,
    /// Parts closed so far, with where they are (to remove them if the file is rejected).
    written: Vec<(Location, Output)>,
}

impl ParquetSink {
    pub fn new(base: Location, schema: SchemaRef, max_part_bytes: Option<u64>) -> Self {
        ParquetSink { base, max_part_bytes, schema, current: None, plain: None, compress: true, written: Vec::new() }
    }

    /// Writes the pages without compression (and a small file's without dictionaries): for
    /// staging that is read back on the same machine, where zstd only costs time (each column
    /// chunk written or read makes its own zstd contexts, which took 9 % of a run of 10,000
    /// small files).
    pub fn uncompressed(mut self) -> Self {
        self.compress = false;
        self
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

    /// Opens the next part, its encodings chosen on `first`, the first batch it will hold.
    fn open(&mut self, first: Option<&RecordBatch>) -> Result<(), WriteError> {
        let loc = self.part_location();
        let w = upload(&loc);
        if let Some(b) = first
            && self.plain.is_none()
        {
            // A small file's staging read back here: no dictionary at all. Choosing, interning
            // and expanding them cost 2 % of a run of 10,000 small files and only buy a smaller
            // transient file. A larger file keeps them where they pay: its row groups held in
            // memory are smaller with them (a 1e6-row run peaked 60-90 MB higher without).
            let small = !self.compress && b.num_rows() < SAMPLE_ROWS;
            self.plain = Some(if small {
                self.schema.fields().iter().map(|f| f.name().clone()).collect()
            } else {
                mostly_distinct_columns(b)
            });
        }
        let plain = self.plain.as_deref().unwrap_or_default();
        let props = properties_for(plain, self.compress);
        let enc = FileEncoder::new(self.schema.clone(), props, ROW_GROUP_BYTES)
            .map_err(|source| WriteError::Parquet { url: loc.url.clone(), source })?;
        self.current = Some(Part { enc, out: w, loc, rows: 0 });
        Ok(())
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open(Some(batch))?;
        }
        let part = self.current.as_mut().expect("opened");
        part.enc.write(batch).map_err(|e| part.error(e))?;
        part.drain().await?;
        part.rows += batch.num_rows() as u64;
        if let Some(max) = self.max_part_bytes
            && (part.enc.bytes_written() + part.enc.in_progress_size()) as u64 >= max
        {
            self.close_part().await?;
        }
        Ok(())
    }

    async fn close_part(&mut self) -> Result<(), WriteError> {
        if let Some(part) = self.current.take() {
            let rows = part.rows;
            let loc = part.close().await?;
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
            self.open(None)?;
        }
        self.close_part().await?;
        Ok(self.written.into_iter().map(|(_, o)| o).collect())
    }

    /// Removes every part written so far (the file was rejected as a whole).
    pub async fn discard(mut self) -> Vec<String> {
        let mut removed = Vec::new();
        if let Some(part) = self.current.take() {
            // Completing then deleting is the one way to be sure no part is left behind on
            // every store (an abandoned multipart upload is cleaned by the bucket's lifecycle).
            let loc = part.loc.clone();
            let _ = part.close().await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(ids: Vec<Option<i64>>, codes: Vec<Option<&str>>) -> RecordBatch {
        let schema =
            Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("code", DataType::Utf8, true)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(codes))],
        )
        .expect("batch")
    }

    #[test]
    fn mostly_distinct_columns_go_without_a_dictionary() {
        let n = 10_000;
        let b =
            batch((0..n).map(Some).collect(), (0..n).map(|i| Some(["USD", "EUR", "GBP"][i as usize % 3])).collect());
        assert_eq!(mostly_distinct_columns(&b), vec!["id".to_string()]);
        // Text, the other way round: unique codes, repeated ids.
        let codes: Vec<String> = (0..n).map(|i| format!("SKU-{i}")).collect();
        let b = batch((0..n).map(|i| Some(i % 7)).collect(), codes.iter().map(|c| Some(c.as_str())).collect());
        assert_eq!(mostly_distinct_columns(&b), vec!["code".to_string()]);
    }

    /// Writes `b` through a sink (compressed or not) into memory; the file's column chunks.
    async fn written(b: &RecordBatch, compress: bool) -> Vec<parquet::file::metadata::ColumnChunkMetaData> {
        let loc = crate::store::Stores::new().resolve("memory://staging/x.parquet").expect("memory URL");
        let sink = ParquetSink::new(loc.clone(), b.schema(), None);
        let mut sink = if compress { sink } else { sink.uncompressed() };
        sink.write(b).await.expect("written");
        assert_eq!(sink.finish().await.expect("closed")[0].rows, b.num_rows() as u64);
        let bytes = loc.store.get(&loc.path).await.expect("stored").bytes().await.expect("read");
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes).expect("a Parquet file");
        use parquet::file::reader::FileReader;
        reader.metadata().row_groups().iter().flat_map(|g| g.columns().to_vec()).collect()
    }

    #[tokio::test]
    async fn a_small_files_staging_goes_without_compression_or_dictionaries() {
        let codes = |n: i64| -> RecordBatch {
            batch((0..n).map(Some).collect(), (0..n).map(|i| Some(["USD", "EUR"][i as usize % 2])).collect())
        };
        let has_dictionary = |chunks: &[parquet::file::metadata::ColumnChunkMetaData], name: &str| {
            chunks.iter().any(|c| c.column_path().string() == name && c.dictionary_page_offset().is_some())
        };
        // A small file: a repeated code gets a dictionary only in the compressed sink.
        let small = codes(2000);
        let plain = written(&small, false).await;
        assert!(plain.iter().all(|c| c.compression() == Compression::UNCOMPRESSED));
        assert!(plain.iter().all(|c| c.dictionary_page_offset().is_none()), "no dictionary page");
        let packed = written(&small, true).await;
        assert!(packed.iter().all(|c| matches!(c.compression(), Compression::ZSTD(_))));
        assert!(has_dictionary(&packed, "code"), "a repeated code keeps its dictionary");
        // A larger one keeps the per-column choice, uncompressed too (it bounds its memory).
        let large = written(&codes(SAMPLE_ROWS as i64), false).await;
        assert!(large.iter().all(|c| c.compression() == Compression::UNCOMPRESSED));
        assert!(has_dictionary(&large, "code") && !has_dictionary(&large, "id"));
    }

    #[test]
    fn nulls_and_short_samples_keep_the_dictionary() {
        // Mostly null: the few values decide nothing.
        let b = batch((0..1000).map(|i| (i < 10).then_some(i)).collect(), vec![None; 1000]);
        assert!(mostly_distinct_columns(&b).is_empty());
        // Distinct values past the sample do not count, and a slice's offset is honoured.
        let b = batch(
            (0..20_000).map(|i| Some(if i < SAMPLE_ROWS as i64 { 1 } else { i })).collect(),
            vec![Some("x"); 20_000],
        );
        assert!(mostly_distinct_columns(&b).is_empty());
        let sliced = b.slice(SAMPLE_ROWS, 10_000);
        assert_eq!(mostly_distinct_columns(&sliced), vec!["id".to_string()]);
    }
}
