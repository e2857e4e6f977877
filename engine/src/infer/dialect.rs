//! The dialect of a file, from its first chunk: delimiter, quote, title lines before the
//! header (`skip_lines`), and whether the first row is a header.
//!
//! Each candidate delimiter tokenizes the head with the engine's own tokenizer; the one whose
//! records most often have the same number of cells (at least two) wins, in the order `,` `;`
//! tab `|` space on a tie. Records before the first one of that width, up to
//! [`MAX_TITLE_LINES`], are title lines.

use super::types::{Column, Kind, MISSING_MARKERS};
use crate::decode::tokenizer::{Records, Tokenizer, unescape_into};

/// Delimiters tried, in order of preference on a tie.
pub const DELIMITERS: [u8; 5] = [b',', b';', b'\t', b'|', b' '];
/// Lines before the header that can be skipped as a title.
pub const MAX_TITLE_LINES: usize = 10;
/// Records of the head looked at.
pub const DETECT_RECORDS: usize = 1000;
/// A space is a delimiter only when this share of the records agree (text has spaces).
const SPACE_AGREEMENT: f64 = 0.99;

/// What the head says about the dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub delimiter: u8,
    pub quote: u8,
    pub skip_lines: u64,
    pub header: bool,
    /// The number of cells most records have.
    pub width: usize,
    /// Why, in a few sentences (for the comment and the JSON evidence).
    pub evidence: Vec<String>,
}

/// Cells of the records of `head`: each record's cells (unescaped), its first line and whether
/// it is blank or malformed.
struct Row {
    line: u64,
    cells: Vec<String>,
    count: usize,
    odd: bool,
}

fn rows(head: &[u8], eof: bool, delimiter: u8, quote: u8) -> Vec<Row> {
    let mut tok = Tokenizer::new(delimiter, quote);
    tok.set_max_records(DETECT_RECORDS);
    tok.set_max_fields(4096);
    let mut recs = Records::default();
    tok.parse(head, eof, &mut recs);
    recs.records
        .iter()
        .map(|r| {
            let cells: Vec<String> = recs
                .fields_of(r)
                .iter()
                .map(|f| {
                    let mut v = Vec::new();
                    unescape_into(&head[f.range()], quote, &mut v);
                    String::from_utf8_lossy(&v).into_owned()
                })
                .collect();
            let blank = r.extra_fields() == 0 && cells.iter().all(String::is_empty);
            Row { line: r.line, count: r.field_count() + r.extra_fields(), odd: blank || r.malformed.is_some(), cells }
        })
        .collect()
}

/// The delimiter, quote and title lines of `head` (UTF-8 text; `eof` when it is the whole
/// file); `None` when it holds no record.
pub fn detect(head: &[u8], eof: bool) -> Option<Detected> {
    let has_double = head.contains(&b'"');
    let mut best: Option<(f64, u8, u8, Vec<Row>, usize)> = None;
    for &d in DELIMITERS.iter() {
        // `'` is tried as the quote only when the head has no `"` at all.
        let quotes: &[u8] = if has_double { b"\"" } else { b"\"'" };
        for &q in quotes {
            let rs = rows(head, eof, d, q);
            let useful: Vec<&Row> = rs.iter().filter(|r| !r.odd).collect();
            if useful.is_empty() {
                continue;
            }
            let width = mode(useful.iter().map(|r| r.count));
            if width < 2 {
                continue;
            }
            let start = useful.iter().position(|r| r.count == width).unwrap_or(0);
            let start = if start > MAX_TITLE_LINES { 0 } else { start };
            let rest = &useful[start..];
            // Over all records, title lines included: a delimiter that makes the header a
            // "title" (a decimal comma in every row) agrees less than the real one.
            let agree = useful.iter().filter(|r| r.count == width).count() as f64 / useful.len() as f64;
            if d == b' ' && agree < SPACE_AGREEMENT {
                continue;
            }
            let skip_index = rs.iter().position(|r| std::ptr::eq(r, rest[0])).unwrap_or(0);
            // Candidates come in order of preference: a later one must do strictly better.
            if best.as_ref().is_none_or(|(score, ..)| agree > *score) {
                best = Some((agree, d, q, rs, skip_index));
            }
        }
    }
    let (agree, delimiter, quote, rs, skip_index) = match best {
        Some(b) => b,
        None => {
            // One column: no delimiter fits; a comma is as good as any.
            let rs = rows(head, eof, b',', b'"');
            let first = rs.iter().position(|r| !r.odd)?;
            (1.0, b',', b'"', rs, first)
        }
    };
    let useful: Vec<&Row> = rs[skip_index..].iter().filter(|r| !r.odd).collect();
    let width = mode(useful.iter().map(|r| r.count)).max(1);
    let skip_lines = rs[skip_index].line - 1;
    let shown = match delimiter {
        b'\t' => "tab".to_string(),
        b' ' => "space".to_string(),
        d => format!("`{}`", d as char),
    };
    let mut evidence = vec![format!(
        "delimiter {shown}: {:.0}% of the first {} records have {width} cells",
        agree * 100.0,
        rs.iter().filter(|r| !r.odd).count()
    )];
    if quote != b'"' {
        evidence.push(format!(
            "quote `{}`: no `\"` in the sample, and fields start with `{}`",
            quote as char, quote as char
        ));
    }
    if skip_lines > 0 {
        evidence.push(format!("{skip_lines} line(s) before the first row of {width} cells: a title, skipped"));
    }
    let (header, why) = header(&useful);
    evidence.push(why);
    Some(Detected { delimiter, quote, skip_lines, header, width, evidence })
}

/// Whether the first row is a header: yes when a column typed over the rows after it (numbers,
/// dates, booleans) turns to text with the first row's cell; no when no typed column does.
fn header(rows: &[&Row]) -> (bool, String) {
    let Some((first, rest)) = rows.split_first() else {
        return (true, "header: the only row is taken as the header".into());
    };
    if rest.is_empty() {
        return (true, "header: the only row is taken as the header".into());
    }
    let width = first.count;
    let mut typed = 0;
    for c in 0..width.min(first.cells.len()) {
        let mut col = Column::default();
        for r in rest.iter().filter(|r| r.count == width) {
            let cell = &r.cells[c];
            match MISSING_MARKERS.iter().position(|m| m == cell) {
                Some(i) => col.observe_marker(i),
                None => col.observe(cell),
            }
        }
        let kind = col.decide("").kind;
        if kind == Kind::String {
            continue;
        }
        typed += 1;
        let cell = &first.cells[c];
        if MISSING_MARKERS.contains(&cell.as_str()) {
            continue;
        }
        let mut both = col.clone();
        both.observe(cell);
        if both.decide("").kind == Kind::String {
            return (
                true,
                format!(
                    "header: the first row's `{}` is text over {} below it",
                    crate::text::inert(&crate::text::bounded(cell, 40)),
                    name(&kind)
                ),
            );
        }
    }
    if typed == 0 {
        (true, "header: every column is text, so the first row is taken as the header (a guess)".into())
    } else {
        (
            false,
            format!(
                "no header: the first row reads as data in all {typed} typed column(s); fields are named by position"
            ),
        )
    }
}

/// The kind in prose: "text", "an integer", "a date", ….
fn name(kind: &Kind) -> String {
    match kind {
        Kind::String => "text".into(),
        Kind::Integer => "an integer".into(),
        k => format!("a {}", k.type_name()),
    }
}

/// The most frequent value (the largest on a tie); 0 for none.
fn mode(counts: impl Iterator<Item = usize>) -> usize {
    let mut tally: Vec<(usize, usize)> = Vec::new();
    for c in counts {
        match tally.iter_mut().find(|(v, _)| *v == c) {
            Some((_, n)) => *n += 1,
            None => tally.push((c, 1)),
        }
    }
    tally.iter().max_by_key(|(v, n)| (*n, *v)).map_or(0, |(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_titles_and_headers() {
        let d = detect(b"a;b;c\n1;x,y;2\n3;z;4\n", true).unwrap();
        assert_eq!((d.delimiter, d.skip_lines, d.header, d.width), (b';', 0, true, 3));
        // A decimal comma in every row is not the delimiter.
        let d = detect(b"Export\nid;w;c\n1;12,50;x\n2;1,00;y\n", true).unwrap();
        assert_eq!((d.delimiter, d.skip_lines, d.width), (b';', 1, 3));
        let d = detect(b"Export of 2026-11\n\nid\tname\n1\tA\n2\tB\n", true).unwrap();
        assert_eq!((d.delimiter, d.skip_lines, d.header), (b'\t', 2, true));
        let d = detect(b"1,Alice,2024-01-01\n2,Bob,2024-01-02\n", true).unwrap();
        assert!(!d.header, "{:?}", d.evidence);
        let d = detect(b"name\nAlice\nBob\n", true).unwrap();
        assert_eq!((d.width, d.header), (1, true));
        assert_eq!(detect(b"", true), None);
    }
}
