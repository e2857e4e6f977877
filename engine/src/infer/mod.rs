//! `glueless infer`: a draft contract from sample files.
//!
//! The files are read through the same decoding as a file job ([`crate::decode`]: the store,
//! decompression from the key, transcoding) and cut by the same tokenizer; each cell is tried
//! with the engine's own cell parsers ([`crate::cells`]). So what is inferred is what
//! `glueless validate` accepts: on the sampled files, the draft rejects no row except the rows
//! no contract can accept (malformed quoting, blank rows, rows with the wrong number of
//! cells), which the evidence counts.
//!
//! Memory is bounded whatever the files hold: one chunk and one record at a time, constant
//! state per column ([`types::Column`]), and for the key guess the cell hashes of at most
//! [`KEY_BUDGET_BYTES`] worth of rows.
//!
//! - [`dialect`]: delimiter, quote, title lines, header.
//! - [`types`]: the narrowest type of a column, and the evidence for it.
//! - `keys`: the primary-key guess. `render`: the commented TOML and the JSON.

pub mod dialect;
mod keys;
mod render;
pub mod types;

#[cfg(test)]
mod tests;

use crate::contract::Encoding;
use crate::decode::tokenizer::{FieldSpan, Records, Tokenizer, unescape_into};
use crate::decode::{Compression, DecodeError, Input, latin1_to_utf8};
use crate::store::Location;
use crate::text::{inert, is_unsafe_char};
use dialect::Detected;
use serde::Serialize;
use std::collections::BTreeMap;
use types::{Column, Kind, MISSING_MARKERS};

pub use render::toml_string;

/// Bytes read from each file unless `--sample-mb` or `--full` say otherwise.
pub const DEFAULT_SAMPLE_MB: u64 = 16;
/// Memory for the cell hashes the key guess looks at (8 bytes a cell).
pub const KEY_BUDGET_BYTES: usize = 32 << 20;
/// The most columns in a key guess.
pub const MAX_KEY_COLUMNS: usize = 3;
/// Columns tried for the key guess (the first ones that qualify).
pub const KEY_CANDIDATE_COLUMNS: usize = 16;
/// The longest field name drafted for a column whose header cell cannot name a field.
const MAX_DRAFTED_NAME_CHARS: usize = 63;

/// What to infer and how much to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes read per file (after decompression); `None` reads every byte (`--full`).
    pub sample_bytes: Option<u64>,
    /// Write `minimum` and `maximum` constraints from the values seen.
    pub bounds: bool,
    pub name: Option<String>,
    pub table: Option<String>,
    pub match_glob: Option<String>,
    /// The longest record and the most columns read, as for a file job.
    pub limits: crate::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sample_bytes: Some(DEFAULT_SAMPLE_MB << 20),
            bounds: false,
            name: None,
            table: None,
            match_glob: None,
            limits: crate::Limits::default(),
        }
    }
}

/// Why no draft could be made.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] DecodeError),
    /// The files give nothing to infer from, or disagree (a mistake in what was given).
    #[error("{0}")]
    Unusable(String),
    /// The draft does not load back: a bug in `infer`, never printed as a contract.
    #[error("the drafted contract does not load ({0}); this is a bug in glueless infer, please report it")]
    Internal(String),
}

/// One file read for the draft.
#[derive(Debug, Clone, Serialize)]
pub struct FileEvidence {
    pub url: String,
    /// Bytes read after decompression.
    pub bytes: u64,
    /// Data rows read (the rows no contract accepts included).
    pub rows: u64,
    /// Whether the whole file was read (else: the first `bytes`, cut at a record end).
    pub complete: bool,
    pub compression: &'static str,
}

/// Rows that no contract can accept; `validate` rejects exactly these.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Unacceptable {
    /// Quoting a CSV reader cannot take apart (`malformed-row`).
    pub malformed: u64,
    /// Every cell empty (`blank-row`).
    pub blank: u64,
    /// More or fewer cells than the header (`extra-cell`, `missing-cell`).
    pub wrong_cells: u64,
    /// The first lines of such rows (up to 10, by file).
    pub first_lines: Vec<(String, u64)>,
}

impl Unacceptable {
    pub fn total(&self) -> u64 {
        self.malformed + self.blank + self.wrong_cells
    }
}

/// One drafted field.
#[derive(Debug, Clone, Serialize)]
pub struct DraftField {
    pub name: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub required: bool,
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enumeration: Option<Vec<String>>,
    /// Smallest and largest value as written (only written to the contract with `bounds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<(String, String)>,
    pub evidence: FieldEvidence,
}

/// What was seen in one column.
#[derive(Debug, Clone, Serialize)]
pub struct FieldEvidence {
    /// Cells with a value.
    pub values: u64,
    /// Missing cells by marker (`""` for empty).
    pub missing: BTreeMap<String, u64>,
    /// Rows of a file without this column.
    pub absent: u64,
    /// Why this type, in words.
    pub reason: String,
    /// Distinct values while there were at most [`types::ENUM_MAX_VALUES`] short ones;
    /// `None` once that cap was passed.
    pub distinct: Option<usize>,
    /// The header cell, when it could not name the field (the field is named by position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_cell: Option<String>,
}

/// The drafted dialect.
#[derive(Debug, Clone, Serialize)]
pub struct DraftDialect {
    pub delimiter: char,
    pub quote: char,
    pub header: bool,
    pub encoding: &'static str,
    pub skip_lines: u64,
}

/// The primary-key guess.
#[derive(Debug, Clone, Serialize)]
pub struct KeyGuess {
    /// The smallest set of columns unique and never missing in the rows checked; empty: none.
    pub columns: Vec<String>,
    /// Whether it was checked on every sampled row (then it is written as `primaryKey`; else
    /// only as a comment).
    pub checked_all_rows: bool,
    pub rows_checked: u64,
    /// In words.
    pub reason: String,
}

/// A drafted contract with the evidence for each guess.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub name: String,
    pub table: String,
    #[serde(rename = "match")]
    pub match_glob: String,
    pub dialect: DraftDialect,
    pub missing_values: Vec<String>,
    pub primary_key: KeyGuess,
    pub fields: Vec<DraftField>,
    pub files: Vec<FileEvidence>,
    /// Data rows read in all files.
    pub rows: u64,
    pub dialect_evidence: Vec<String>,
    pub unacceptable: Unacceptable,
    /// The bounds that were reached (sample size, key rows, distinct values), in words.
    pub caps: Vec<String>,
    /// Whether `minimum`/`maximum` are written.
    pub with_bounds: bool,
}

impl Draft {
    /// The contract as commented TOML (it loads with [`crate::contract::load_str`]).
    pub fn toml(&self) -> String {
        render::toml(self)
    }

    /// The contract as the JSON tree of the TOML (same keys).
    pub fn contract_json(&self) -> serde_json::Value {
        render::contract_json(self)
    }
}

/// Infers one contract from the files at `locations` (several files of one dataset together).
pub async fn infer(locations: &[Location], options: &Options) -> Result<Draft, InferError> {
    if locations.is_empty() {
        return Err(InferError::Unusable("no file given".into()));
    }
    let mut encoding = Encoding::Utf8;
    loop {
        let mut scan = Scan::new(options, encoding);
        let mut restart = false;
        for loc in locations {
            match scan_location(&mut scan, loc).await? {
                Flow::Done => {}
                Flow::NotUtf8 => {
                    restart = true;
                    break;
                }
            }
        }
        if restart && encoding == Encoding::Utf8 {
            encoding = Encoding::Latin1;
            continue;
        }
        return scan.finish(&locations[0].url);
    }
}

/// Infers from in-memory files `(name, bytes)`, read as a store would give them
/// (decompressed); for tests and callers that already hold the bytes.
pub fn infer_bytes(files: &[(&str, &[u8])], options: &Options) -> Result<Draft, InferError> {
    if files.is_empty() {
        return Err(InferError::Unusable("no file given".into()));
    }
    let mut encoding = Encoding::Utf8;
    'attempt: loop {
        let mut scan = Scan::new(options, encoding);
        for (name, bytes) in files {
            let raw = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
            let limit = options.sample_bytes.map_or(raw.len(), |s| raw.len().min(s as usize));
            let mut buf = Vec::new();
            match encoding {
                Encoding::Utf8 => buf.extend_from_slice(&raw[..limit]),
                Encoding::Latin1 => latin1_to_utf8(&raw[..limit], &mut buf),
            }
            let eof = limit == raw.len();
            let mut file = FileScan::new(name, "none");
            file.bytes = limit as u64;
            match file.feed(&mut scan, &mut buf, eof)? {
                Flow::NotUtf8 if encoding == Encoding::Utf8 => {
                    encoding = Encoding::Latin1;
                    continue 'attempt;
                }
                _ => {}
            }
            file.end(&mut scan, eof)?;
        }
        return scan.finish(files[0].0);
    }
}

enum Flow {
    Done,
    /// The file is not UTF-8: start again reading every file as Latin-1.
    NotUtf8,
}

async fn scan_location(scan: &mut Scan<'_>, loc: &Location) -> Result<Flow, InferError> {
    let mut input = Input::open(loc, scan.encoding).await?;
    let compression = match input.compression() {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    let mut file = FileScan::new(&loc.url, compression);
    let mut buf = Vec::new();
    let mut eof = false;
    while !eof {
        eof = !input.fill(&mut buf).await?;
        file.bytes = input.decompressed_bytes();
        let enough = scan.options.sample_bytes.is_some_and(|s| file.bytes >= s);
        if let Flow::NotUtf8 = file.feed(scan, &mut buf, eof)? {
            return Ok(Flow::NotUtf8);
        }
        if enough && !eof {
            break;
        }
    }
    file.end(scan, eof)?;
    Ok(Flow::Done)
}

/// Hashes of the cells of the first rows, for the key guess.
struct KeyRows {
    hashes: Vec<u64>,
    max_rows: usize,
    rows: usize,
    /// Rows were read beyond `max_rows`.
    capped: bool,
}

/// The state of one inference over all its files.
struct Scan<'o> {
    options: &'o Options,
    encoding: Encoding,
    /// The dialect of the first file; every other file must have the same.
    dialect: Option<(Detected, String)>,
    /// Column names from the first file's header (or `column_N`).
    names: Vec<String>,
    /// Header cells that cannot name a field, by column (then fields bind by position).
    bad_names: Vec<Option<String>>,
    /// Lines the header record spans (0 without a header).
    header_lines: u64,
    columns: Vec<Column>,
    keys: Option<KeyRows>,
    rows: u64,
    unacceptable: Unacceptable,
    files: Vec<FileEvidence>,
}

impl<'o> Scan<'o> {
    fn new(options: &'o Options, encoding: Encoding) -> Self {
        Scan {
            options,
            encoding,
            dialect: None,
            names: Vec::new(),
            bad_names: Vec::new(),
            header_lines: 0,
            columns: Vec::new(),
            keys: None,
            rows: 0,
            unacceptable: Unacceptable::default(),
            files: Vec::new(),
        }
    }

    /// Sets the columns from the first file's header (`None`: no header, `width` columns).
    fn set_columns(&mut self, header: Option<Vec<String>>, width: usize) {
        let names = header.unwrap_or_else(|| (1..=width).map(|i| format!("column_{i}")).collect());
        self.bad_names =
            names.iter().enumerate().map(|(i, n)| unusable_name(n, &names[..i]).then(|| n.clone())).collect();
        if self.bad_names.iter().any(Option::is_some) {
            self.names = drafted_names(&names);
        } else {
            self.names = names;
        }
        self.columns = vec![Column::default(); self.names.len()];
        let max_rows = (KEY_BUDGET_BYTES / 8 / self.names.len().max(1)).max(1);
        self.keys = Some(KeyRows { hashes: Vec::new(), max_rows, rows: 0, capped: false });
    }
}

/// Whether a header cell cannot be a field name (the contract loader refuses it, or the
/// validator could not bind it): empty, a control character, or a duplicate ignoring case.
/// Bytes at the start of a file that text does not hold: a NUL, or more than one in twenty of
/// the other ASCII control characters (tab, line feed, carriage return aside) and at least 64
/// of them, in the first 64 KiB. Random bytes have both; UTF-16 has a NUL in every other byte;
/// a small file whose header holds a few escape sequences is text (hostile, and drafted inert).
/// Without this a binary file became one header cell of megabytes, a field named by it.
fn not_text(head: &[u8]) -> Option<String> {
    let head = &head[..head.len().min(64 << 10)];
    if let Some(at) = head.iter().position(|&b| b == 0) {
        return Some(format!("a NUL byte at offset {at}"));
    }
    let control = head.iter().filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f).count();
    (control >= 64 && control * 20 > head.len())
        .then(|| format!("{control} control characters in the first {} bytes", head.len()))
}

fn unusable_name(name: &str, before: &[String]) -> bool {
    name.trim().is_empty() || name.chars().any(is_unsafe_char) || before.iter().any(|b| b.eq_ignore_ascii_case(name))
}

/// Field names for a header that cannot be bound by name: each cell made inert, shortened,
/// `column_N` when empty, and made unique ignoring case.
fn drafted_names(header: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(header.len());
    for (i, h) in header.iter().enumerate() {
        let clean: String = inert(h.trim()).chars().take(MAX_DRAFTED_NAME_CHARS).collect();
        let base = if clean.trim().is_empty() { format!("column_{}", i + 1) } else { clean };
        let mut name = base.clone();
        let mut n = 2;
        while out.iter().any(|o| o.eq_ignore_ascii_case(&name)) {
            name = format!("{base}_{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// One file being read.
struct FileScan {
    url: String,
    compression: &'static str,
    bytes: u64,
    rows: u64,
    tok: Option<Tokenizer>,
    lines_to_skip: u64,
    need_header: bool,
    /// The file's columns to the dataset's columns.
    map: Vec<Option<usize>>,
    width: usize,
    recs: Records,
    cell: Vec<u8>,
    /// A record (or the head) was incomplete: look again only once the buffer has doubled,
    /// so that a long record is scanned a few times, not once per chunk.
    wait_for: usize,
}

impl FileScan {
    fn new(url: &str, compression: &'static str) -> Self {
        FileScan {
            url: url.to_string(),
            compression,
            bytes: 0,
            rows: 0,
            tok: None,
            lines_to_skip: 0,
            need_header: false,
            map: Vec::new(),
            width: 0,
            recs: Records::default(),
            cell: Vec::new(),
            wait_for: 0,
        }
    }

    fn shown(&self) -> String {
        inert(&self.url).into_owned()
    }

    /// Reads the complete records at the start of `buf` and drains them.
    fn feed(&mut self, scan: &mut Scan, buf: &mut Vec<u8>, eof: bool) -> Result<Flow, InferError> {
        let max_record = scan.options.limits.max_record_bytes;
        if !eof && buf.len() < self.wait_for {
            return Ok(Flow::Done);
        }
        self.wait_for = 0;
        if self.tok.is_none() && !self.start(scan, buf, eof)? {
            self.wait_for = buf.len().saturating_mul(2).min(max_record + 1);
            if buf.len() > max_record {
                return Err(InferError::Unusable(format!(
                    "{}: no complete line in the first {max_record} bytes; is it a CSV file?",
                    self.shown()
                )));
            }
            return Ok(Flow::Done);
        }
        loop {
            let tok = self.tok.as_mut().expect("started");
            if self.lines_to_skip > 0 {
                let (n, skipped) = tok.skip_lines(buf, self.lines_to_skip, eof);
                if scan.encoding == Encoding::Utf8 && std::str::from_utf8(&buf[..n]).is_err() {
                    return Ok(Flow::NotUtf8);
                }
                buf.drain(..n);
                self.lines_to_skip -= skipped;
                if self.lines_to_skip > 0 {
                    return Ok(Flow::Done);
                }
            }
            self.recs.clear();
            let consumed = tok.parse(buf, eof, &mut self.recs);
            if consumed == 0 {
                if buf.len() > max_record && !eof {
                    let line = tok.line();
                    return Err(InferError::Unusable(format!(
                        "{}: the record on line {line} is longer than {max_record} bytes (an unclosed quote?)",
                        self.shown(),
                    )));
                }
                self.wait_for = buf.len().saturating_mul(2).min(max_record + 1);
                return Ok(Flow::Done);
            }
            if scan.encoding == Encoding::Utf8 && std::str::from_utf8(&buf[..consumed]).is_err() {
                return Ok(Flow::NotUtf8);
            }
            let next_line = tok.line();
            let records = std::mem::take(&mut self.recs.records);
            for (i, r) in records.iter().enumerate() {
                if self.need_header {
                    self.need_header = false;
                    let end_line = records.get(i + 1).map_or(next_line, |n| n.line);
                    self.header(scan, buf, r, end_line - r.line)?;
                    continue;
                }
                self.row(scan, buf, r);
            }
            self.recs.records = records;
            buf.drain(..consumed);
        }
    }

    /// Detects the dialect from the head in `buf`; false when more bytes are needed.
    fn start(&mut self, scan: &mut Scan, buf: &[u8], eof: bool) -> Result<bool, InferError> {
        if let Some(why) = not_text(buf) {
            return Err(InferError::Unusable(format!(
                "{}: this does not look like a text file ({why}): a compressed file needs its .gz or .zst \
                 suffix, UTF-16 is not read (convert it to UTF-8), and other binary files are not CSV",
                self.shown()
            )));
        }
        // Bytes that are not UTF-8 are read lossily here; `feed` then finds them and the
        // inference starts again in Latin-1.
        let Some(d) = dialect::detect(buf, eof) else {
            if eof {
                return Err(InferError::Unusable(format!(
                    "{}: the file is empty: no line holds a value to infer from",
                    self.shown()
                )));
            }
            return Ok(false);
        };
        match &scan.dialect {
            None => {
                scan.dialect = Some((d.clone(), self.url.clone()));
                if !d.header {
                    scan.set_columns(None, d.width);
                }
            }
            Some((first, first_url)) => {
                let describe = |d: &Detected| {
                    format!(
                        "delimiter `{}`, quote `{}`, {} title line(s), {}",
                        inert(&(d.delimiter as char).to_string()),
                        d.quote as char,
                        d.skip_lines,
                        if d.header { "a header" } else { "no header" }
                    )
                };
                let same = first.delimiter == d.delimiter
                    && first.quote == d.quote
                    && first.skip_lines == d.skip_lines
                    && first.header == d.header
                    && (first.header || first.width == d.width);
                if !same {
                    return Err(InferError::Unusable(format!(
                        "the files differ: {} has {}, but {} has {}{}; one contract reads one dialect, so infer them separately",
                        inert(first_url),
                        describe(first),
                        self.shown(),
                        describe(&d),
                        if !first.header && first.width != d.width {
                            format!(" ({} columns, not {})", d.width, first.width)
                        } else {
                            String::new()
                        }
                    )));
                }
            }
        }
        let (first, _) = scan.dialect.as_ref().expect("set above");
        let mut tok = Tokenizer::new(first.delimiter, first.quote);
        tok.set_max_fields(scan.options.limits.max_columns.saturating_add(1));
        tok.set_max_records(4096);
        self.tok = Some(tok);
        self.lines_to_skip = first.skip_lines;
        self.need_header = first.header;
        if !first.header {
            self.width = first.width;
            self.map = (0..first.width).map(Some).collect();
        }
        Ok(true)
    }

    fn cell<'b>(&'b mut self, buf: &'b [u8], f: &FieldSpan, quote: u8) -> &'b str {
        let bytes = if f.escaped() {
            self.cell.clear();
            unescape_into(&buf[f.range()], quote, &mut self.cell);
            &self.cell[..]
        } else {
            &buf[f.range()]
        };
        // The chunk was checked to be UTF-8 (or transcoded from Latin-1), and fields end on
        // ASCII delimiters, quotes or line ends.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    fn header(
        &mut self,
        scan: &mut Scan,
        buf: &[u8],
        r: &crate::decode::tokenizer::RecordSpan,
        lines: u64,
    ) -> Result<(), InferError> {
        let max_columns = scan.options.limits.max_columns;
        if r.field_count() + r.extra_fields() > max_columns {
            return Err(InferError::Unusable(format!(
                "{}: the header has {} columns, more than [limits] max_columns = {max_columns}",
                self.shown(),
                r.field_count() + r.extra_fields()
            )));
        }
        if r.malformed.is_some() {
            return Err(InferError::Unusable(format!(
                "{}: the header (line {}) is not valid CSV: {}",
                self.shown(),
                r.line,
                r.malformed.map(|m| m.message()).unwrap_or_default()
            )));
        }
        let quote = scan.dialect.as_ref().map_or(b'"', |(d, _)| d.quote);
        let fields = self.recs.fields_of(r).to_vec();
        let names: Vec<String> = fields.iter().map(|f| self.cell(buf, f, quote).to_string()).collect();
        self.width = names.len();
        if scan.columns.is_empty() {
            scan.header_lines = lines;
            scan.set_columns(Some(names.clone()), names.len());
            self.map = (0..names.len()).map(Some).collect();
            return Ok(());
        }
        let positional = scan.bad_names.iter().any(Option::is_some);
        let first: Vec<&String> = if positional {
            scan.bad_names.iter().zip(&scan.names).map(|(b, n)| b.as_ref().unwrap_or(n)).collect()
        } else {
            scan.names.iter().collect()
        };
        let mut map = Vec::with_capacity(names.len());
        for n in &names {
            map.push(first.iter().position(|f| *f == n));
        }
        let same_set = map.iter().all(Option::is_some) && names.len() == first.len();
        let same_order = map.iter().enumerate().all(|(i, m)| *m == Some(i));
        if !same_set || (positional && !same_order) || lines != scan.header_lines {
            let missing: Vec<&str> = first.iter().filter(|f| !names.contains(f)).map(|s| s.as_str()).collect();
            let extra: Vec<&str> = names.iter().filter(|n| !first.contains(n)).map(|s| s.as_str()).collect();
            let list = |v: &[&str]| crate::text::join_bounded(v.iter().map(|s| format!("`{}`", inert(s))), ", ", 400);
            return Err(InferError::Unusable(format!(
                "the files differ in their header: {} lacks {} and has {} that {} does not; one contract names one set of columns, so infer them separately",
                self.shown(),
                if missing.is_empty() { "no column".into() } else { list(&missing) },
                if extra.is_empty() { "no other column".into() } else { list(&extra) },
                inert(&scan.dialect.as_ref().map(|(_, u)| u.clone()).unwrap_or_default()),
            )));
        }
        self.map = map;
        Ok(())
    }

    fn row(&mut self, scan: &mut Scan, buf: &[u8], r: &crate::decode::tokenizer::RecordSpan) {
        self.rows += 1;
        let quote = scan.dialect.as_ref().map_or(b'"', |(d, _)| d.quote);
        let fields = self.recs.fields_of(r).to_vec();
        let problem = if r.malformed.is_some() {
            Some(&mut scan.unacceptable.malformed)
        } else if r.extra_fields() == 0 && fields.iter().all(FieldSpan::is_empty) {
            Some(&mut scan.unacceptable.blank)
        } else if fields.len() + r.extra_fields() != self.width {
            Some(&mut scan.unacceptable.wrong_cells)
        } else {
            None
        };
        if let Some(count) = problem {
            *count += 1;
            if scan.unacceptable.first_lines.len() < 10 {
                scan.unacceptable.first_lines.push((inert(&self.url).into_owned(), r.line));
            }
            return;
        }
        scan.rows += 1;
        let keys = scan.keys.as_mut().expect("columns are set before rows");
        let keep = keys.rows < keys.max_rows;
        if keep {
            keys.rows += 1;
            keys.hashes.resize(keys.hashes.len() + scan.columns.len(), 0);
        } else {
            keys.capped = true;
        }
        let base = keys.hashes.len().saturating_sub(scan.columns.len());
        for (i, f) in fields.iter().enumerate() {
            let Some(c) = self.map[i] else { continue };
            let text = self.cell(buf, f, quote);
            if keep {
                let keys = scan.keys.as_mut().expect("set");
                keys.hashes[base + c] = twox_hash::XxHash3_64::oneshot(text.as_bytes());
            }
            let col = &mut scan.columns[c];
            match MISSING_MARKERS.iter().position(|m| *m == text) {
                Some(m) => col.observe_marker(m),
                None => col.observe(text),
            }
        }
        // Columns this file does not have.
        if self.map.iter().flatten().count() < scan.columns.len() {
            for (c, col) in scan.columns.iter_mut().enumerate() {
                if !self.map.contains(&Some(c)) {
                    col.absent += 1;
                }
            }
        }
    }

    /// The end of the file's read: at `eof`, a partial last record cannot remain (the
    /// tokenizer takes it whole), and without `eof` the rest was left unread on purpose.
    fn end(self, scan: &mut Scan, eof: bool) -> Result<(), InferError> {
        if self.tok.is_none() {
            return Err(InferError::Unusable(format!(
                "{}: no complete line in the {} bytes read; give a larger --sample-mb, or --full",
                self.shown(),
                self.bytes
            )));
        }
        if self.need_header && scan.columns.is_empty() {
            return Err(InferError::Unusable(format!(
                "{}: no complete header line in the {} bytes read; give a larger --sample-mb, or --full",
                self.shown(),
                self.bytes
            )));
        }
        scan.files.push(FileEvidence {
            url: self.url,
            bytes: self.bytes,
            rows: self.rows,
            complete: eof,
            compression: self.compression,
        });
        Ok(())
    }
}

impl Scan<'_> {
    fn finish(self, first_file: &str) -> Result<Draft, InferError> {
        let (detected, _) = self.dialect.clone().ok_or_else(|| InferError::Unusable("no file was read".into()))?;
        let mut caps = Vec::new();
        for f in self.files.iter().filter(|f| !f.complete) {
            caps.push(format!(
                "{}: only the first {:.1} MB were read (--sample-mb; --full reads everything)",
                f.url,
                f.bytes as f64 / 1e6
            ));
        }
        // Types without the markers, then the markers that are missing values: those used in
        // a column that is otherwise typed.
        let guesses: Vec<types::Guess> = self.columns.iter().zip(&self.names).map(|(c, n)| c.decide(n)).collect();
        let mut missing_values = vec![String::new()];
        for (m, marker) in MISSING_MARKERS.iter().enumerate().skip(1) {
            let used = self.columns.iter().zip(&guesses).any(|(c, g)| c.markers[m] > 0 && g.kind != Kind::String);
            if used {
                missing_values.push(marker.to_string());
            }
        }
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut key_safe = Vec::with_capacity(self.columns.len());
        for (i, (col, guess)) in self.columns.iter().zip(guesses).enumerate() {
            let name = &self.names[i];
            // Markers that are not missing values are values of a text column.
            let mut col = col.clone();
            let mut guess = guess;
            let mut missing = BTreeMap::new();
            for (m, marker) in MISSING_MARKERS.iter().enumerate() {
                let n = col.markers[m];
                if n == 0 {
                    continue;
                }
                if missing_values.iter().any(|v| v == marker) {
                    missing.insert(marker.to_string(), n);
                } else {
                    col.observe(marker);
                    col.values += n - 1;
                }
            }
            if col.values != self.columns[i].values {
                guess = col.decide(name);
            }
            let missing_cells: u64 = missing.values().sum::<u64>() + col.absent;
            let required = missing_cells == 0 && col.values > 0;
            let enumeration = match (&guess.kind, col.distinct()) {
                (Kind::String, Some(d)) if d.len() >= 2 && col.values >= d.len() as u64 * types::ENUM_MIN_REPEAT => {
                    let mut d = d.to_vec();
                    d.sort();
                    Some(d)
                }
                _ => None,
            };
            let bounds = match &guess.kind {
                Kind::Number => guess
                    .bounds
                    .clone()
                    .filter(|(lo, hi)| [lo, hi].iter().all(|t| t.parse::<f64>().is_ok_and(f64::is_finite))),
                _ => guess.bounds.clone(),
            };
            fields.push(DraftField {
                name: name.clone(),
                kind: guess.kind.clone(),
                required,
                enumeration,
                bounds,
                evidence: FieldEvidence {
                    values: col.values,
                    missing,
                    absent: col.absent,
                    reason: guess.reason.clone(),
                    distinct: col.distinct().map(<[String]>::len),
                    header_cell: self.bad_names[i].as_ref().map(|h| inert(h).into_owned()),
                },
            });
            if col.distinct().is_none() && guess.kind == Kind::String {
                // Only said once, not per column.
                if !caps.iter().any(|c: &String| c.starts_with("distinct values")) {
                    caps.push(format!(
                        "distinct values are tracked up to {} per column (for enums); columns with more are plain text",
                        types::ENUM_MAX_VALUES
                    ));
                }
            }
            key_safe.push(guess.key_safe);
        }
        let keyable: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(i, f)| f.required && key_safe[*i])
            .map(|(i, _)| i)
            .take(KEY_CANDIDATE_COLUMNS)
            .collect();
        let key_rows = self.keys.as_ref().expect("columns set");
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let primary_key = keys::guess(&key_rows.hashes, &names, key_rows.rows, &keyable, key_rows.capped);
        if key_rows.capped {
            caps.push(format!(
                "the key guess looked at the first {} rows only ({} MiB of cell hashes)",
                key_rows.rows,
                KEY_BUDGET_BYTES >> 20
            ));
        }
        let positional = self.bad_names.iter().any(Option::is_some);
        let header = detected.header && !positional;
        let skip_lines = detected.skip_lines + if positional { self.header_lines } else { 0 };
        let mut dialect_evidence = detected.evidence.clone();
        if positional {
            dialect_evidence.push(format!(
                "header cells that cannot name a field (empty, duplicate ignoring case, or with control characters): the header line is skipped (skip_lines = {skip_lines}) and fields bind by position"
            ));
        }
        if self.encoding == Encoding::Latin1 {
            dialect_evidence.push("encoding latin-1: the bytes are not valid UTF-8".into());
        }
        let name = match &self.options.name {
            Some(n) => n.clone(),
            None => dataset_name(first_file),
        };
        let table = self.options.table.clone().unwrap_or_else(|| name.clone());
        let ext = extension(first_file);
        let match_glob = self.options.match_glob.clone().unwrap_or_else(|| format!("landing/{name}/**/*.{ext}*"));
        let draft = Draft {
            name,
            table,
            match_glob,
            dialect: DraftDialect {
                delimiter: detected.delimiter as char,
                quote: detected.quote as char,
                header,
                encoding: if self.encoding == Encoding::Latin1 { "latin-1" } else { "utf-8" },
                skip_lines,
            },
            missing_values,
            primary_key,
            fields,
            files: self.files,
            rows: self.rows,
            dialect_evidence,
            unacceptable: self.unacceptable,
            caps,
            with_bounds: self.options.bounds,
        };
        // Never print a contract that does not load.
        crate::contract::load_str(&draft.toml(), "<inferred>", std::path::Path::new(".")).map_err(|e| {
            match e.key.as_str() {
                "name" | "table" | "match" => InferError::Unusable(format!("--{}: {}", e.key, e.message)),
                _ => InferError::Internal(e.to_string()),
            }
        })?;
        Ok(draft)
    }
}

/// The file name without its compression and CSV extensions.
fn stem(file: &str) -> &str {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let mut s = base;
    for ext in [".gz", ".gzip", ".zst", ".zstd"] {
        if s.to_ascii_lowercase().ends_with(ext) {
            s = &s[..s.len() - ext.len()];
        }
    }
    match s.rfind('.') {
        Some(i) if i > 0 => &s[..i],
        _ => s,
    }
}

/// `csv` for `a/b.csv.gz`.
fn extension(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let s = stem(file);
    let rest = &base[s.len()..];
    let ext = rest.trim_start_matches('.').split('.').next().unwrap_or("");
    if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        "csv".into()
    } else {
        ext.to_ascii_lowercase()
    }
}

/// A dataset name from a file's path: `orders-2026-11-20.csv.gz` is `orders`,
/// `seattle-weather.csv` is `seattle_weather`; a file named by a date alone takes its folder's
/// name (`landing/refunds/2026-02-01.csv` is `refunds`); `2024.csv` alone is `_2024`.
pub fn dataset_name(file: &str) -> String {
    let mut s = stem(file);
    if !s.chars().any(|c| c.is_ascii_alphabetic()) {
        let folder = file.rsplit(['/', '\\']).nth(1).unwrap_or("");
        if folder.chars().any(|c| c.is_ascii_alphabetic()) && !folder.contains(':') {
            s = folder;
        }
    }
    let mut name: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    // A trailing date or number names one delivery, not the dataset.
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_');
    if trimmed.chars().any(|c| c.is_ascii_alphabetic()) {
        name = trimmed.to_string();
    }
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_').to_string();
    let name = if name.is_empty() { "dataset".to_string() } else { name };
    let name: String = name.chars().take(60).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) { format!("_{name}") } else { name }
}
