//! One file, end to end: decode, validate, (transform), write Parquet and quarantine, report.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use glueless_engine::{Dataset, FileJob, Stores};
//! let dataset = Dataset::load("schemas/orders.toml".as_ref())?;
//! let stores = Stores::new();
//! let report = FileJob::new(&dataset, stores.resolve("landing/orders-1.csv")?)
//!     .output(stores.resolve("staging/orders-1.parquet")?)
//!     .run()
//!     .await?;
//! assert_eq!(report.rows_read, report.rows_valid + report.rows_rejected);
//! # Ok(()) }
//! ```
//!
//! A rejected row is data, not an error: it is counted, quarantined and reported. A file-level
//! problem (a missing column, too many rejected rows, a broken quote that swallows the rest of
//! the file) is also a normal outcome ([`Report::file_problem`]): the Parquet written so far is
//! removed, the quarantine kept. Only failures to read or write are [`JobError`]s.
//!
//! Whatever the input, the job keeps to its [`Limits`]: a record, a line skipped, the
//! decompressed size and the quarantine are bounded, and past a bound the file is rejected
//! with a [`FileProblem`] that names it.

use crate::contract::{self, Contract, ContractError};
use crate::decode::tokenizer::{FieldSpan, Records, Tokenizer, unescape_into};
use crate::decode::{CHUNK_BYTES, Compression, DecodeError, Input};
use crate::limits::Limits;
use crate::store::Location;
use crate::transform::Transform;
use crate::validate::{Counts, FileProblem, RejectedRow, Validator};
use crate::write::{Output, ParquetSink, Quarantine, WriteError};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use checker::{Checked, Checker, Chunk, IN_FLIGHT};
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// A record longer than this is taken for a runaway quote and rejects the file (the default of
/// [`Limits::max_record_bytes`]).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Records tokenized and validated at a time: bounds the spans, rejected rows and quarantine
/// text held at once when a chunk holds a million tiny records.
const RECORDS_PER_PARSE: usize = 16 * 1024;
/// A chunk's buffers larger than this are dropped when the chunk comes back, not reused.
const SPARE_BYTES: usize = 4 * CHUNK_BYTES;

/// A loaded contract with its planned transform: everything needed to process its files.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub contract: Arc<Contract>,
    /// Schema of the validated rows (the transform's `input`).
    pub validated_schema: SchemaRef,
    pub transform: Option<Transform>,
}

impl Dataset {
    /// Loads a contract file and plans its transform.
    pub fn load(path: &std::path::Path) -> Result<Dataset, ContractError> {
        Self::from_contract(contract::load_path(path)?)
    }

    pub fn from_contract(contract: Contract) -> Result<Dataset, ContractError> {
        let validated_schema = crate::validate::columns::arrow_schema(&contract.schema);
        let transform = match &contract.load.transform {
            None => None,
            Some(sql) => Some(Transform::plan(sql, validated_schema.clone()).map_err(|e| ContractError {
                file: contract.source.clone(),
                key: "load.transform".into(),
                message: format!("the SQL does not plan against table `input`: {e}"),
            })?),
        };
        Ok(Dataset { contract: Arc::new(contract), validated_schema, transform })
    }

    /// The schema of the Parquet written for this dataset.
    pub fn output_schema(&self) -> SchemaRef {
        match &self.transform {
            Some(t) => t.output_schema(),
            None => self.validated_schema.clone(),
        }
    }
}

/// Why a file could not be processed (as opposed to being rejected).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Input(#[from] DecodeError),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A key index could not spill past its memory (disk full, temp dir unwritable).
    #[error(transparent)]
    KeyIndex(#[from] crate::validate::keys::KeyIndexError),
    #[error("dataset `{dataset}`: the transform failed: {source}")]
    Transform {
        dataset: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

impl JobError {
    /// Whether running the same file again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Input(e) => e.is_retryable(),
            JobError::Write(_) | JobError::KeyIndex(_) => true,
            JobError::Transform { .. } => false,
        }
    }
}

/// One row error as listed in the report (the quarantine has them all).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportError {
    pub line: u64,
    pub row: u64,
    pub field: Option<String>,
    pub rule: &'static str,
    pub value: Option<String>,
    pub message: String,
}

/// What happened to one file. Serialized as the `--format json` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub dataset: String,
    pub input: String,
    /// What the job decided about the file (`valid`, `rows_rejected` or `file_rejected`).
    pub status: Status,
    pub rows_read: u64,
    pub rows_valid: u64,
    pub rows_rejected: u64,
    /// Bytes read from the store (as stored, so compressed bytes for `.gz`/`.zst`).
    pub bytes_read: u64,
    /// A fingerprint of the stored bytes (`xxh3:<hex>`): equal content, equal fingerprint.
    pub fingerprint: String,
    /// The store's entity tag of the version read, when it has one.
    pub e_tag: Option<String>,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// The first row errors, in file order.
    pub errors: Vec<ReportError>,
    pub outputs: Vec<Output>,
    pub warnings: Vec<String>,
    /// Set when the file as a whole was rejected.
    pub file_problem: Option<FileProblem>,
}

/// What the file job decided about a file: the report's `status`, serialized as `valid`,
/// `rows_rejected` or `file_rejected`. The command line turns it into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every row is valid.
    Valid,
    /// Some rows are rejected, within `max_rejected_ratio`: the valid rows are written.
    RowsRejected,
    /// The file is rejected as a whole ([`Report::file_problem`] says why).
    FileRejected,
}

impl Status {
    /// The name in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::RowsRejected => "rows_rejected",
            Status::FileRejected => "file_rejected",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `report.status == "valid"`: the name is the one the JSON report carries.
impl PartialEq<&str> for Status {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Status> for &str {
    fn eq(&self, other: &Status) -> bool {
        *self == other.as_str()
    }
}

/// Progress callback: `(bytes_read, total_bytes, rows_read)`.
pub type ProgressFn = Arc<dyn Fn(u64, u64, u64) + Send + Sync>;

/// A builder for one run over one file.
pub struct FileJob<'a> {
    dataset: &'a Dataset,
    input: Location,
    output: Option<Location>,
    rejects: Option<Location>,
    max_part_bytes: Option<u64>,
    max_errors: usize,
    threads: usize,
    progress: Option<ProgressFn>,
    warehouse_limits: Option<crate::validate::limits::WarehouseLimits>,
    if_match: Option<String>,
    limits: Limits,
    compress: bool,
}

impl<'a> FileJob<'a> {
    pub fn new(dataset: &'a Dataset, input: Location) -> Self {
        FileJob {
            dataset,
            input,
            output: None,
            rejects: None,
            max_part_bytes: None,
            max_errors: 20,
            threads: 1,
            progress: None,
            warehouse_limits: None,
            if_match: None,
            limits: Limits::default(),
            compress: true,
        }
    }

    /// Rejects, as row errors, the values the target warehouse cannot store exactly (see
    /// [`crate::validate::limits`]); without it no warehouse limit is checked.
    pub fn warehouse_limits(mut self, limits: crate::validate::limits::WarehouseLimits) -> Self {
        self.warehouse_limits = Some(limits);
        self
    }

    /// The bounds this run keeps to (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits.clamped();
        self
    }

    /// Where the Parquet goes; without it the run is a dry run that writes nothing.
    pub fn output(mut self, loc: Location) -> Self {
        self.output = Some(loc);
        self
    }

    /// Where the quarantine goes; default `<output stem>.rejects.jsonl` next to the output.
    pub fn rejects(mut self, loc: Location) -> Self {
        self.rejects = Some(loc);
        self
    }

    /// Whether the Parquet pages are compressed (zstd at [`crate::write::ZSTD_LEVEL`]; the
    /// default) or not: staging read back on the same machine is written faster without (see
    /// [`ParquetSink::uncompressed`]).
    pub fn compressed(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Split the Parquet output into parts of about this many bytes.
    pub fn max_part_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_part_bytes = bytes;
        self
    }

    /// How many row errors the report lists (the quarantine has all).
    pub fn max_errors(mut self, n: usize) -> Self {
        self.max_errors = n;
        self
    }

    /// Threads the job may keep busy: with more than one, validation runs on a thread of its
    /// own while the file is read and the Parquet encoded; the transform gets `n` partitions.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    pub fn progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    /// Read only this version of the input (its ETag as the store gives it): an input that has
    /// changed since fails with [`DecodeError::Changed`] before a byte is read.
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    pub async fn run(self) -> Result<Report, JobError> {
        let started = Instant::now();
        let c = self.dataset.contract.clone();
        let mut input = Input::open_version(&self.input, c.dialect.encoding, self.if_match.as_deref()).await?;
        let total = input.size;

        let quarantine = match (&self.rejects, &self.output) {
            (Some(r), _) => Some(Quarantine::new(r.clone())),
            (None, Some(o)) => {
                let name = o.file_name();
                let stem = name.strip_suffix(".parquet").unwrap_or(name);
                Some(Quarantine::new(o.with_file_name(&format!("{stem}.rejects.jsonl"))))
            }
            // A dry run still measures the quarantine it would write, so that `validate` and
            // `transform` give the same verdict on the quarantine bound.
            (None, None) => Some(Quarantine::counting_only()),
        };
        let limits = self.limits;
        let (tx, writer) = match &self.output {
            Some(out) => {
                let (tx, rx) = mpsc::channel::<RecordBatch>(2);
                let sink = ParquetSink::new(out.clone(), self.dataset.output_schema(), self.max_part_bytes);
                let sink = if self.compress { sink } else { sink.uncompressed() };
                let transform = self.dataset.transform.clone();
                let threads = self.threads;
                let dataset = c.name.clone();
                let memory = limits.transform_memory_bytes;
                (Some(tx), Some(tokio::spawn(write_all(rx, sink, transform, threads, memory, dataset))))
            }
            None => (None, None),
        };

        let mut tok = Tokenizer::new(c.dialect.delimiter, c.dialect.quote);
        tok.set_max_records(RECORDS_PER_PARSE);
        // One field more than allowed, to tell a header that has too many.
        tok.set_max_fields(limits.max_columns.saturating_add(1));
        let mut v = Validator::new(c.clone());
        v.set_warehouse_limits(self.warehouse_limits.clone());
        v.set_limits(&limits);
        if !c.dialect.header {
            v.bind_by_position();
            tok.set_max_fields(v.width().unwrap_or(0) + 1);
        }
        // The validator binds the header here, then moves to its own thread (see `checker`).
        let mut validator = Some(v);
        let mut checker: Option<Checker> = None;
        let mut verdicts = Verdicts { quarantine, errors: Vec::new(), max_errors: self.max_errors, spare: Vec::new() };
        let mut buf: Vec<u8> = Vec::new();
        let mut recs = Records::default();
        let mut warnings = Vec::new();
        let mut problem: Option<FileProblem> = None;
        let mut lines_to_skip = c.dialect.skip_lines;
        let mut need_header = c.dialect.header;
        let mut eof = false;
        // The last parse stopped at RECORDS_PER_PARSE: parse on before reading more.
        let mut more = false;
        // A record longer than the buffer: parse again only once the buffer has doubled, so
        // that a long record is tokenized a few times, not once per chunk.
        let mut wait_for = 0usize;
        let compressed = input.compression() != Compression::None;
        loop {
            if !more {
                if eof {
                    break;
                }
                eof = !input.fill(&mut buf).await?;
                if compressed && input.decompressed_bytes() > limits.max_decompressed(total) {
                    problem = Some(FileProblem {
                        rule: "decompressed-size",
                        message: format!(
                            "the file decompresses to more than {} bytes ({} times its {total} stored bytes plus {} MiB): it looks like a decompression bomb; if the data is real, upload it uncompressed or split it, or raise [limits] decompressed_ratio",
                            limits.max_decompressed(total),
                            limits.decompressed_ratio,
                            limits.decompressed_floor_bytes >> 20
                        ),
                    });
                    break;
                }
                if buf.len() < wait_for && !eof {
                    continue;
                }
            }
            more = false;
            if lines_to_skip > 0 {
                let (n, skipped) = tok.skip_lines(&buf, lines_to_skip, eof);
                buf.drain(..n);
                lines_to_skip -= skipped;
                if lines_to_skip > 0 {
                    if buf.len() > limits.max_record_bytes {
                        problem = Some(FileProblem {
                            rule: "malformed-file",
                            message: format!(
                                "line {} (one of the dialect.skip_lines = {} lines skipped before the data) is longer than {} bytes; check dialect.skip_lines in {} against the file",
                                tok.line(),
                                c.dialect.skip_lines,
                                limits.max_record_bytes,
                                c.source
                            ),
                        });
                        break;
                    }
                    continue;
                }
            }
            recs.clear();
            let consumed = tok.parse(&buf, eof, &mut recs);
            more = recs.records.len() == RECORDS_PER_PARSE;
            if consumed == 0 {
                if eof {
                    break;
                }
                if buf.len() > limits.max_record_bytes {
                    problem = Some(FileProblem {
                        rule: "malformed-file",
                        message: format!(
                            "the record starting on line {} is longer than {} bytes, which is almost always a quote that is never closed; fix the quoting of that line",
                            tok.line(),
                            limits.max_record_bytes
                        ),
                    });
                    break;
                }
                wait_for = buf.len().saturating_mul(2).min(limits.max_record_bytes + 1);
                continue;
            }
            wait_for = 0;
            if need_header {
                let h = recs.records.remove(0);
                need_header = false;
                let v_bound = validator.as_mut().expect("the header is bound before the validator starts");
                if h.field_count() + h.extra_fields() > limits.max_columns {
                    problem = Some(FileProblem {
                        rule: "too-many-columns",
                        message: format!(
                            "the header (line {}) has {} columns, more than [limits] max_columns = {}; check dialect.delimiter, or raise the limit",
                            h.line,
                            h.field_count() + h.extra_fields(),
                            limits.max_columns
                        ),
                    });
                    break;
                }
                let names = header_names(&buf, &recs, &h, c.dialect.quote);
                match names {
                    Err(p) => {
                        problem = Some(p);
                        break;
                    }
                    Ok(names) => match v_bound.bind_header(&names) {
                        Ok(w) => warnings.extend(w),
                        Err(p) => {
                            problem = Some(p);
                            break;
                        }
                    },
                }
                // Cells past the header's width are only counted: one more is kept to quote.
                tok.set_max_fields(v_bound.width().unwrap_or(0) + 1);
            }
            if !recs.records.is_empty() {
                // The records go to the validator with the bytes they span; the unconsumed
                // tail moves to a buffer of an earlier chunk, to be filled further.
                let Chunk { buf: mut next, recs: spare_recs } = verdicts.spare.pop().unwrap_or_default();
                next.clear();
                next.extend_from_slice(&buf[consumed..]);
                let mut bytes = std::mem::replace(&mut buf, next);
                bytes.truncate(consumed);
                let chunk = Chunk { buf: bytes, recs: std::mem::replace(&mut recs, spare_recs) };
                if let Some(v) = validator.as_mut()
                    && !compressed
                {
                    // The first chunk says how long a record is, the object's size how many
                    // there are (an eighth more, for records longer further on): the key indexes
                    // are made that large at once.
                    let rows = total.saturating_mul(chunk.recs.records.len() as u64) / chunk.buf.len().max(1) as u64;
                    v.expect_rows(rows.saturating_add(rows / 8).try_into().unwrap_or(usize::MAX));
                }
                let ch = checker.get_or_insert_with(|| {
                    Checker::start(
                        validator.take().expect("the validator is not started twice"),
                        tx.clone(),
                        self.threads,
                    )
                });
                ch.send(chunk).await;
                // Keep one chunk in the validator while the next is read.
                while ch.in_flight() >= IN_FLIGHT {
                    match ch.next().await {
                        Some(checked) => {
                            problem = verdicts.take(checked, &input, &limits, self.progress.as_ref()).await?
                        }
                        None => break,
                    }
                    if problem.is_some() {
                        break;
                    }
                }
            } else {
                buf.drain(..consumed);
            }
            if problem.is_some() {
                break;
            }
        }
        // The verdicts still out: a chunk validated is counted, so its rejected rows go to the
        // quarantine even after a file-level problem; chunks not yet validated are not.
        let mut v = match checker {
            Some(mut ch) => {
                if problem.is_some() {
                    ch.stop();
                }
                while let Some(checked) = ch.next().await {
                    let late = verdicts.take(checked, &input, &limits, self.progress.as_ref()).await?;
                    problem = problem.or(late);
                }
                ch.finish().await
            }
            None => validator.take().expect("the validator is here when it was never started"),
        };
        if problem.is_none() && need_header {
            problem = Some(FileProblem {
                rule: "empty-file",
                message: "the file is empty: there is no header line; a file with a header and no rows is accepted"
                    .into(),
            });
        }
        if problem.is_none()
            && let Some(b) = v.finish()
            && let Some(tx) = &tx
        {
            // A send fails only if the writer stopped; its error is collected below.
            let _ = tx.send(b).await;
        }
        drop(tx);
        let counts: Counts = v.counts();
        if problem.is_none() && counts.rows_read > 0 {
            let ratio = counts.rows_rejected as f64 / counts.rows_read as f64;
            if ratio > c.load.max_rejected_ratio {
                problem = Some(FileProblem {
                    rule: "rejected-ratio",
                    message: format!(
                        "{} of {} rows were rejected ({:.3}%), above load.max_rejected_ratio = {} in {}; fix the rows listed in the quarantine, or raise the ratio",
                        counts.rows_rejected,
                        counts.rows_read,
                        ratio * 100.0,
                        c.load.max_rejected_ratio,
                        c.source
                    ),
                });
            }
        }
        let mut outputs = Vec::new();
        if let Some(w) = writer {
            let sink = w.await.expect("writer task does not panic")?;
            if problem.is_some() {
                let removed = sink.discard().await;
                if !removed.is_empty() {
                    warnings.push(format!(
                        "removed the Parquet written before the file was rejected: {}",
                        removed.join(", ")
                    ));
                }
            } else {
                outputs.extend(sink.finish().await?);
            }
        }
        if let Some(q) = verdicts.quarantine {
            outputs.extend(q.finish().await?);
        }
        let seconds = started.elapsed().as_secs_f64();
        let status = if problem.is_some() {
            Status::FileRejected
        } else if counts.rows_rejected > 0 {
            Status::RowsRejected
        } else {
            Status::Valid
        };
        Ok(Report {
            version: env!("CARGO_PKG_VERSION"),
            dataset: c.name.clone(),
            input: self.input.url.clone(),
            status,
            rows_read: counts.rows_read,
            rows_valid: counts.rows_valid,
            rows_rejected: counts.rows_rejected,
            bytes_read: input.bytes_read(),
            fingerprint: input.fingerprint(),
            e_tag: input.e_tag.clone(),
            seconds,
            rows_per_second: if seconds > 0.0 { counts.rows_read as f64 / seconds } else { 0.0 },
            errors: verdicts.errors,
            outputs,
            warnings: warnings
                .iter()
                .map(|w| crate::text::bounded(w, crate::text::MAX_MESSAGE_BYTES).into_owned())
                .collect(),
            file_problem: problem.map(|p| FileProblem {
                message: crate::text::bounded(&p.message, crate::text::MAX_MESSAGE_BYTES).into_owned(),
                ..p
            }),
        })
    }
}

fn header_names(
    buf: &[u8],
    recs: &Records,
    h: &crate::decode::tokenizer::RecordSpan,
    quote: u8,
) -> Result<Vec<String>, FileProblem> {
    if let Some(m) = h.malformed {
        return Err(FileProblem {
            rule: "malformed-file",
            message: format!("the header (line {}) cannot be read: {}", h.line, m.message()),
        });
    }
    let mut names = Vec::new();
    for f in recs.fields_of(h) {
        let mut v = Vec::new();
        unescape_into(&buf[f.range()], quote, &mut v);
        match String::from_utf8(v) {
            Ok(s) => names.push(s),
            Err(_) => {
                return Err(FileProblem {
                    rule: "encoding-error",
                    message: format!("the header (line {}) is not valid UTF-8; check dialect.encoding", h.line),
                });
            }
        }
    }
    Ok(names)
}

/// Where the verdicts of the chunks go: the quarantine, the report's first errors, the progress.
struct Verdicts {
    quarantine: Option<Quarantine>,
    errors: Vec<ReportError>,
    max_errors: usize,
    /// Chunks handed back, whose buffers the next chunks reuse.
    spare: Vec<Chunk>,
}

impl Verdicts {
    /// Writes a chunk's rejected rows; returns the problem if the quarantine grew past its bound.
    async fn take(
        &mut self,
        checked: Checked,
        input: &Input,
        limits: &Limits,
        progress: Option<&ProgressFn>,
    ) -> Result<Option<FileProblem>, JobError> {
        let Checked { chunk, rejects, counts, key_error } = checked;
        self.spare.push(reusable(chunk));
        if let Some(e) = key_error {
            return Err(e.into());
        }
        collect_errors(&rejects, &mut self.errors, self.max_errors);
        let mut problem = None;
        if let Some(q) = &mut self.quarantine {
            q.write(&rejects).await?;
            let allowed = limits.max_quarantine(input.decompressed_bytes());
            if q.bytes() > allowed {
                problem = Some(FileProblem {
                    rule: "quarantine-size",
                    message: format!(
                        "the quarantine of this file passed {allowed} bytes ({} times the {} bytes read plus {} MiB) after {} rejected rows: the file is mostly rejected rows (blank lines, stray delimiters?); fix the file at the first lines of the quarantine, or raise [limits] quarantine_ratio",
                        limits.quarantine_ratio,
                        input.decompressed_bytes(),
                        limits.quarantine_floor_bytes >> 20,
                        counts.rows_rejected
                    ),
                });
            }
        }
        if let Some(p) = progress {
            p(input.bytes_read(), input.size, counts.rows_read);
        }
        Ok(problem)
    }
}

/// `chunk` with its buffers kept for the next chunks, but those that grew past [`SPARE_BYTES`]
/// for one long record: each of the chunks in flight would otherwise hold as much as the longest
/// record yet, for the rest of the file.
fn reusable(mut chunk: Chunk) -> Chunk {
    if chunk.buf.capacity() > SPARE_BYTES {
        chunk.buf = Vec::new();
    }
    if chunk.recs.fields.capacity() * std::mem::size_of::<FieldSpan>() > SPARE_BYTES {
        chunk.recs = Records::default();
    }
    chunk
}

fn collect_errors(rejects: &[RejectedRow], errors: &mut Vec<ReportError>, max: usize) {
    for r in rejects {
        for e in &r.errors {
            if errors.len() >= max {
                return;
            }
            // A cell may be 64 MiB: the report quotes its start (the quarantine has it whole).
            let cut = |s: &str| crate::text::bounded(s, crate::text::MAX_MESSAGE_BYTES).into_owned();
            errors.push(ReportError {
                line: r.line,
                row: r.row,
                field: e.field.as_deref().map(cut),
                rule: e.rule,
                value: e.value.as_deref().map(cut),
                message: cut(&e.message),
            });
        }
    }
}

async fn write_all(
    mut rx: mpsc::Receiver<RecordBatch>,
    mut sink: ParquetSink,
    transform: Option<Transform>,
    threads: usize,
    memory_bytes: usize,
    dataset: String,
) -> Result<ParquetSink, JobError> {
    match transform {
        None => {
            while let Some(b) = rx.recv().await {
                sink.write(&b).await?;
            }
        }
        Some(t) => {
            let failed = |e| JobError::Transform { dataset: dataset.clone(), source: explain_memory(e, memory_bytes) };
            let mut out = t.execute(rx, threads, memory_bytes).await.map_err(failed)?;
            while let Some(b) = out.next().await {
                let b = b.map_err(failed)?;
                sink.write(&b).await?;
            }
        }
    }
    Ok(sink)
}

/// Says what to do when the transform ran out of its memory pool.
fn explain_memory(e: datafusion::error::DataFusionError, memory_bytes: usize) -> datafusion::error::DataFusionError {
    use datafusion::error::DataFusionError;
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => DataFusionError::Context(
            format!(
                "the transform needs more than its {} MiB of memory; make load.transform stream (no aggregate, sort or window over the whole file), or raise [limits] memory_mb (the transform gets half of it)",
                memory_bytes >> 20
            ),
            Box::new(e),
        ),
        _ => e,
    }
}

mod checker;
#[cfg(test)]
mod tests;
