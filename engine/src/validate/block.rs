//! The column-at-a-time path: the rows of a block are checked one field at a time, then claim
//! their keys and are committed in file order.
//!
//! Why: checked a row at a time, every cell of every row goes through the dispatch on its
//! field's type, its missing-value test and its constraints in turn; a field at a time, each
//! field's parser is chosen once per block and its loop stays short. The cells of a block
//! ([`BLOCK_ROWS`] rows) stay in the core's cache between being parsed and being committed.
//!
//! One set of rules: this path only takes the rows it can decide without a message, the ones
//! that pass. A row goes to [`Validator::check_row`], in its place in file order, if it is
//! malformed, has more or fewer cells than the header, is blank, has a cell that is missing but
//! required, does not parse or breaks a constraint or a warehouse limit, or has a key already
//! seen. That function gives the verdict and the errors of those rows, as it does for a chunk
//! that is not valid UTF-8.

use super::{
    Contract, KEY_AHEAD, Validator, cell_of, check_constraints, int_key, integer_key, is_missing, parse_cell_into,
};
use crate::cells::{self, CellError};
use crate::contract::{Field, FieldKind, StringFormat};
use crate::decode::tokenizer::{RecordSpan, Records};
use crate::validate::columns::Cell;
use crate::validate::keys::{Key, Probe};
use crate::validate::report::RejectedRow;
use arrow::array::RecordBatch;

/// Rows per block, at most: a block's cells (24 bytes each, 245 KB for ten fields) stay in the
/// core's cache from their parse to their commit.
pub const BLOCK_ROWS: usize = 1024;

/// Cells per block, at most: a contract of thousands of fields gets blocks of fewer rows, not
/// blocks of hundreds of megabytes.
const BLOCK_CELLS: usize = 16 * 1024;

/// The rows of a block for a contract of `fields` fields.
pub fn block_rows(fields: usize) -> usize {
    (BLOCK_CELLS / fields.max(1)).clamp(1, BLOCK_ROWS)
}

/// The buffers of one block, reused from block to block.
#[derive(Default)]
pub(super) struct Block {
    /// The block's cells, field by field: field `fi`'s are `cells[fi * n..(fi + 1) * n]`. A row
    /// that does not pass keeps whatever an earlier block left in its cells: they are never read.
    pub(super) cells: Vec<Cell>,
    /// Per row: it has passed every check so far.
    ok: Vec<bool>,
    /// The unescaped text of the block's quoted cells with doubled quotes
    /// (`Cell::Str { scratch: true, .. }`).
    scratch: String,
    unescaped: Vec<u8>,
    /// Rows that passed and claimed their keys, to be committed.
    pending: Vec<u32>,
}

impl Block {
    /// The text of a string cell of this block (`""` for other cells).
    fn str_of<'a>(&'a self, cell: Cell, text: &'a str) -> &'a str {
        match cell {
            Cell::Str { scratch: true, start, end } => &self.scratch[start as usize..end as usize],
            Cell::Str { scratch: false, start, end } => &text[start as usize..end as usize],
            _ => "",
        }
    }
}

impl Validator {
    /// Validates `rows` (at most [`block_rows`], spans into `text`, which is their chunk).
    pub(super) fn push_block(
        &mut self,
        contract: &Contract,
        text: &str,
        recs: &Records,
        rows: &[RecordSpan],
        batches: &mut Vec<RecordBatch>,
        rejects: &mut Vec<RejectedRow>,
    ) {
        let mut b = std::mem::take(&mut self.block);
        self.check_block(contract, text, recs, rows, &mut b);
        let n = rows.len();
        let schema = &contract.schema;
        let pk_int = integer_key(schema, &schema.primary_key).filter(|_| self.primary_key.is_some()).map(|(fi, _)| fi);
        for (j, r) in rows.iter().enumerate() {
            self.counts.rows_read += 1;
            self.row_number += 1;
            // The slot of the key KEY_AHEAD rows on is fetched while this row is claimed: one
            // row alone is too short to hide a miss in a table of megabytes.
            if let (Some(fi), Some(index), Some(true)) = (pk_int, &self.primary_key, b.ok.get(j + KEY_AHEAD))
                && let Cell::Int(v) = b.cells[fi * n + j + KEY_AHEAD]
            {
                index.prefetch(&Key::Int(v as u64));
            }
            if b.ok[j] && self.claim_keys(contract, text, &b, j, r.line) {
                b.pending.push(j as u32);
                self.rows_in_batch += 1;
                self.bytes_in_batch += r.raw().len();
                self.counts.rows_valid += 1;
                if self.batch_full() {
                    self.commit_block(&mut b, text);
                    batches.push(self.take_batch());
                }
                continue;
            }
            // The rows before this one are committed first: rows stay in file order.
            self.commit_block(&mut b, text);
            self.push_row(contract, &text[r.raw()], recs, r, batches, rejects);
        }
        self.commit_block(&mut b, text);
        self.block = b;
    }

    /// Parses and checks the cells of `rows` field by field into `b.cells`; `b.ok` says which
    /// rows passed.
    fn check_block(&self, contract: &Contract, text: &str, recs: &Records, rows: &[RecordSpan], b: &mut Block) {
        let binding = self.binding.as_ref().expect("bound before rows");
        let width = binding.width;
        let n = rows.len();
        let fields = &contract.schema.fields;
        b.ok.clear();
        b.ok.extend(rows.iter().map(|r| {
            r.malformed.is_none()
                && r.extra_fields() == 0
                && r.field_count() == width
                && recs.fields_of(r).iter().any(|f| !f.is_empty())
        }));
        if b.cells.len() < fields.len() * n {
            b.cells.resize(fields.len() * n, Cell::Null);
        }
        b.scratch.clear();
        for (fi, field) in fields.iter().enumerate() {
            let cells = &mut b.cells[fi * n..(fi + 1) * n];
            let Some(c) = binding.columns[fi] else {
                cells.fill(Cell::Null);
                continue;
            };
            let col = Col { field, fi, c, text, recs, rows };
            // The parser is chosen once per field and block; the common types get a loop of
            // their own.
            match &field.kind {
                FieldKind::Integer { number } => self.check_column(contract, col, b, fi * n, |s, _, out| {
                    *out = Cell::Int(cells::parse_integer(s, number)?);
                    Ok(())
                }),
                FieldKind::String { format: StringFormat::Default } => {
                    self.check_column(contract, col, b, fi * n, |_, as_str, out| {
                        *out = as_str;
                        Ok(())
                    })
                }
                kind => {
                    // A run of cells of the same day reads the date once (see `cells::LastDate`).
                    let mut last = cells::LastDate::default();
                    self.check_column(contract, col, b, fi * n, |s, as_str, out| {
                        parse_cell_into(kind, s, as_str, out, &mut last)
                    })
                }
            }
        }
    }

    /// Checks one field's cells of a block (see [`Self::check_block`]); `at` is where its cells
    /// start in `b.cells`.
    #[inline(always)]
    fn check_column(
        &self,
        contract: &Contract,
        col: Col<'_>,
        b: &mut Block,
        at: usize,
        mut parse: impl FnMut(&str, Cell, &mut Cell) -> Result<(), CellError>,
    ) {
        let Col { field, fi, c, text, recs, rows } = col;
        let Block { cells, ok, scratch, unescaped, .. } = b;
        let cells = &mut cells[at..at + rows.len()];
        let checks = &self.checks[fi];
        let required = field.constraints.required;
        let quote = contract.dialect.quote;
        for (j, r) in rows.iter().enumerate() {
            if !ok[j] {
                continue;
            }
            let (s, as_str) = cell_of(text, recs.fields[r.first_field() + c], quote, scratch, unescaped);
            if is_missing(self.only_empty_is_missing, &contract.schema.missing_values, s) {
                cells[j] = Cell::Null;
                ok[j] = !required;
                continue;
            }
            if parse(s, as_str, &mut cells[j]).is_err() {
                ok[j] = false;
                continue;
            }
            let cell = &cells[j];
            if (checks.any && check_constraints(field, checks, cell, s).is_some())
                || self.warehouse_limits.as_ref().is_some_and(|l| l.check(field, cell, s).is_some())
            {
                ok[j] = false;
            }
        }
    }

    /// Probes the row's keys and, only if none was seen before, claims them all (as
    /// [`Self::check_row`] does). A row with a key seen before is left to `check_row`.
    fn claim_keys(&mut self, contract: &Contract, text: &str, b: &Block, j: usize, line: u64) -> bool {
        let n = b.ok.len();
        let cell = move |fi: usize| {
            let c = b.cells[fi * n + j];
            (c, b.str_of(c, text))
        };
        if !self.has_unique {
            // The primary key alone: nothing can fail between its probe and its claim. A key of
            // one integer is made here, not returned through memory by `key_with` (its key has
            // room for 48 bytes: copying it stalled every row).
            if let (Some(v), Some(index)) =
                (int_key(&contract.schema.primary_key, |fi| b.cells[fi * n + j]), &mut self.primary_key)
            {
                return index.claim_new(Key::Int(v), line).is_none();
            }
            let key = self.primary_key.is_some().then(|| self.key_with(&contract.schema.primary_key, cell));
            return match (key, &mut self.primary_key) {
                (Some(key), Some(index)) => index.claim_new(key, line).is_none(),
                _ => true,
            };
        }
        let pk_probe = match self.primary_key.is_some() {
            true => {
                let key = self.key_with(&contract.schema.primary_key, cell);
                match self.primary_key.as_mut().expect("checked").probe(key) {
                    Probe::Seen(_) => return false,
                    vacant => Some(vacant),
                }
            }
            false => None,
        };
        // Every key is probed before any is claimed: a row claims all its keys or none.
        let mut probes = Vec::new();
        for fi in 0..self.unique.len() {
            if self.unique[fi].is_none() || cell(fi).0 == Cell::Null {
                continue;
            }
            let key = self.key_with(&[fi], cell);
            match self.unique[fi].as_mut().expect("checked").probe(key) {
                Probe::Seen(_) => return false,
                vacant => probes.push((fi, vacant)),
            }
        }
        for (fi, probe) in probes {
            if let Some(index) = &mut self.unique[fi] {
                index.claim(probe, line);
            }
        }
        if let (Some(probe), Some(index)) = (pk_probe, &mut self.primary_key) {
            index.claim(probe, line);
        }
        true
    }

    /// Appends the block's pending rows to the column builders, a column at a time.
    fn commit_block(&mut self, b: &mut Block, text: &str) {
        if b.pending.is_empty() {
            return;
        }
        let n = b.ok.len();
        for (fi, column) in self.columns.iter_mut().enumerate() {
            column.extend(&b.cells[fi * n..(fi + 1) * n], &b.pending, text, &b.scratch);
        }
        b.pending.clear();
    }
}

/// One field of a block: the contract field, its index, its column in the file, and the rows.
#[derive(Clone, Copy)]
struct Col<'a> {
    field: &'a Field,
    fi: usize,
    c: usize,
    text: &'a str,
    recs: &'a Records,
    rows: &'a [RecordSpan],
}
