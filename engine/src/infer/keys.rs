//! The primary-key guess: the smallest set of up to [`MAX_KEY_COLUMNS`] columns that is unique
//! and never missing in the rows looked at.
//!
//! Rows are kept as one 64-bit hash per cell (at most [`super::KEY_BUDGET_BYTES`] of them).
//! Only columns where equal text means equal value are tried (text, integers written
//! canonically, ISO dates, years, datetimes without offsets of one length): a float or a
//! boolean is no key, and `1.0`/`1.00` would be one value in the warehouse. A hash collision
//! can only make a unique set look duplicated, never the other way round.

use super::{KeyGuess, MAX_KEY_COLUMNS};
use std::collections::HashSet;

/// Sets of columns tried at most (sizes 1 to 3 over the candidates, in column order).
const MAX_SETS: usize = 1000;

fn unique(hashes: &[u64], width: usize, rows: usize, set: &[usize]) -> bool {
    let mut seen = HashSet::with_capacity(rows);
    (0..rows).all(|r| {
        let row = &hashes[r * width..(r + 1) * width];
        let h = set
            .iter()
            .fold(0x9E37_79B9_7F4A_7C15u64, |acc, &c| (acc ^ row[c]).wrapping_mul(0x0100_0000_01B3).rotate_left(29));
        seen.insert(h)
    })
}

/// The guess over `rows` rows of `hashes` (`names.len()` cells a row), among `candidates`.
pub(super) fn guess(hashes: &[u64], names: &[&str], rows: usize, candidates: &[usize], capped: bool) -> KeyGuess {
    let width = names.len();
    let none =
        |reason: String| KeyGuess { columns: Vec::new(), checked_all_rows: !capped, rows_checked: rows as u64, reason };
    if rows < 2 {
        return none("no key guessed: fewer than two rows".into());
    }
    if candidates.is_empty() {
        return none("no key guessed: no column is never missing and of a type that can be a key".into());
    }
    let mut tried = 0;
    let mut sets: Vec<Vec<usize>> = Vec::new();
    for size in 1..=MAX_KEY_COLUMNS.min(candidates.len()) {
        sets.clear();
        combinations(candidates, size, &mut Vec::new(), 0, &mut sets, MAX_SETS);
        for set in &sets {
            tried += 1;
            if tried > MAX_SETS {
                return none(format!("no key guessed within {MAX_SETS} sets of columns tried"));
            }
            if unique(hashes, width, rows, set) {
                let columns: Vec<String> = set.iter().map(|&c| names[c].to_string()).collect();
                let reason = format!(
                    "a guess: unique and never missing in the {}{} rows looked at",
                    if capped { "first " } else { "" },
                    rows
                );
                return KeyGuess { columns, checked_all_rows: !capped, rows_checked: rows as u64, reason };
            }
        }
    }
    none(format!("no key guessed: no set of up to {MAX_KEY_COLUMNS} columns is unique and never missing"))
}

fn combinations(
    items: &[usize],
    size: usize,
    cur: &mut Vec<usize>,
    from: usize,
    out: &mut Vec<Vec<usize>>,
    max: usize,
) {
    if out.len() >= max {
        return;
    }
    if cur.len() == size {
        out.push(cur.clone());
        return;
    }
    for i in from..items.len() {
        cur.push(items[i]);
        combinations(items, size, cur, i + 1, out, max);
        cur.pop();
    }
}
