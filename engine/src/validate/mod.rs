//! Validation: tokenized records in, typed Arrow batches and rejected rows out.
//!
//! A row is checked whole before any of it is committed: its cells are parsed into [`Cell`]s
//! (types, formats), checked against the constraints, then against the in-file primary key and
//! `unique` indexes, and only then appended to the column builders. A row that fails anything
//! becomes a [`RejectedRow`] with one [`RowError`] per failed check. Every record read is either
//! committed or rejected, which is what keeps `rows_read = rows_valid + rows_rejected`.
//!
//! Rows go through [`block`]'s column-at-a-time path, a block of rows a field at a time; every
//! row it cannot pass is checked row by row here ([`Validator::check_row`]), which alone gives
//! the verdicts and errors of failing rows.

mod block;
pub mod columns;
pub mod keys;
pub mod limits;
pub mod report;

use crate::cells::{self, CellError};
use crate::contract::{Contract, ExtraColumns, FieldKind, StringFormat, Value};
use crate::decode::tokenizer::{FieldSpan, RecordSpan, Records, unescape_into};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use columns::{Cell, Column};
use keys::{Key, KeyHasher, KeyIndex, Probe};
pub use report::{FileProblem, RejectedRow, RowError};
use std::cmp::Ordering;
use std::hash::RandomState;
use std::sync::Arc;

/// Rows per Arrow batch handed to the writer (a batch is handed on earlier once it holds
/// [`crate::Limits::batch_bytes`] of text). Up to four batches are in flight (being built,
/// queued, being encoded); 8 Ki rows of the orders data is 0.8 MB a batch. Measured on the
/// 1e6-row orders file (`docs/performance.md`, 2026-12-07): 32 Ki rows took 0.80 CPU-s on one
/// pinned core, 8 Ki and 4 Ki 0.74, 2 Ki 0.75; on two cores 8 Ki took 0.45 s against 0.48 s
/// for 32 Ki and 0.50 s for 4 Ki (more hand-offs between the threads). The gain is in the
/// primary-key lookups, which wait on memory: without a primary key both sizes take the same
/// time, so less batch data passing through the caches leaves them more room. 8 Ki rows is
/// also DataFusion's batch size, which a contract's `load.transform` runs in.
pub const BATCH_ROWS: usize = 8 * 1024;

/// How many rows ahead the primary key's slot is fetched.
const KEY_AHEAD: usize = 8;

/// Running counts of one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows_read: u64,
    pub rows_valid: u64,
    pub rows_rejected: u64,
}

/// Which CSV column feeds each contract field.
#[derive(Debug, Clone)]
struct Binding {
    /// Per contract field: the column index, or `None` when an optional column is absent.
    columns: Vec<Option<usize>>,
    /// Columns the header declares (cells past it are `extra-cell`).
    width: usize,
}

pub struct Validator {
    contract: Arc<Contract>,
    schema: SchemaRef,
    binding: Option<Binding>,
    columns: Vec<Column>,
    cells: Vec<Cell>,
    scratch: String,
    unescaped: Vec<u8>,
    rows_in_batch: usize,
    batch_rows: usize,
    /// Bytes of the records committed to the current batch: an upper bound of the text in any
    /// of its string columns (a cell is a piece of its record, unescaping only shortens it).
    bytes_in_batch: usize,
    batch_bytes: usize,
    max_row_errors: usize,
    /// Keys of the hash of composite and text keys: random per file, so that nobody can choose
    /// keys that collide.
    key_hash: RandomState,
    primary_key: Option<KeyIndex>,
    /// `Some` for fields with `unique`.
    unique: Vec<Option<KeyIndex>>,
    has_unique: bool,
    /// Per field: what [`check_constraints`] keeps at hand.
    checks: Vec<FieldChecks>,
    /// `missingValues` is exactly `[""]`, the common case.
    only_empty_is_missing: bool,
    /// Frictionless row number of the last record (the header is row 1).
    row_number: u64,
    errors: Vec<RowError>,
    counts: Counts,
    /// The column-at-a-time path's buffers, reused from block to block.
    block: block::Block,
    /// What the target warehouse cannot store; `None` checks no warehouse.
    warehouse_limits: Option<limits::WarehouseLimits>,
}

impl Validator {
    pub fn new(contract: Arc<Contract>) -> Self {
        Self::with_batch_rows(contract, BATCH_ROWS)
    }

    pub fn with_batch_rows(contract: Arc<Contract>, batch_rows: usize) -> Self {
        let schema = columns::arrow_schema(&contract.schema);
        let fields = &contract.schema.fields;
        let columns = fields.iter().map(|f| Column::new(&f.kind, batch_rows)).collect();
        let unique = fields.iter().map(|f| f.constraints.unique.then(KeyIndex::default)).collect();
        let primary_key = (!contract.schema.primary_key.is_empty()).then(KeyIndex::default);
        let has_unique = fields.iter().any(|f| f.constraints.unique);
        let checks = fields.iter().map(FieldChecks::new).collect();
        let only_empty_is_missing = contract.schema.missing_values == [""];
        Validator {
            schema,
            binding: None,
            columns,
            cells: vec![Cell::Null; fields.len()],
            scratch: String::new(),
            unescaped: Vec::new(),
            rows_in_batch: 0,
            batch_rows,
            bytes_in_batch: 0,
            batch_bytes: crate::Limits::default().batch_bytes,
            max_row_errors: crate::Limits::default().max_row_errors,
            key_hash: RandomState::new(),
            primary_key,
            unique,
            has_unique,
            checks,
            only_empty_is_missing,
            row_number: 0,
            errors: Vec::new(),
            counts: Counts::default(),
            block: block::Block::default(),
            warehouse_limits: None,
            contract,
        }
    }

    /// Also rejects the values that `limits` says the target warehouse cannot store exactly.
    pub fn set_warehouse_limits(&mut self, limits: Option<limits::WarehouseLimits>) {
        self.warehouse_limits = limits;
    }

    /// The Arrow schema of the batches this validator produces.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Applies the batch size in bytes and the cap on errors per row of `limits`.
    pub fn set_limits(&mut self, limits: &crate::Limits) {
        let l = limits.clamped();
        self.batch_bytes = l.batch_bytes;
        self.max_row_errors = l.max_row_errors;
        let indexes = self.primary_key.iter_mut().chain(self.unique.iter_mut().flatten());
        let n = indexes.count().max(1);
        for k in self.primary_key.iter_mut().chain(self.unique.iter_mut().flatten()) {
            k.set_budget(l.key_index_bytes / n, None);
        }
    }

    /// Sizes the key indexes for a file of about `rows` rows (within their budget), so that
    /// they do not grow step by step.
    pub fn expect_rows(&mut self, rows: usize) {
        let schema = &self.contract.schema;
        if let Some(index) = &mut self.primary_key {
            index.expect(rows, integer_key(schema, &schema.primary_key).is_none());
        }
        for (fi, index) in self.unique.iter_mut().enumerate() {
            if let Some(index) = index {
                index.expect(rows, integer_key(schema, &[fi]).is_none());
            }
        }
    }

    /// The failure of a key index to spill to disk, if one failed: the file cannot be checked
    /// within its memory, which is a job error (retryable), not a verdict on the file.
    pub fn take_key_error(&mut self) -> Option<keys::KeyIndexError> {
        self.primary_key.iter_mut().chain(self.unique.iter_mut().flatten()).find_map(KeyIndex::take_error)
    }

    /// The columns the header declares (cells past them are `extra-cell`), once bound.
    pub fn width(&self) -> Option<usize> {
        self.binding.as_ref().map(|b| b.width)
    }

    /// Binds contract fields to the columns of `header` by name. Returns warnings (an optional
    /// column that is absent), or the reason to reject the file.
    pub fn bind_header(&mut self, header: &[String]) -> Result<Vec<String>, FileProblem> {
        self.row_number = 1;
        let c = &self.contract;
        let mut warnings = Vec::new();
        let mut columns = Vec::with_capacity(c.schema.fields.len());
        for f in &c.schema.fields {
            let found: Vec<usize> = header.iter().enumerate().filter(|(_, h)| **h == f.name).map(|(i, _)| i).collect();
            match found.as_slice() {
                [i] => columns.push(Some(*i)),
                [] if f.constraints.required => {
                    let near = header.iter().find(|h| h.trim().eq_ignore_ascii_case(&f.name));
                    let hint = match near {
                        Some(h) => format!(
                            " (the header has `{}`: names must match exactly)",
                            crate::text::inert(&crate::text::bounded(h, crate::text::MAX_QUOTED_BYTES))
                        ),
                        None => String::new(),
                    };
                    return Err(FileProblem {
                        rule: "missing-label",
                        message: format!(
                            "required column `{}` is missing from the header (line {}){hint}; add it to the file, or make the field optional in {}",
                            f.name,
                            1 + c.dialect.skip_lines,
                            c.source
                        ),
                    });
                }
                [] => {
                    warnings
                        .push(format!("optional column `{}` is absent from the header; it is loaded as empty", f.name));
                    columns.push(None);
                }
                _ => {
                    return Err(FileProblem {
                        rule: "duplicate-label",
                        message: format!(
                            "column `{}` appears {} times in the header (columns {}); each field must appear once",
                            f.name,
                            found.len(),
                            crate::text::join_bounded(
                                found.iter().map(|i| i + 1),
                                ", ",
                                crate::text::MAX_MESSAGE_BYTES / 2
                            )
                        ),
                    });
                }
            }
        }
        let extra: Vec<(usize, &String)> =
            header.iter().enumerate().filter(|(_, h)| !c.schema.fields.iter().any(|f| &f.name == *h)).collect();
        if !extra.is_empty() {
            let blank = extra.iter().any(|(_, h)| h.is_empty());
            // A header of a million names must not make a message of megabytes.
            let names = crate::text::join_bounded(
                extra.iter().map(|(i, h)| {
                    if h.is_empty() {
                        format!("(blank, column {})", i + 1)
                    } else {
                        format!("`{}`", crate::text::inert(&crate::text::bounded(h, crate::text::MAX_QUOTED_BYTES)))
                    }
                }),
                ", ",
                crate::text::MAX_MESSAGE_BYTES / 2,
            );
            match c.load.extra_columns {
                ExtraColumns::RejectFile => {
                    return Err(FileProblem {
                        rule: if blank { "blank-label" } else { "extra-label" },
                        message: format!(
                            "the header has columns the contract does not name: {names}; add them to {} or set load.extra_columns = \"ignore\"",
                            c.source
                        ),
                    });
                }
                ExtraColumns::Ignore => warnings.push(format!("ignored columns not in the contract: {names}")),
            }
        }
        self.binding = Some(Binding { columns, width: header.len() });
        Ok(warnings)
    }

    /// Without a header, fields bind to columns by position.
    pub fn bind_by_position(&mut self) {
        let n = self.contract.schema.fields.len();
        self.binding = Some(Binding { columns: (0..n).map(Some).collect(), width: n });
    }

    /// Validates every record of `recs` (spans into `buf`). Full batches are pushed to
    /// `batches`, rejected rows to `rejects`.
    pub fn push_records(
        &mut self,
        buf: &[u8],
        recs: &Records,
        batches: &mut Vec<RecordBatch>,
        rejects: &mut Vec<RejectedRow>,
    ) {
        // One reference count per chunk, not per row: an atomic per row shows in profiles.
        let contract = self.contract.clone();
        // One UTF-8 check for the whole chunk; rows are checked one by one only if it fails.
        let end = recs.records.last().map_or(0, |r| r.raw().end);
        match std::str::from_utf8(&buf[..end]) {
            Ok(text) => {
                let rows = block::block_rows(contract.schema.fields.len());
                for block in recs.records.chunks(rows) {
                    self.push_block(&contract, text, recs, block, batches, rejects);
                }
            }
            Err(_) => self.push_rows(&contract, buf, recs, batches, rejects),
        }
    }

    /// [`Self::push_records`] a row at a time, each checked for UTF-8 on its own.
    fn push_rows(
        &mut self,
        contract: &Contract,
        buf: &[u8],
        recs: &Records,
        batches: &mut Vec<RecordBatch>,
        rejects: &mut Vec<RejectedRow>,
    ) {
        for r in &recs.records {
            self.counts.rows_read += 1;
            self.row_number += 1;
            let raw = &buf[r.raw()];
            match std::str::from_utf8(raw) {
                Ok(rec) => self.push_row(contract, rec, recs, r, batches, rejects),
                Err(_) => {
                    let enc = match self.contract.dialect.encoding {
                        crate::contract::Encoding::Utf8 => "UTF-8",
                        crate::contract::Encoding::Latin1 => "Latin-1",
                    };
                    let error = RowError {
                        field: None,
                        rule: "encoding-error",
                        constraint: None,
                        value: None,
                        message: format!(
                            "the row is not valid {enc}; if the file is Latin-1, set dialect.encoding = \"latin-1\" in {}",
                            self.contract.source
                        ),
                        first_line: None,
                    };
                    self.reject_row(r, raw, vec![error], rejects);
                }
            }
        }
    }

    /// Checks one record row by row ([`Self::check_row`]) and commits or rejects it.
    fn push_row(
        &mut self,
        contract: &Contract,
        rec: &str,
        recs: &Records,
        r: &RecordSpan,
        batches: &mut Vec<RecordBatch>,
        rejects: &mut Vec<RejectedRow>,
    ) {
        if self.check_row(contract, rec, recs, r) {
            self.commit(rec);
            if self.batch_full() {
                batches.push(self.take_batch());
            }
        } else {
            let mut errors = std::mem::take(&mut self.errors);
            cap_errors(&mut errors, self.max_row_errors);
            self.reject_row(r, rec.as_bytes(), errors, rejects);
        }
    }

    fn batch_full(&self) -> bool {
        self.rows_in_batch == self.batch_rows || self.bytes_in_batch >= self.batch_bytes
    }

    /// The rows committed since the last batch, if any.
    pub fn finish(&mut self) -> Option<RecordBatch> {
        (self.rows_in_batch > 0).then(|| self.take_batch())
    }

    fn take_batch(&mut self) -> RecordBatch {
        // A finished builder restarts from zero capacity and would regrow by doubling (and
        // copying) for every batch: start each batch with full-size builders instead.
        let fields = &self.contract.schema.fields;
        let arrays = self
            .columns
            .iter_mut()
            .zip(fields)
            .map(|(c, f)| std::mem::replace(c, Column::new(&f.kind, self.batch_rows)).finish())
            .collect();
        self.rows_in_batch = 0;
        self.bytes_in_batch = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).expect("builders match the schema")
    }

    fn reject_row(&mut self, r: &RecordSpan, raw: &[u8], errors: Vec<RowError>, rejects: &mut Vec<RejectedRow>) {
        self.counts.rows_rejected += 1;
        let (raw, raw_base64) = match std::str::from_utf8(raw) {
            Ok(s) => (s.to_string(), None),
            Err(_) => (String::from_utf8_lossy(raw).into_owned(), Some(report::base64(raw))),
        };
        rejects.push(RejectedRow { line: r.line, row: self.row_number, raw, raw_base64, errors });
    }

    /// Parses and checks one row into `self.cells`; errors go to `self.errors`.
    /// `text` is the record's raw text; field spans are offset by `r.raw_start`. The reference
    /// for every verdict: the column-at-a-time path ([`block`]) hands it every row it does not
    /// pass, so that the errors come from here alone.
    fn check_row(&mut self, contract: &Contract, text: &str, recs: &Records, r: &RecordSpan) -> bool {
        self.errors.clear();
        self.scratch.clear();
        let fields = recs.fields_of(r);
        if let Some(m) = r.malformed {
            self.errors.push(RowError {
                field: None,
                rule: "malformed-row",
                constraint: None,
                value: None,
                message: m.message().to_string(),
                first_line: None,
            });
            return false;
        }
        if r.extra_fields() == 0 && fields.iter().all(FieldSpan::is_empty) {
            self.errors.push(RowError {
                field: None,
                rule: "blank-row",
                constraint: None,
                value: None,
                message: "the row is blank: every cell is empty".into(),
                first_line: None,
            });
            return false;
        }
        let binding = self.binding.as_ref().expect("bound before rows");
        let base = r.raw().start;
        let cells = fields.len() + r.extra_fields();
        if cells > binding.width {
            // One error for all the extra cells, whatever their number: a row of a million
            // delimiters is one error, not a million.
            let extra = cells - binding.width;
            let value = fields
                .get(binding.width)
                .map(|f| cell_text(&text[f.shifted_back(base).range()], f.escaped(), contract.dialect.quote));
            let which = if extra == 1 {
                format!("cell {} has no column", binding.width + 1)
            } else {
                format!("cells {} to {cells} ({extra} cells) have no column", binding.width + 1)
            };
            self.errors.push(RowError {
                field: None,
                rule: "extra-cell",
                constraint: None,
                value,
                message: format!(
                    "the row has {cells} cells and the header {}: {which}; remove them or quote the cell that holds the delimiter",
                    binding.width
                ),
                first_line: None,
            });
        }
        for (fi, field) in contract.schema.fields.iter().enumerate() {
            let span = match binding.columns[fi] {
                None => {
                    self.cells[fi] = Cell::Null;
                    continue;
                }
                Some(c) if c >= fields.len() => {
                    self.errors.push(RowError {
                        field: Some(field.name.clone()),
                        rule: "missing-cell",
                        constraint: None,
                        value: None,
                        message: format!(
                            "the row has {} cells; the cell for `{}` (column {}) is missing",
                            fields.len(),
                            field.name,
                            c + 1
                        ),
                        first_line: None,
                    });
                    continue;
                }
                Some(c) => fields[c].shifted_back(base),
            };
            // The cell's text: a slice of the record, or unescaped into the row's scratch.
            let (s, cell_ref) = cell_of(text, span, contract.dialect.quote, &mut self.scratch, &mut self.unescaped);
            if is_missing(self.only_empty_is_missing, &contract.schema.missing_values, s) {
                self.cells[fi] = Cell::Null;
                if field.constraints.required {
                    self.errors.push(RowError {
                        field: Some(field.name.clone()),
                        rule: "constraint-error",
                        constraint: Some("required"),
                        value: Some(s.to_string()),
                        message: format!("`{}` is required but the cell is empty", field.name),
                        first_line: None,
                    });
                }
                continue;
            }
            // The cell is written in place, never built aside and copied: a copy of the whole
            // cell reloaded its two halves as one 16-byte value right after they were stored,
            // and that store-forwarding stall was a third of the row checks' time.
            match parse_cell_into(&field.kind, s, cell_ref, &mut self.cells[fi], &mut cells::LastDate::default()) {
                Ok(()) => {
                    let cell = &self.cells[fi];
                    // A field with no enum, bounds, lengths or pattern skips the constraints.
                    let checks = &self.checks[fi];
                    let failed = if checks.any { check_constraints(field, checks, cell, s) } else { None };
                    if let Some(e) =
                        failed.or_else(|| self.warehouse_limits.as_ref().and_then(|l| l.check(field, cell, s)))
                    {
                        self.errors.push(e);
                    }
                }
                Err(e) => {
                    self.cells[fi] = Cell::Null;
                    self.errors.push(RowError {
                        field: Some(field.name.clone()),
                        rule: "type-error",
                        constraint: None,
                        value: Some(s.to_string()),
                        message: format!("`{s}` in `{}` {e} ({})", field.name, type_name(&field.kind)),
                        first_line: None,
                    });
                }
            }
        }
        if !self.errors.is_empty() {
            return false;
        }
        // Keys last, and all-or-nothing: only a row that passes every check, keys included,
        // claims its keys, so the first *loaded* occurrence of a key wins.
        let pk_key = self.primary_key.is_some().then(|| self.key_of(text, &contract.schema.primary_key));
        let pk_probe = match (pk_key, &mut self.primary_key) {
            (Some(key), Some(index)) => Some(index.probe(key)),
            _ => None,
        };
        if let Some(Probe::Seen(first)) = pk_probe {
            let names: Vec<&str> =
                contract.schema.primary_key.iter().map(|&i| contract.schema.fields[i].name.as_str()).collect();
            let values: Vec<String> = contract.schema.primary_key.iter().map(|&i| self.cell_string(text, i)).collect();
            self.errors.push(RowError {
                field: Some(names.join(",")),
                rule: "primary-key",
                constraint: None,
                value: Some(values.join(",")),
                message: format!(
                    "duplicate primary key ({}) = ({}): first seen on line {first}; the first occurrence is kept",
                    names.join(", "),
                    values.join(", ")
                ),
                first_line: Some(first),
            });
            return false;
        }
        if self.has_unique {
            // Probes of other indexes do not move this one's slots, but a unique-field probe can
            // grow its own table: probe each once, claim only if the whole row passes.
            let mut unique_probes = Vec::new();
            for fi in 0..self.unique.len() {
                if self.unique[fi].is_none() || self.cells[fi] == Cell::Null {
                    continue;
                }
                let key = self.key_of(text, &[fi]);
                let probe = self.unique[fi].as_mut().expect("checked").probe(key);
                match probe {
                    Probe::Vacant { .. } => unique_probes.push((fi, probe)),
                    Probe::Seen(first) => {
                        let value = self.cell_string(text, fi);
                        let name = &contract.schema.fields[fi].name;
                        self.errors.push(RowError {
                            field: Some(name.clone()),
                            rule: "unique-error",
                            constraint: Some("unique"),
                            value: Some(value.clone()),
                            message: format!("`{name}` must be unique but `{value}` was first seen on line {first}"),
                            first_line: Some(first),
                        });
                    }
                }
            }
            if !self.errors.is_empty() {
                return false;
            }
            for (fi, probe) in unique_probes {
                if let Some(index) = &mut self.unique[fi] {
                    index.claim(probe, r.line);
                }
            }
        }
        if let (Some(probe), Some(index)) = (pk_probe, &mut self.primary_key) {
            index.claim(probe, r.line);
        }
        true
    }

    fn cell_str<'a>(&'a self, text: &'a str, cell: Cell) -> &'a str {
        match cell {
            Cell::Str { scratch: true, start, end } => &self.scratch[start as usize..end as usize],
            Cell::Str { scratch: false, start, end } => &text[start as usize..end as usize],
            _ => "",
        }
    }

    fn cell_string(&self, text: &str, fi: usize) -> String {
        match self.cells[fi] {
            c @ Cell::Str { .. } => self.cell_str(text, c).to_string(),
            Cell::Int(v) => v.to_string(),
            Cell::Year(v) => v.to_string(),
            Cell::Float(v) => v.to_string(),
            c @ Cell::Decimal(..) => c.decimal().to_string(),
            Cell::Bool(v) => v.to_string(),
            Cell::Date(v) => v.to_string(),
            Cell::Time(v) | Cell::Datetime(v) => v.to_string(),
            Cell::Null => String::new(),
        }
    }

    /// The key of `fields` in the row being checked.
    fn key_of(&self, text: &str, fields: &[usize]) -> Key {
        self.key_with(fields, |fi| {
            let c = self.cells[fi];
            (c, self.cell_str(text, c))
        })
    }

    /// The key of `fields`, given each field's cell and, for a string, its text.
    fn key_with<'t>(&self, fields: &[usize], cell: impl Fn(usize) -> (Cell, &'t str)) -> Key {
        if let Some(v) = int_key(fields, |fi| cell(fi).0) {
            return Key::Int(v);
        }
        let mut h = KeyHasher::new(&self.key_hash);
        for &fi in fields {
            let (c, s) = cell(fi);
            match c {
                Cell::Str { .. } => h.piece(s.as_bytes()),
                Cell::Int(v) | Cell::Time(v) | Cell::Datetime(v) => h.piece(&v.to_le_bytes()),
                Cell::Year(v) | Cell::Date(v) => h.piece(&v.to_le_bytes()),
                Cell::Float(v) => h.piece(&v.to_bits().to_le_bytes()),
                c @ Cell::Decimal(..) => h.piece(&c.decimal().to_le_bytes()),
                Cell::Bool(v) => h.piece(&[v as u8]),
                Cell::Null => h.piece(&[]),
            }
        }
        h.finish()
    }

    fn commit(&mut self, text: &str) {
        for (fi, column) in self.columns.iter_mut().enumerate() {
            column.extend(&self.cells[fi..=fi], &[0], text, &self.scratch);
        }
        self.rows_in_batch += 1;
        self.bytes_in_batch += text.len();
        self.counts.rows_valid += 1;
    }
}

/// The value of a key of one integer cell, which the key index holds as it is ([`Key::Int`]);
/// `None` for any other key, which is hashed with its bytes ([`Validator::key_with`]). (Which
/// contract keys are such keys: [`integer_key`].)
#[inline(always)]
fn int_key(fields: &[usize], cell: impl Fn(usize) -> Cell) -> Option<u64> {
    match fields {
        [fi] => match cell(*fi) {
            Cell::Int(v) => Some(v as u64),
            _ => None,
        },
        _ => None,
    }
}

/// A key of one integer field, which the key index holds as it is ([`Key::Int`]): the field and
/// its number syntax.
fn integer_key<'c>(
    schema: &'c crate::contract::Schema,
    key: &[usize],
) -> Option<(usize, &'c crate::contract::NumberSyntax)> {
    let &[fi] = key else { return None };
    match &schema.fields[fi].kind {
        FieldKind::Integer { number } => Some((fi, number)),
        _ => None,
    }
}

/// Keeps at most `max` errors of a row: the first `max - 1` and one that counts the rest.
fn cap_errors(errors: &mut Vec<RowError>, max: usize) {
    if errors.len() <= max {
        return;
    }
    let more = errors.len() - (max - 1);
    errors.truncate(max - 1);
    errors.push(RowError {
        field: None,
        rule: "too-many-errors",
        constraint: None,
        value: None,
        message: format!("… and {more} more errors on this row; fix the ones listed first"),
        first_line: None,
    });
}

/// A cell's text, a slice of `text` or, if it has doubled quotes, unescaped at the end of
/// `scratch`; and the [`Cell::Str`] that says where it is. Always inlined: the call, made
/// for every cell, cost 4 % of a run and stalled on its returned pair.
#[inline(always)]
fn cell_of<'a>(
    text: &'a str,
    span: FieldSpan,
    quote: u8,
    scratch: &'a mut String,
    unescaped: &mut Vec<u8>,
) -> (&'a str, Cell) {
    if span.escaped() {
        unescaped.clear();
        unescape_into(&text.as_bytes()[span.range()], quote, unescaped);
        let start = scratch.len();
        scratch.push_str(std::str::from_utf8(unescaped).expect("unescaping keeps UTF-8"));
        let cell = Cell::Str { scratch: true, start: start as u32, end: scratch.len() as u32 };
        (&scratch[start..], cell)
    } else {
        (&text[span.range()], Cell::Str { scratch: false, start: span.start() as u32, end: span.end() as u32 })
    }
}

/// Whether a cell's text `s` is a missing value: empty, when `missingValues` is `[""]`.
#[inline(always)]
fn is_missing(only_empty: bool, missing_values: &[String], s: &str) -> bool {
    if only_empty { s.is_empty() } else { missing_values.iter().any(|m| m == s) }
}

fn cell_text(s: &str, escaped: bool, quote: u8) -> String {
    if escaped {
        let mut tmp = Vec::with_capacity(s.len());
        unescape_into(s.as_bytes(), quote, &mut tmp);
        String::from_utf8_lossy(&tmp).into_owned()
    } else {
        s.to_string()
    }
}

fn type_name(kind: &FieldKind) -> String {
    match kind {
        FieldKind::String { format } => format!("string, format {format:?}").to_lowercase(),
        FieldKind::Integer { .. } => "integer".into(),
        FieldKind::Number { decimal: Some((p, s)), .. } => format!("number, decimal({p}, {s})"),
        FieldKind::Number { decimal: None, .. } => "number".into(),
        FieldKind::Boolean { .. } => "boolean".into(),
        FieldKind::Date { .. } => "date".into(),
        FieldKind::Time { .. } => "time".into(),
        FieldKind::Datetime { .. } => "datetime".into(),
        FieldKind::Year => "year".into(),
    }
}

/// Parses `s` into `out` (which stays as it was on an error). Each arm stores its own variant,
/// so that no whole cell is assembled on the stack and copied (see `check_row`). A date or
/// datetime equal in its date to the last one read of `last` takes that day number.
#[inline]
fn parse_cell_into(
    kind: &FieldKind,
    s: &str,
    as_str: Cell,
    out: &mut Cell,
    last: &mut cells::LastDate,
) -> Result<(), CellError> {
    match kind {
        FieldKind::String { format } => {
            if *format != StringFormat::Default {
                cells::check_string_format(s, *format)?;
            }
            *out = as_str;
        }
        FieldKind::Integer { number } => *out = Cell::Int(cells::parse_integer(s, number)?),
        FieldKind::Number { number, decimal: Some((p, sc)) } => {
            *out = Cell::from_decimal(cells::parse_decimal(s, number, *p, *sc)?)
        }
        FieldKind::Number { number, decimal: None } => *out = Cell::Float(cells::parse_float(s, number)?),
        FieldKind::Boolean { true_values, false_values } => {
            *out = Cell::Bool(cells::parse_boolean(s, true_values, false_values)?)
        }
        FieldKind::Date { format } => *out = Cell::Date(cells::parse_date_after(s, format, last)?),
        FieldKind::Time { format } => *out = Cell::Time(cells::parse_time(s, format)?),
        FieldKind::Datetime { format } => *out = Cell::Datetime(cells::parse_datetime_after(s, format, last)?),
        FieldKind::Year => *out = Cell::Year(cells::parse_year(s)?),
    }
    Ok(())
}

/// Whether [`check_constraints`] can fail for `field`: it has an enum, bounds, lengths or a
/// pattern (`required` and `unique` are checked elsewhere).
fn has_value_checks(field: &crate::contract::Field) -> bool {
    let c = &field.constraints;
    c.enumeration.is_some()
        || c.minimum.is_some()
        || c.maximum.is_some()
        || c.min_length.is_some()
        || c.max_length.is_some()
        || c.pattern.is_some()
}

/// What a validator keeps per field to check its values.
struct FieldChecks {
    /// Whether [`check_constraints`] can fail for the field ([`has_value_checks`]).
    any: bool,
    /// Its `pattern`, this validator's own copy. A regex shared by the validators of many files
    /// (each on a thread of its own) hands out its search state through a slow, locked path to
    /// every thread but the first: 1 % of a run of many small files.
    pattern: Option<regex::Regex>,
    /// A string enum whose members are all at most 8 bytes long (currency codes, statuses), as
    /// words and lengths: a cell is looked up with integer comparisons, not a call to compare
    /// bytes per member (3 % of a run with one such enum).
    short_enum: Option<Vec<(u64, usize)>>,
}

impl FieldChecks {
    fn new(field: &crate::contract::Field) -> Self {
        let short_enum = match (&field.kind, &field.constraints.enumeration) {
            (FieldKind::String { .. }, Some(list)) => list
                .iter()
                .map(|v| match v {
                    Value::Str(m) if m.len() <= 8 => Some((word(m.as_bytes()), m.len())),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        FieldChecks { any: has_value_checks(field), pattern: field.constraints.pattern.clone(), short_enum }
    }
}

/// Up to 8 bytes as one little-endian word, zero-padded.
#[inline]
fn word(b: &[u8]) -> u64 {
    b.iter().enumerate().fold(0, |w, (i, &x)| w | (x as u64) << (8 * i))
}

/// `checks` are the field's own, as the validator holds them.
fn check_constraints(field: &crate::contract::Field, checks: &FieldChecks, cell: &Cell, s: &str) -> Option<RowError> {
    let c = &field.constraints;
    let fail = |constraint: &'static str, message: String| {
        Some(RowError {
            field: Some(field.name.clone()),
            rule: "constraint-error",
            constraint: Some(constraint),
            value: Some(s.to_string()),
            message,
            first_line: None,
        })
    };
    if let Some(list) = &c.enumeration
        && !match &checks.short_enum {
            Some(words) => s.len() <= 8 && words.contains(&(word(s.as_bytes()), s.len())),
            None => list.iter().any(|v| match (cell, v) {
                // Equality, not order: unequal lengths answer without comparing bytes.
                (Cell::Str { .. }, Value::Str(member)) => member == s,
                _ => cell.cmp_value(s, v) == Some(Ordering::Equal),
            }),
        }
    {
        let shown: Vec<String> = list.iter().map(|v| show(v, field)).collect();
        return fail("enum", format!("`{s}` in `{}` is not one of: {}", field.name, shown.join(", ")));
    }
    if let Some(min) = &c.minimum
        && cell.cmp_value(s, min) == Some(Ordering::Less)
    {
        return fail("minimum", format!("`{s}` in `{}` is below the minimum {}", field.name, show(min, field)));
    }
    if let Some(max) = &c.maximum
        && cell.cmp_value(s, max) == Some(Ordering::Greater)
    {
        return fail("maximum", format!("`{s}` in `{}` is above the maximum {}", field.name, show(max, field)));
    }
    if c.min_length.is_some() || c.max_length.is_some() {
        let n = if s.is_ascii() { s.len() } else { s.chars().count() };
        if let Some(min) = c.min_length.filter(|m| n < *m) {
            return fail(
                "minLength",
                format!("`{s}` in `{}` has {n} characters, fewer than minLength {min}", field.name),
            );
        }
        if let Some(max) = c.max_length.filter(|m| n > *m) {
            return fail(
                "maxLength",
                format!("`{s}` in `{}` has {n} characters, more than maxLength {max}", field.name),
            );
        }
    }
    if let Some(re) = &checks.pattern
        && !re.is_match(s)
    {
        let src = c.pattern_src.as_deref().unwrap_or("");
        return fail("pattern", format!("`{s}` in `{}` does not match the pattern `{src}`", field.name));
    }
    None
}

/// A bound or enum member as a person would write it.
fn show(v: &Value, field: &crate::contract::Field) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Decimal(u) => {
            let scale = match field.kind {
                FieldKind::Number { decimal: Some((_, s)), .. } => s.max(0) as u32,
                _ => 0,
            };
            if scale == 0 {
                u.to_string()
            } else {
                let p = 10i128.pow(scale);
                let sign = if *u < 0 { "-" } else { "" };
                format!("{sign}{}.{:0width$}", (u / p).abs(), (u % p).abs(), width = scale as usize)
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Date(d) => chrono::DateTime::from_timestamp(*d as i64 * 86_400, 0)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_else(|| d.to_string()),
        Value::Time(t) => chrono::NaiveTime::from_num_seconds_from_midnight_opt(
            (t / 1_000_000) as u32,
            ((t % 1_000_000) * 1000) as u32,
        )
        .map(|x| x.to_string())
        .unwrap_or_else(|| t.to_string()),
        Value::Datetime(t) => {
            chrono::DateTime::from_timestamp_micros(*t).map(|x| x.to_rfc3339()).unwrap_or_else(|| t.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tokenizer::Tokenizer;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};

    /// The records of `csv` (at most `max_fields` cells each), its header bound to `v`.
    fn bound(v: &mut Validator, csv: &str, max_fields: usize) -> Records {
        let mut tok = Tokenizer::new(b',', b'"');
        tok.set_max_fields(max_fields);
        let mut recs = Records::default();
        tok.parse(csv.as_bytes(), true, &mut recs);
        let header = recs.records.remove(0);
        let names: Vec<String> = recs.fields_of(&header).iter().map(|f| csv[f.range()].to_string()).collect();
        v.bind_header(&names).expect("header binds");
        recs
    }

    /// Validates `csv` (header first) against a contract with the given `[schema]` body.
    fn run(schema: &str, csv: &str) -> (Counts, Vec<RejectedRow>) {
        let (counts, rejects, _) = run_with(schema, csv, &crate::Limits::default());
        (counts, rejects)
    }

    fn run_with(schema: &str, csv: &str, limits: &crate::Limits) -> (Counts, Vec<RejectedRow>, Vec<RecordBatch>) {
        run_for(schema, csv, limits, None)
    }

    /// [`run_with`], also checking what `warehouse` can store.
    fn run_for(
        schema: &str,
        csv: &str,
        limits: &crate::Limits,
        warehouse: Option<limits::WarehouseLimits>,
    ) -> (Counts, Vec<RejectedRow>, Vec<RecordBatch>) {
        let toml = format!("name = \"t\"\n[load]\nmax_rejected_ratio = 1.0\n[schema]\n{schema}");
        let contract = crate::contract::load_str(&toml, "t.toml", std::path::Path::new(".")).expect("contract");
        let mut v = Validator::new(Arc::new(contract));
        v.set_limits(limits);
        v.set_warehouse_limits(warehouse);
        let recs = bound(&mut v, csv, usize::MAX);
        let (mut batches, mut rejects) = (Vec::new(), Vec::new());
        v.push_records(csv.as_bytes(), &recs, &mut batches, &mut rejects);
        batches.extend(v.finish());
        (v.counts(), rejects, batches)
    }

    #[test]
    fn a_million_extra_cells_are_one_error_with_their_count() {
        let schema = r#"fields = [{ name = "a", type = "integer" }, { name = "b", type = "string" }]"#;
        let csv = format!("a,b\n1,x,y{}\n2,z,w\n", ",".repeat(1_000_000));
        let (counts, rejects) = run(schema, &csv);
        assert_eq!(counts, Counts { rows_read: 2, rows_valid: 0, rows_rejected: 2 });
        assert_eq!(rejects[0].errors.len(), 1);
        let e = &rejects[0].errors[0];
        assert_eq!((e.rule, e.value.as_deref()), ("extra-cell", Some("y")));
        assert!(e.message.contains("cells 3 to 1000003 (1000001 cells) have no column"), "{}", e.message);
        assert!(rejects[1].errors[0].message.contains("cell 3 has no column"), "{}", rejects[1].errors[0].message);
    }

    #[test]
    fn a_row_keeps_at_most_max_row_errors() {
        let fields: Vec<String> = (0..10).map(|i| format!("{{ name = \"f{i}\", type = \"integer\" }}")).collect();
        let schema = format!("fields = [{}]", fields.join(", "));
        let header: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let csv = format!("{}\n{}\n", header.join(","), ["x"; 10].join(","));
        let limits = crate::Limits { max_row_errors: 4, ..crate::Limits::default() };
        let (_, rejects, _) = run_with(&schema, &csv, &limits);
        let rules: Vec<_> = rejects[0].errors.iter().map(|e| e.rule).collect();
        assert_eq!(rules, vec!["type-error", "type-error", "type-error", "too-many-errors"]);
        assert!(rejects[0].errors[3].message.contains("… and 7 more errors"), "{}", rejects[0].errors[3].message);
    }

    #[test]
    fn a_batch_is_handed_on_once_it_holds_batch_bytes_of_text() {
        // With 8 Ki rows a batch, rows of long text would pass 2 GiB, past the 32-bit offsets
        // of an Arrow string column: a batch goes once it holds `batch_bytes` instead.
        let schema = r#"fields = [{ name = "id", type = "integer" }, { name = "s", type = "string" }]"#;
        let mut csv = String::from("id,s\n");
        for i in 0..100 {
            csv.push_str(&format!("{i},{}\n", "x".repeat(1_000)));
        }
        let limits = crate::Limits { batch_bytes: 10_000, ..crate::Limits::default() };
        let (counts, _, batches) = run_with(schema, &csv, &limits);
        assert_eq!(counts.rows_valid, 100);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
        assert!(batches.len() >= 10, "{} batches", batches.len());
        for b in &batches {
            let text =
                b.column(1).as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8").value_data().len();
            assert!(text <= 10_000 + 1_000, "a batch of {text} bytes of text");
        }
    }

    const ID_UNIQUE_EMAIL: &str = r#"primaryKey = ["id"]
fields = [{ name = "id", type = "integer" }, { name = "email", type = "string", constraints = { unique = true } }]
"#;

    #[test]
    fn a_row_rejected_by_unique_does_not_claim_its_primary_key() {
        // Regression: `2,a` failed `unique` after its key had been recorded, so the valid
        // `2,b` was then rejected as a duplicate of a row that was never loaded.
        let (counts, rejects) = run(ID_UNIQUE_EMAIL, "id,email\n1,a\n2,a\n2,b\n");
        assert_eq!((counts.rows_valid, counts.rows_rejected), (2, 1));
        assert_eq!(rejects[0].line, 3);
        assert_eq!(rejects[0].errors[0].rule, "unique-error");
        assert_eq!(rejects[0].errors[0].first_line, Some(2));
    }

    /// An integer key is parsed once, KEY_AHEAD rows ahead (to fetch its slot), and that value
    /// is the row's key and cell: over many rows, with quoted, missing, malformed and
    /// duplicated keys around, every row keeps its own key.
    #[test]
    fn keys_parsed_ahead_stay_with_their_own_rows() {
        let mut csv = String::from("id,v\n");
        let (mut ids, mut dups) = (Vec::new(), 0);
        for i in 0..1000u64 {
            let id = i * 7 + 3;
            match i % 97 {
                // A key seen 5, 8 and 9 rows before: a duplicate.
                10 | 40 | 70 => {
                    dups += 1;
                    csv.push_str(&format!("{},dup\n", ids[ids.len() - [5, 8, 9][(i % 3) as usize]]));
                }
                20 => csv.push_str(&format!("\"{id}\",quoted\n")),
                30 => csv.push_str(",missing\n"),
                50 => csv.push_str("x1,not a number\n"),
                60 => csv.push_str(&format!("{id},\"a\"b\n")),
                _ => csv.push_str(&format!("{id},v\n")),
            }
            if !matches!(i % 97, 10 | 30 | 40 | 50 | 60 | 70) {
                ids.push(id);
            }
        }
        let schema = "primaryKey = [\"id\"]\nfields = [{ name = \"id\", type = \"integer\" }, { name = \"v\", type = \"string\" }]";
        let (counts, rejects, batches) = run_with(schema, &csv, &crate::Limits::default());
        let rules: Vec<&str> = rejects.iter().map(|r| r.errors[0].rule).collect();
        assert_eq!(rules.iter().filter(|&&r| r == "primary-key").count(), dups, "{rules:?}");
        assert_eq!(counts.rows_valid as usize, ids.len());
        let loaded: Vec<u64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .map(|v| v as u64)
            .collect();
        assert_eq!(loaded, ids, "each loaded row has its own key");
    }

    #[test]
    fn duplicate_primary_key_names_the_first_line() {
        let (counts, rejects) = run(ID_UNIQUE_EMAIL, "id,email\n1,a\n1,b\n");
        assert_eq!(counts, Counts { rows_read: 2, rows_valid: 1, rows_rejected: 1 });
        let e = &rejects[0].errors[0];
        assert_eq!((e.rule, e.first_line, e.value.as_deref()), ("primary-key", Some(2), Some("1")));
    }

    #[test]
    fn empty_value_is_not_a_missing_column() {
        let schema = r#"fields = [{ name = "a", type = "integer", constraints = { required = true } }, { name = "b", type = "string" }]"#;
        let (counts, rejects) = run(schema, "a,b\n1,\n2\n,x\n");
        assert_eq!(counts.rows_valid, 1);
        let rules: Vec<_> = rejects.iter().map(|r| (r.line, r.errors[0].rule, r.errors[0].constraint)).collect();
        assert_eq!(rules, vec![(3, "missing-cell", None), (4, "constraint-error", Some("required"))]);
    }

    #[test]
    fn leading_zeros_in_a_string_code_are_kept() {
        let schema = r#"fields = [{ name = "code", type = "string" }, { name = "n", type = "integer" }]"#;
        let (counts, _) = run(schema, "code,n\n004,004\n");
        assert_eq!(counts.rows_valid, 1);
    }

    #[test]
    fn a_string_enum_admits_its_members_and_nothing_else_short_members_or_long() {
        // `s` has members of at most 8 bytes (looked up as words), `l` one longer member.
        let schema = r#"fields = [
          { name = "s", type = "string", constraints = { enum = ["USD", "EUR", "EURO1234", "x", "é"] } },
          { name = "l", type = "string", constraints = { enum = ["LONGER-THAN-8", "B"] } },
        ]"#;
        let members = ["USD", "EUR", "EURO1234", "x", "é"];
        let others = ["US", "USDX", "usd", "EURO12345", "EURO123", "X", "e", "\"x\"\"\"", " x", "x\0", "EUR\0"];
        let mut csv = String::from("s,l\n");
        for m in members {
            csv.push_str(&format!("{m},B\n{m},LONGER-THAN-8\n"));
        }
        for o in others {
            csv.push_str(&format!("{o},B\nx,{o}\n"));
        }
        csv.push_str("x,LONGER-THAN-9\nx,b\n");
        let (counts, rejects) = run(schema, &csv);
        assert_eq!(counts.rows_valid, 2 * members.len() as u64);
        assert_eq!(counts.rows_rejected, 2 * others.len() as u64 + 2);
        assert!(rejects.iter().all(|r| r.errors.len() == 1 && r.errors[0].constraint == Some("enum")));
    }

    #[test]
    fn the_key_indexes_are_sized_for_the_rows_expected_within_their_budget() {
        let toml = "name = \"t\"\n[schema]\nprimaryKey = [\"id\"]\nfields = [\n\
                    { name = \"id\", type = \"integer\" },\n\
                    { name = \"u\", type = \"string\", constraints = { unique = true } },\n]\n";
        let contract = crate::contract::load_str(toml, "t.toml", std::path::Path::new(".")).expect("contract");
        let mut v = Validator::new(Arc::new(contract));
        let limits = crate::Limits { key_index_bytes: 8 << 20, ..crate::Limits::default() };
        v.set_limits(&limits);
        v.expect_rows(50_000);
        let held = |v: &Validator| {
            (v.primary_key.as_ref().unwrap().memory_bytes(), v.unique[1].as_ref().unwrap().memory_bytes())
        };
        let (pk, u) = held(&v);
        assert!((12 * 50_000..12 * 65_000).contains(&pk), "{pk} bytes for 50,000 integer keys");
        assert!((12 * 50_000..12 * 65_000).contains(&u), "{u} bytes for 50,000 text keys");
        // Far more rows than the budget holds: each index gets at most its share of it (4 MiB),
        // a text key's table a quarter of it (its bytes need the rest).
        let mut v = Validator::new(v.contract.clone());
        v.set_limits(&limits);
        v.expect_rows(usize::MAX / 64);
        let (pk, u) = held(&v);
        assert!(pk <= 4 << 20 && pk > 2 << 20, "{pk} bytes, 4 MiB");
        assert!(u <= 1 << 20 && u > 1 << 19, "{u} bytes, a quarter of 4 MiB");
    }

    // The row checks: one error per failing field, in field order, the constraint before the
    // warehouse limit; fields with no constraint on their value skip the constraint checks, and
    // each parsed cell is written in place.

    /// One field of each kind of check, then two fields with no constraints on their value.
    const EVERY_CHECK: &str = r#"fields = [
      { name = "a", type = "integer" },
      { name = "b", type = "string", constraints = { required = true } },
      { name = "c", type = "string", constraints = { enum = ["USD", "EUR"] } },
      { name = "d", type = "integer", constraints = { minimum = 1 } },
      { name = "e", type = "integer", constraints = { maximum = 20 } },
      { name = "f", type = "string", constraints = { minLength = 3 } },
      { name = "g", type = "string", constraints = { maxLength = 2 } },
      { name = "h", type = "string", constraints = { pattern = "[a-z]+" } },
      { name = "i", type = "number" },
      { name = "j", type = "integer" },
    ]
    "#;

    #[test]
    fn a_row_failing_every_check_gets_one_error_per_field_in_field_order() {
        let csv = "a,b,c,d,e,f,g,h,i,j\n\
                   x,,GBP,0,21,ab,abc,A1,NaN,7\n\
                   1,b,EUR,1,20,abc,ab,az,2.5,-8\n";
        let (counts, rejects, batches) =
            run_for(EVERY_CHECK, csv, &crate::Limits::default(), Some(limits::WarehouseLimits::redshift()));
        assert_eq!(counts, Counts { rows_read: 2, rows_valid: 1, rows_rejected: 1 });
        // (field, rule, constraint, value) of each error.
        let got: Vec<[Option<&str>; 4]> = rejects[0]
            .errors
            .iter()
            .map(|e| [e.field.as_deref(), Some(e.rule), e.constraint, e.value.as_deref()])
            .collect();
        assert_eq!(
            got,
            vec![
                [Some("a"), Some("type-error"), None, Some("x")],
                [Some("b"), Some("constraint-error"), Some("required"), Some("")],
                [Some("c"), Some("constraint-error"), Some("enum"), Some("GBP")],
                [Some("d"), Some("constraint-error"), Some("minimum"), Some("0")],
                [Some("e"), Some("constraint-error"), Some("maximum"), Some("21")],
                [Some("f"), Some("constraint-error"), Some("minLength"), Some("ab")],
                [Some("g"), Some("constraint-error"), Some("maxLength"), Some("abc")],
                [Some("h"), Some("constraint-error"), Some("pattern"), Some("A1")],
                // No constraint on `i`'s value, but Redshift holds no NaN.
                [Some("i"), Some("constraint-error"), Some("warehouse"), Some("NaN")],
            ]
        );
        assert_eq!(rejects[0].errors[2].message, "`GBP` in `c` is not one of: USD, EUR");
        // The valid row's values, typed: a cell parsed after a failing row is its own.
        let b = &batches[0];
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 1);
        assert_eq!(b.column(2).as_string::<i32>().value(0), "EUR");
        assert_eq!(b.column(8).as_primitive::<Float64Type>().value(0), 2.5);
        assert_eq!(b.column(9).as_primitive::<Int64Type>().value(0), -8);
    }

    /// A contract with a check of every kind, keys of both kinds, a missing-value list, an
    /// optional field absent from the file and a column the contract does not name.
    const BOTH_PATHS: &str = r#"name = "t"
[load]
max_rejected_ratio = 1.0
extra_columns = "ignore"
[schema]
primaryKey = ["id", "sku"]
missingValues = ["", "NA"]
fields = [
  { name = "id", type = "integer", constraints = { required = true } },
  { name = "sku", type = "string", constraints = { required = true, pattern = "S-[0-9]+" } },
  { name = "qty", type = "integer", constraints = { minimum = 1, maximum = 20 } },
  { name = "price", type = "number", decimal = [8, 2] },
  { name = "cur", type = "string", constraints = { enum = ["USD", "EUR", "GBP"] } },
  { name = "ts", type = "datetime" },
  { name = "code", type = "string", constraints = { unique = true, maxLength = 6 } },
  { name = "day", type = "date" },
  { name = "flag", type = "boolean" },
  { name = "ratio", type = "number" },
  { name = "absent", type = "string" },
]
"#;

    /// Both paths over `csv`: the column-at-a-time one (`push_records` on UTF-8) and the
    /// row-at-a-time one (`push_rows`, the reference), with batches of `batch_rows`.
    fn both_paths(toml: &str, csv: &str, batch_rows: usize) -> [(Counts, Vec<RejectedRow>, Vec<RecordBatch>); 2] {
        let contract = crate::contract::load_str(toml, "t.toml", std::path::Path::new(".")).expect("contract");
        let contract = Arc::new(contract);
        [true, false].map(|columns| {
            let mut v = Validator::with_batch_rows(contract.clone(), batch_rows);
            v.set_warehouse_limits(Some(limits::WarehouseLimits::redshift()));
            let recs = bound(&mut v, csv, 13);
            let (mut batches, mut rejects) = (Vec::new(), Vec::new());
            if columns {
                v.push_records(csv.as_bytes(), &recs, &mut batches, &mut rejects);
            } else {
                v.push_rows(&contract, csv.as_bytes(), &recs, &mut batches, &mut rejects);
            }
            batches.extend(v.finish());
            (v.counts(), rejects, batches)
        })
    }

    /// Rows of `BOTH_PATHS`'s file, from a seed: mostly valid, with cells and rows of every
    /// kind of failure (and keys that repeat) mixed in.
    fn hostile_rows(seed: u64, rows: usize) -> String {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let pick = |n: u64, ok: &[&str], bad: &[&str], next: &mut dyn FnMut(u64) -> u64| -> String {
            let i = next(n) as usize;
            if i < bad.len() { bad[i].to_string() } else { ok[i % ok.len()].to_string() }
        };
        let mut csv = String::from("id,sku,qty,price,cur,ts,code,day,flag,ratio,extra\n");
        for _ in 0..rows {
            let id = match next(40) {
                0 => "x1".to_string(),
                1 => "".to_string(),
                2 => "NA".to_string(),
                3 => "99999999999999999999".into(),
                _ => next(rows as u64 * 2).to_string(),
            };
            let sku = pick(150, &["S-1", "S-22", "\"S-3\"", "S-4"], &["T-1", "", "\"S-\"\"5\"\"\""], &mut next);
            let qty = pick(150, &["1", "20", "7", ""], &["0", "21", "x", "1.5"], &mut next);
            let price = pick(150, &["1.25", "99.99", "-3", "NA"], &["1.234", "1e3", "999999999"], &mut next);
            let cur = pick(150, &["USD", "EUR", "\"GBP\"", ""], &["JPY", "usd", "US"], &mut next);
            let ts = pick(
                150,
                &["2024-01-01T00:00:00Z", "2024-02-29 12:30:00"],
                &["2023-02-29T00:00:00Z", "soon"],
                &mut next,
            );
            let code = match next(30) {
                0 => "toolong1".to_string(),
                1 => "\"c,\"\"q\"".to_string(),
                2..=5 => format!("c{}", next(50)),
                6..=20 => String::new(),
                _ => format!("u{}", next(100_000)),
            };
            let day = pick(150, &["2024-03-01", "", "1999-12-31"], &["2024-13-01", "yesterday"], &mut next);
            let flag = pick(150, &["true", "false", "1", "0", ""], &["maybe"], &mut next);
            let ratio = pick(150, &["0.5", "-1e-3", "3"], &["NaN", "inf", "half"], &mut next);
            let extra = pick(10, &["é", "\"a\nb\"", ""], &[], &mut next);
            let mut cells = vec![id, sku, qty, price, cur, ts, code, day, flag, ratio, extra];
            match next(60) {
                0 => cells.truncate(1 + next(10) as usize),
                1 => cells.push("more".into()),
                2 => cells.iter_mut().for_each(String::clear),
                3 => cells[1] = "S-\"7".into(),
                4 => cells[4] = "\"EUR\"x".into(),
                _ => {}
            }
            csv.push_str(&cells.join(","));
            csv.push_str(if next(5) == 0 { "\r\n" } else { "\n" });
        }
        csv
    }

    #[test]
    fn the_column_path_gives_the_row_paths_verdicts_batches_and_errors() {
        // Blocks of BLOCK_ROWS rows, batches that end inside them, rows of every failure; with a
        // `unique` field and without one (the primary key is then claimed as it is probed).
        let no_unique = BOTH_PATHS.replace("unique = true, ", "");
        for seed in 1..=12 {
            let csv = hostile_rows(seed, 2 * block::BLOCK_ROWS + 345);
            let batch_rows = [7, 100, block::BLOCK_ROWS, BATCH_ROWS][seed as usize % 4];
            let toml = if seed % 3 == 0 { no_unique.as_str() } else { BOTH_PATHS };
            let [(c_counts, c_rejects, c_batches), (r_counts, r_rejects, r_batches)] =
                both_paths(toml, &csv, batch_rows);
            assert_eq!(c_counts, r_counts, "seed {seed}");
            assert!(r_counts.rows_valid > 1000 && r_counts.rows_rejected > 200, "seed {seed}: {r_counts:?}");
            assert_eq!(c_rejects, r_rejects, "seed {seed}");
            assert_eq!(c_batches.len(), r_batches.len(), "seed {seed}");
            for (i, (c, r)) in c_batches.iter().zip(&r_batches).enumerate() {
                assert_eq!(c, r, "seed {seed}, batch {i}");
            }
        }
    }

    #[test]
    fn missing_cells_of_optional_fields_are_nulls_in_every_column_type() {
        // The middle row has only its string: every other column holds a null there, between
        // two values, on both paths.
        let toml = r#"name = "t"
[schema]
fields = [
  { name = "k", type = "string" },
  { name = "i", type = "integer" },
  { name = "d", type = "number", decimal = [12, 2] },
  { name = "f", type = "number" },
  { name = "b", type = "boolean" },
  { name = "dt", type = "date" },
  { name = "t", type = "time" },
  { name = "ts", type = "datetime" },
  { name = "y", type = "year" },
]
"#;
        let row = "1,2.50,0.5,true,2024-01-02,10:00:00,2024-01-02T10:00:00Z,2024";
        let csv = format!("k,i,d,f,b,dt,t,ts,y\nr1,{row}\nr2,,,,,,,,\nr3,{row}\n");
        for (counts, _, batches) in both_paths(toml, &csv, 100) {
            assert_eq!(counts, Counts { rows_read: 3, rows_valid: 3, rows_rejected: 0 });
            let batch = &batches[0];
            for (name, column) in batch.schema().fields().iter().zip(batch.columns()).skip(1) {
                let nulls: Vec<bool> = (0..3).map(|r| column.is_null(r)).collect();
                assert_eq!(nulls, [false, true, false], "{}", name.name());
            }
            assert_eq!(batch.column(1).as_primitive::<Int64Type>().value(2), 1);
        }
    }

    #[test]
    fn a_blank_row_is_rejected_on_both_paths_even_with_no_required_field() {
        let toml = "name = \"t\"\n[load]\nmax_rejected_ratio = 1.0\n[schema]\nfields = [\n  { name = \"a\", type = \"string\" },\n  { name = \"b\", type = \"integer\" },\n]\n";
        let csv = "a,b\nx,1\n,\n\"\",\n,2\n";
        for (counts, rejects, _) in both_paths(toml, csv, 100) {
            assert_eq!(counts, Counts { rows_read: 4, rows_valid: 2, rows_rejected: 2 });
            let rules: Vec<(u64, &str)> = rejects.iter().map(|r| (r.line, r.errors[0].rule)).collect();
            assert_eq!(rules, [(3, "blank-row"), (4, "blank-row")]);
        }
    }

    #[test]
    fn a_contract_of_thousands_of_fields_gets_blocks_of_few_rows() {
        // 3,000 fields and 40 rows: blocks of 1,024 rows would hold 3 million cells (70 MB).
        let names: Vec<String> = (0..3000).map(|i| format!("f{i}")).collect();
        let fields: Vec<String> = names.iter().map(|n| format!("{{ name = \"{n}\", type = \"integer\" }}")).collect();
        let toml = format!("name = \"t\"\n[schema]\nfields = [{}]\n", fields.join(", "));
        let contract = crate::contract::load_str(&toml, "t.toml", std::path::Path::new(".")).expect("contract");
        let mut v = Validator::new(Arc::new(contract));
        v.bind_header(&names).expect("header binds");
        let row = vec!["7"; 3000].join(",");
        let csv = format!("{}\n", vec![row; 40].join("\n"));
        let mut tok = Tokenizer::new(b',', b'"');
        tok.set_max_fields(3001);
        let mut recs = Records::default();
        tok.parse(csv.as_bytes(), true, &mut recs);
        let (mut batches, mut rejects) = (Vec::new(), Vec::new());
        v.push_records(csv.as_bytes(), &recs, &mut batches, &mut rejects);
        batches.extend(v.finish());
        assert_eq!(v.counts(), Counts { rows_read: 40, rows_valid: 40, rows_rejected: 0 });
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 40);
        assert!(v.block.cells.len() <= 16 * 1024, "{} cells in a block", v.block.cells.len());
    }

    #[test]
    fn a_constraint_error_comes_before_the_warehouse_limit_of_the_same_cell() {
        // `s` fails minLength and holds a NUL, which Redshift cannot store: the field gets one
        // error, the constraint's; `t`, with no constraint, gets the warehouse's.
        let schema = r#"fields = [
      { name = "s", type = "string", constraints = { minLength = 5 } },
      { name = "t", type = "string" },
    ]
    "#;
        let csv = "s,t\na\u{0}b,c\u{0}d\nabcde,ok\n";
        let (counts, rejects, batches) =
            run_for(schema, csv, &crate::Limits::default(), Some(limits::WarehouseLimits::redshift()));
        assert_eq!((counts.rows_valid, counts.rows_rejected), (1, 1));
        let got: Vec<(Option<&str>, Option<&str>)> =
            rejects[0].errors.iter().map(|e| (e.field.as_deref(), e.constraint)).collect();
        assert_eq!(got, vec![(Some("s"), Some("minLength")), (Some("t"), Some("warehouse"))]);
        assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "abcde");
        assert!(batches[0].column(1).is_valid(0));
    }
}
