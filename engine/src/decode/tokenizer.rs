//! RFC 4180 tokenizer over an in-memory buffer of complete or partial records.
//!
//! Why our own instead of `csv-core`: we need, for every record, its raw bytes (they go to the
//! quarantine verbatim), the physical line it starts on (quoted fields may hold newlines, so
//! counting records is not counting lines), and a precise verdict on malformed quoting (an
//! unclosed quote, a bare quote inside an unquoted field, text after a closing quote), which a
//! lenient parser silently repairs. The tokenizer never copies a field: it records spans into
//! the caller's buffer, plus a flag when a quoted field holds doubled quotes to unescape.
//!
//! Record terminators are `\n`, `\r\n` and a lone `\r`, mixed freely. Only complete records are
//! emitted; the caller keeps the unconsumed tail and appends more input, or says `eof`.

/// One field: a span of the buffer, after removing the surrounding quotes, in 8 bytes. 32-bit
/// offsets (a buffer is cut at [`MAX_BUFFER`], see [`Tokenizer::parse`]) and the "escaped" flag
/// in the top bit of the end: writing the spans of a chunk was most of the tokenizer's time at
/// 24 bytes, and at 12 (with a second flag nothing read) a row's spans were more bytes than its
/// text for the validator's thread to read from the reader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    start: u32,
    /// The end offset; its top bit ([`ESCAPED`]) says the field was quoted and contains
    /// doubled quotes (`""`) that must be unescaped.
    end: u32,
}

/// The flag bit of [`FieldSpan::end`].
const ESCAPED: u32 = 1 << 31;

/// The bytes of a buffer that one [`Tokenizer::parse`] looks at, at most: spans must fit in 31
/// bits. The job's buffer never gets near it (a record is at most 1 GiB, the limits' cap).
pub const MAX_BUFFER: usize = ESCAPED as usize - 1;

/// Why a record could not be tokenized; the record is still emitted, with its raw span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A quoted field was still open at the end of the input.
    UnclosedQuote,
    /// A quote character inside an unquoted field.
    BareQuote,
    /// Characters between a closing quote and the next delimiter.
    TextAfterQuote,
}

impl Malformed {
    pub fn message(self) -> &'static str {
        match self {
            Malformed::UnclosedQuote => {
                "a quoted field is not closed before the end of the file; close the quote or escape it by doubling it"
            }
            Malformed::BareQuote => {
                "a quote character appears inside an unquoted field; quote the whole field and double the inner quote"
            }
            Malformed::TextAfterQuote => {
                "characters follow the closing quote of a field; the quote must be followed by the delimiter or the end of the line"
            }
        }
    }
}

/// One record: its fields (a range of [`Records::fields`]), its raw bytes and its first line.
/// 32 bytes, with 32-bit offsets and counts (a buffer holds at most [`MAX_BUFFER`] bytes): the
/// spans of a chunk are written on the reader's thread and read on the validator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    first_field: u32,
    field_count: u32,
    /// Raw bytes of the record, without its terminator.
    raw_start: u32,
    raw_end: u32,
    /// 1-based physical line on which the record starts.
    pub line: u64,
    /// See [`RecordSpan::extra_fields`].
    extra_fields: u32,
    pub malformed: Option<Malformed>,
}

impl RecordSpan {
    /// Every offset and count is below 2^32: the buffer holds at most [`MAX_BUFFER`] bytes, and
    /// [`Tokenizer::parse`] starts no record once [`MAX_BUFFER`] fields are kept (a record keeps
    /// at most one field per byte, plus one).
    fn new(
        fields: std::ops::Range<usize>,
        raw: std::ops::Range<usize>,
        line: u64,
        malformed: Option<Malformed>,
        extra_fields: usize,
    ) -> Self {
        debug_assert!(fields.end <= u32::MAX as usize && raw.end <= MAX_BUFFER && extra_fields <= MAX_BUFFER);
        RecordSpan {
            first_field: fields.start as u32,
            field_count: fields.len() as u32,
            raw_start: raw.start as u32,
            raw_end: raw.end as u32,
            line,
            extra_fields: extra_fields as u32,
            malformed,
        }
    }

    /// Where its fields start in [`Records::fields`].
    #[inline]
    pub fn first_field(&self) -> usize {
        self.first_field as usize
    }

    /// The fields kept (see [`RecordSpan::extra_fields`]).
    #[inline]
    pub fn field_count(&self) -> usize {
        self.field_count as usize
    }

    /// Raw bytes of the record in its buffer, without its terminator.
    #[inline]
    pub fn raw(&self) -> std::ops::Range<usize> {
        self.raw_start as usize..self.raw_end as usize
    }

    /// Fields past [`Tokenizer::set_max_fields`]: counted, not kept, so that a record of
    /// millions of delimiters costs no more memory than its bytes.
    #[inline]
    pub fn extra_fields(&self) -> usize {
        self.extra_fields as usize
    }
}

/// The records found in one buffer.
#[derive(Debug, Default)]
pub struct Records {
    pub fields: Vec<FieldSpan>,
    pub records: Vec<RecordSpan>,
}

impl FieldSpan {
    /// The span `start..end` of a buffer of at most [`MAX_BUFFER`] bytes.
    #[inline]
    pub fn new(start: usize, end: usize, escaped: bool) -> Self {
        debug_assert!(start <= end && end <= MAX_BUFFER, "span {start}..{end} past the buffer's bound");
        FieldSpan { start: start as u32, end: end as u32 | if escaped { ESCAPED } else { 0 } }
    }

    #[inline]
    pub fn start(self) -> usize {
        self.start as usize
    }

    #[inline]
    pub fn end(self) -> usize {
        (self.end & !ESCAPED) as usize
    }

    /// The field was quoted and contains doubled quotes (`""`) that must be unescaped.
    #[inline]
    pub fn escaped(self) -> bool {
        self.end & ESCAPED != 0
    }

    /// The field's bytes in the buffer it was read from.
    #[inline]
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start()..self.end()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start() == self.end()
    }

    /// The same span in a buffer that starts `base` bytes further on.
    #[inline]
    pub fn shifted_back(self, base: usize) -> Self {
        FieldSpan::new(self.start() - base, self.end() - base, self.escaped())
    }
}

impl Records {
    pub fn clear(&mut self) {
        self.fields.clear();
        self.records.clear();
    }

    pub fn fields_of(&self, r: &RecordSpan) -> &[FieldSpan] {
        &self.fields[r.first_field()..r.first_field() + r.field_count()]
    }
}

/// Tokenizer state carried between buffers: the line counter, and the caps on what one call
/// keeps.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    delimiter: u8,
    quote: u8,
    /// Bytes that end an unquoted field or need a look: delimiter, quote, `\r`, `\n`.
    special: [bool; 256],
    /// Line on which the next record starts.
    line: u64,
    /// Fields kept per record; the rest are counted in [`RecordSpan::extra_fields`].
    max_fields: usize,
    /// Records returned per [`Tokenizer::parse`]; the caller parses the rest of the buffer
    /// next, so a buffer of a million one-byte records is not a million spans at once.
    max_records: usize,
    /// Tests turn the block scan off to compare it with the byte-by-byte reading.
    #[cfg(test)]
    blocks: bool,
}

impl Tokenizer {
    pub fn new(delimiter: u8, quote: u8) -> Self {
        let mut special = [false; 256];
        for b in [delimiter, quote, b'\r', b'\n'] {
            special[b as usize] = true;
        }
        Tokenizer {
            delimiter,
            quote,
            special,
            line: 1,
            max_fields: usize::MAX,
            max_records: usize::MAX,
            #[cfg(test)]
            blocks: true,
        }
    }

    /// Keeps at most `n` fields of each record (at least 1); the others are only counted.
    pub fn set_max_fields(&mut self, n: usize) {
        self.max_fields = n.max(1);
    }

    /// Returns at most `n` records (at least 1) from one [`Tokenizer::parse`].
    pub fn set_max_records(&mut self, n: usize) {
        self.max_records = n.max(1);
    }

    /// The line on which the next record starts.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Skips up to `n` physical lines at the start of `buf`: returns the bytes consumed and the
    /// lines skipped. Only complete lines are skipped (at `eof`, the last one may lack its
    /// terminator), so the caller drains what was skipped and keeps at most one partial line.
    pub fn skip_lines(&mut self, buf: &[u8], n: u64, eof: bool) -> (usize, u64) {
        let mut pos = 0;
        let mut skipped = 0;
        while skipped < n {
            match buf[pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    let mut end = pos + i;
                    if buf[end] == b'\r' {
                        if end + 1 == buf.len() && !eof {
                            break;
                        }
                        if buf.get(end + 1) == Some(&b'\n') {
                            end += 1;
                        }
                    }
                    pos = end + 1;
                    skipped += 1;
                    self.line += 1;
                }
                None if eof => return (buf.len(), n),
                None => break,
            }
        }
        (pos, skipped)
    }

    /// Tokenizes the complete records at the start of `buf` into `out` (appending) and returns
    /// the number of bytes consumed. With `eof`, the final record needs no terminator.
    pub fn parse(&mut self, buf: &[u8], eof: bool, out: &mut Records) -> usize {
        // Spans hold 31-bit offsets: past MAX_BUFFER the input is not there yet, and the
        // caller's bound on a record's length (far below) rejects the file first.
        let (buf, eof) = if buf.len() <= MAX_BUFFER { (buf, eof) } else { (&buf[..MAX_BUFFER], false) };
        let mut pos = 0;
        let limit = out.records.len().saturating_add(self.max_records);
        let mut marks = Marks::new(self);
        // Past MAX_BUFFER fields kept, no record starts: offsets into the fields stay 32-bit.
        while pos < buf.len() && out.records.len() < limit && out.fields.len() <= MAX_BUFFER {
            let first_field = out.fields.len();
            if self.use_blocks()
                && let Some(next) = self.plain_record(&mut marks, buf, pos, out)
            {
                out.records.push(RecordSpan::new(first_field..out.fields.len(), pos..next - 1, self.line, None, 0));
                self.line += 1;
                pos = next;
                continue;
            }
            out.fields.truncate(first_field);
            match self.record(buf, pos, eof, out) {
                Some((raw_end, next, newlines, malformed, extra_fields)) => {
                    out.records.push(RecordSpan::new(
                        first_field..out.fields.len(),
                        pos..raw_end,
                        self.line,
                        malformed,
                        extra_fields,
                    ));
                    self.line += newlines;
                    pos = next;
                }
                None => {
                    out.fields.truncate(first_field);
                    break;
                }
            }
        }
        pos
    }

    /// One record from `start`: `(raw_end, next_record_start, lines_spanned, malformed,
    /// extra_fields)`, or `None` when the record is incomplete.
    fn record(
        &self,
        buf: &[u8],
        start: usize,
        eof: bool,
        out: &mut Records,
    ) -> Option<(usize, usize, u64, Option<Malformed>, usize)> {
        let len = buf.len();
        let mut p = start;
        let mut newlines = 0u64;
        let mut malformed = None;
        let first_field = out.fields.len();
        // Fields past `max_fields` are pushed, then dropped and counted at the next delimiter or
        // the end of the record: the common path pays one comparison per field.
        let mut extra = 0usize;
        let max_fields = self.max_fields;
        let over = |out: &mut Records| {
            if out.fields.len() - first_field > max_fields {
                out.fields.pop();
                1
            } else {
                0
            }
        };
        loop {
            // At the start of a field.
            if p < len && buf[p] == self.quote {
                let fstart = p + 1;
                let mut q = fstart;
                let mut escaped = false;
                let fend;
                loop {
                    match buf[q..].iter().position(|&b| b == self.quote) {
                        None => {
                            if !eof {
                                return None;
                            }
                            newlines += count_newlines(&buf[q..]);
                            malformed.get_or_insert(Malformed::UnclosedQuote);
                            out.fields.push(FieldSpan::new(fstart, len, escaped));
                            extra += over(out);
                            return Some((len, len, newlines + 1, malformed, extra));
                        }
                        Some(i) => {
                            newlines += count_newlines(&buf[q..q + i]);
                            let at = q + i;
                            if at + 1 < len && buf[at + 1] == self.quote {
                                escaped = true;
                                q = at + 2;
                                continue;
                            }
                            if at + 1 == len && !eof {
                                return None;
                            }
                            fend = at;
                            p = at + 1;
                            break;
                        }
                    }
                }
                out.fields.push(FieldSpan::new(fstart, fend, escaped));
                // After the closing quote: delimiter, terminator or end of input.
                if p < len && buf[p] != self.delimiter && buf[p] != b'\n' && buf[p] != b'\r' {
                    malformed.get_or_insert(Malformed::TextAfterQuote);
                    // Treat the rest of the field as unquoted text so that the record ends where
                    // a reader would expect it to.
                    while p < len && buf[p] != self.delimiter && buf[p] != b'\n' && buf[p] != b'\r' {
                        p += 1;
                    }
                    let last = out.fields.len() - 1;
                    out.fields[last] = FieldSpan::new(fstart, p, escaped);
                }
            } else {
                let fstart = p;
                p = self.plain_end(buf, p);
                while p < len && buf[p] == self.quote {
                    malformed.get_or_insert(Malformed::BareQuote);
                    p = self.plain_end(buf, p + 1);
                }
                out.fields.push(FieldSpan::new(fstart, p, false));
            }
            // Now at a delimiter, a terminator, or the end of the buffer.
            if p == len {
                if !eof {
                    return None;
                }
                extra += over(out);
                return Some((len, len, newlines + 1, malformed, extra));
            }
            let b = buf[p];
            if b == self.delimiter {
                p += 1;
                extra += over(out);
                continue;
            }
            // Terminator.
            let raw_end = p;
            if b == b'\r' {
                if p + 1 == len && !eof {
                    return None;
                }
                if p + 1 < len && buf[p + 1] == b'\n' {
                    p += 1;
                }
            }
            extra += over(out);
            return Some((raw_end, p + 1, newlines + 1, malformed, extra));
        }
    }
}

impl Tokenizer {
    #[cfg(test)]
    fn use_blocks(&self) -> bool {
        self.blocks
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn use_blocks(&self) -> bool {
        true
    }

    /// The common record, read from the marks of 64-byte blocks: no `\r` in it, no line break
    /// inside a quoted field, nothing between a closing quote and the next delimiter, ended by
    /// `\n`, at most `max_fields` fields, and at least a block of input from where a block is
    /// next loaded. Its fields are pushed and the start of the next record returned; anything
    /// else is `None` (with some of its fields pushed, for the caller to drop), and
    /// [`Tokenizer::record`] reads it byte by byte. A field costs a few instructions here,
    /// against a scan of its bytes there. (A quarter of the benchmark's records have a quoted
    /// note, which went byte by byte before.)
    #[inline]
    fn plain_record(&self, marks: &mut Marks, buf: &[u8], start: usize, out: &mut Records) -> Option<usize> {
        let mut field = start;
        let mut n = 0;
        loop {
            let at = marks.next(buf, field)?;
            n += 1;
            if n > self.max_fields {
                return None;
            }
            let mut span = FieldSpan::new(field, at, false);
            let mut end = at;
            if buf[at] == self.quote && at == field {
                // A quoted field, through the delimiters in it, to the quote that is not doubled.
                let mut q = at + 1;
                let mut escaped = false;
                let close = loop {
                    let m = marks.next(buf, q)?;
                    let c = buf[m];
                    if c == self.quote {
                        if *buf.get(m + 1)? == self.quote {
                            escaped = true;
                            q = m + 2;
                            continue;
                        }
                        break m;
                    } else if c == self.delimiter {
                        q = m + 1;
                    } else {
                        return None;
                    }
                };
                span = FieldSpan::new(at + 1, close, escaped);
                end = close + 1;
            }
            let b = *buf.get(end)?;
            if b == self.delimiter {
                out.fields.push(span);
                field = end + 1;
            } else if b == b'\n' {
                out.fields.push(span);
                return Some(end + 1);
            } else {
                return None;
            }
        }
    }

    /// The first byte at or after `p` that ends an unquoted field (delimiter, quote, `\r`,
    /// `\n`), or `buf.len()`. Eight bytes at a time: the byte-at-a-time loop was most of the
    /// tokenizer's time on typical fields of 5 to 20 bytes.
    #[inline]
    fn plain_end(&self, buf: &[u8], mut p: usize) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // The high bit of each zero byte of `x`. Bytes above the lowest zero byte may be marked
        // wrongly (a borrow), the lowest never: only the lowest mark is used.
        let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let [d, q] = [self.delimiter, self.quote].map(|b| u64::from(b) * ONES);
        while let Some(word) = buf.get(p..p + 8) {
            let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            let marks = zeros(w ^ d)
                | zeros(w ^ q)
                | zeros(w ^ (u64::from(b'\n') * ONES))
                | zeros(w ^ (u64::from(b'\r') * ONES));
            if marks != 0 {
                return p + (marks.trailing_zeros() / 8) as usize;
            }
            p += 8;
        }
        while p < buf.len() && !self.special[buf[p] as usize] {
            p += 1;
        }
        p
    }
}

/// Where the delimiter, the quote, `\r` and `\n` are in a 64-byte block of the input, one bit
/// a byte: the block is read once for all the fields in it.
struct Marks {
    /// The block's first byte in the buffer (the block is `at..at + 64`).
    at: usize,
    bits: u64,
    special: [u8; 4],
}

impl Marks {
    fn new(t: &Tokenizer) -> Self {
        // No block yet: the first look loads one.
        Marks { at: usize::MAX - 64, bits: 0, special: [t.delimiter, t.quote, b'\r', b'\n'] }
    }

    /// The first marked byte at or after `p`, or `None` when a block is needed and fewer than
    /// 64 bytes are left from `p`.
    #[inline]
    fn next(&mut self, buf: &[u8], mut p: usize) -> Option<usize> {
        loop {
            if p < self.at || p >= self.at + 64 {
                let block: &[u8; 64] = buf.get(p..p + 64)?.try_into().expect("64 bytes");
                self.at = p;
                self.bits = block_marks(block, self.special);
            }
            let rest = self.bits >> (p - self.at);
            if rest != 0 {
                return Some(p + rest.trailing_zeros() as usize);
            }
            p = self.at + 64;
        }
    }
}

/// One bit per byte of `block` that is one of `special`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_marks(block: &[u8; 64], special: [u8; 4]) -> u64 {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY: SSE2 is part of x86_64 (the intrinsics only ask for it); each load reads 16 of
    // the block's 64 bytes, unaligned.
    unsafe {
        let s = special.map(|b| _mm_set1_epi8(b as i8));
        let mut bits = 0u64;
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i) as *const __m128i);
            let m = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, s[0]), _mm_cmpeq_epi8(v, s[1])),
                _mm_or_si128(_mm_cmpeq_epi8(v, s[2]), _mm_cmpeq_epi8(v, s[3])),
            );
            bits |= (_mm_movemask_epi8(m) as u16 as u64) << (16 * i);
        }
        bits
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_marks(block: &[u8; 64], special: [u8; 4]) -> u64 {
    let mut bits = 0u64;
    for (i, &b) in block.iter().enumerate() {
        bits |= (special.contains(&b) as u64) << i;
    }
    bits
}

fn count_newlines(s: &[u8]) -> u64 {
    // `\r\n` and lone `\r` both count as one line break, like the record terminators.
    let mut n = 0u64;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\n' => n += 1,
            b'\r' if s.get(i + 1) != Some(&b'\n') => n += 1,
            _ => {}
        }
        i += 1;
    }
    n
}

/// Unescapes a quoted field with doubled quotes into `out`.
pub fn unescape_into(field: &[u8], quote: u8, out: &mut Vec<u8>) {
    // The runs between quotes are copied whole; a quote is kept once, its double skipped.
    let mut rest = field;
    while let Some(i) = rest.iter().position(|&b| b == quote) {
        out.extend_from_slice(&rest[..=i]);
        let skip = if rest.get(i + 1) == Some(&quote) { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<(u64, Vec<String>, Option<Malformed>)> {
        let mut t = Tokenizer::new(b',', b'"');
        let mut r = Records::default();
        let n = t.parse(input, true, &mut r);
        assert_eq!(n, input.len());
        r.records
            .iter()
            .map(|rec| {
                let fields = r
                    .fields_of(rec)
                    .iter()
                    .map(|f| {
                        let mut v = Vec::new();
                        unescape_into(&input[f.range()], b'"', &mut v);
                        String::from_utf8(v).unwrap()
                    })
                    .collect();
                (rec.line, fields, rec.malformed)
            })
            .collect()
    }

    #[test]
    fn spans_are_small_and_keep_the_escaped_flag_apart_from_the_end() {
        assert_eq!(std::mem::size_of::<FieldSpan>(), 8);
        assert_eq!(std::mem::size_of::<RecordSpan>(), 32);
        let f = FieldSpan::new(7, MAX_BUFFER, true);
        assert_eq!((f.start(), f.end(), f.escaped()), (7, MAX_BUFFER, true));
        assert_eq!(f.shifted_back(7), FieldSpan::new(0, MAX_BUFFER - 7, true));
        assert!(FieldSpan::new(3, 3, true).is_empty());
        // Both scans: the block scan and the byte-by-byte one (a lone `\r` ends the second row).
        // The block scan needs a block of input ahead: plain rows follow.
        let mut input = b"\"a\"\"b\",c,\"d\"\n\"e\"\"\"x,\"\"\r\"\",\"q\"\"\"\n".to_vec();
        input.extend(b"1,2,3\n".repeat(100));
        let input = &input[..];
        for blocks in [true, false] {
            let mut t = Tokenizer::new(b',', b'"');
            t.blocks = blocks;
            let mut r = Records::default();
            assert_eq!(t.parse(input, true, &mut r), input.len());
            let got: Vec<_> = r.fields[..7].iter().map(|f| (&input[f.range()], f.escaped())).collect();
            let want: Vec<(&[u8], bool)> = vec![
                (b"a\"\"b", true),
                (b"c", false),
                (b"d", false),
                // Text after the closing quote: the span runs on to the delimiter, still escaped.
                (b"e\"\"\"x", true),
                (b"", false),
                (b"", false),
                (b"q\"\"", true),
            ];
            assert_eq!(got, want, "blocks: {blocks}");
            let raws: Vec<_> = r.records[..3].iter().map(|x| &input[x.raw()]).collect();
            assert_eq!(raws, vec![&b"\"a\"\"b\",c,\"d\""[..], b"\"e\"\"\"x,\"\"", b"\"\",\"q\"\"\""]);
        }
    }

    #[test]
    fn quoted_newlines_keep_line_numbers_right() {
        let got = parse_all(b"a,b\n\"x\ny\",2\n3,4\n");
        assert_eq!(got[0].0, 1);
        assert_eq!(got[1], (2, vec!["x\ny".into(), "2".into()], None));
        assert_eq!(got[2].0, 4);
    }

    #[test]
    fn crlf_leaves_no_carriage_return_in_the_last_column() {
        let got = parse_all(b"a,b\r\n1,2\r\n");
        assert_eq!(got[1].1, vec!["1", "2"]);
        assert_eq!(got[1].0, 2);
    }

    #[test]
    fn mixed_and_lone_cr_terminators() {
        let got = parse_all(b"a\r1\n2\r\n3");
        let lines: Vec<_> = got.iter().map(|g| (g.0, g.1[0].clone())).collect();
        assert_eq!(lines, vec![(1, "a".into()), (2, "1".into()), (3, "2".into()), (4, "3".into())]);
    }

    #[test]
    fn doubled_quotes_and_delimiters_inside_quotes() {
        let got = parse_all(b"\"a,\"\"b\"\"\",c\n");
        assert_eq!(got[0].1, vec!["a,\"b\"", "c"]);
    }

    #[test]
    fn malformed_quoting_is_flagged_not_repaired_silently() {
        assert_eq!(parse_all(b"a,\"b\n")[0].2, Some(Malformed::UnclosedQuote));
        assert_eq!(parse_all(b"a,b\"c\n")[0].2, Some(Malformed::BareQuote));
        assert_eq!(parse_all(b"\"a\"b,c\n")[0].2, Some(Malformed::TextAfterQuote));
    }

    #[test]
    fn incomplete_records_are_left_for_the_next_buffer() {
        let mut t = Tokenizer::new(b',', b'"');
        let mut r = Records::default();
        let input = b"1,2\n3,\"4\n5";
        let n = t.parse(input, false, &mut r);
        assert_eq!(n, 4);
        assert_eq!(r.records.len(), 1);
        // A trailing \r may be the first half of \r\n.
        let mut r = Records::default();
        assert_eq!(Tokenizer::new(b',', b'"').parse(b"1,2\r", false, &mut r), 0);
    }

    #[test]
    fn fields_past_the_cap_are_counted_not_kept() {
        let mut t = Tokenizer::new(b',', b'"');
        t.set_max_fields(2);
        let mut r = Records::default();
        let row = ",".repeat(1_000_000);
        let input = format!("a,b,c\n\"x\"y,{row}\n1\n");
        t.parse(input.as_bytes(), true, &mut r);
        assert_eq!(r.fields.len(), 2 + 2 + 1, "two fields kept per record");
        let counts: Vec<_> = r.records.iter().map(|x| (x.field_count(), x.extra_fields())).collect();
        assert_eq!(counts, vec![(2, 1), (2, 1_000_000), (1, 0)]);
        assert_eq!(r.records[1].malformed, Some(Malformed::TextAfterQuote));
    }

    #[test]
    fn parse_returns_at_most_max_records_and_resumes() {
        let mut t = Tokenizer::new(b',', b'"');
        t.set_max_records(2);
        let input = b"1\n2\n3\n4\n5";
        let mut lines = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let mut r = Records::default();
            pos += t.parse(&input[pos..], true, &mut r);
            assert!(r.records.len() <= 2);
            lines.extend(r.records.iter().map(|x| x.line));
        }
        assert_eq!(lines, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn skip_lines_skips_complete_lines_only() {
        let mut t = Tokenizer::new(b',', b'"');
        assert_eq!(t.skip_lines(b"title\r\nsub", 3, false), (7, 1));
        assert_eq!(t.skip_lines(b"sub\r", 2, false), (0, 0), "a trailing \\r may be half of \\r\\n");
        assert_eq!(t.skip_lines(b"sub\r\nx\ny", 2, false), (7, 2));
        assert_eq!(t.line(), 4);
        assert_eq!(t.skip_lines(b"last", 1, true), (4, 1));
    }

    #[test]
    fn chunked_parse_equals_whole_parse() {
        let input: &[u8] = b"id,note\r\n1,\"multi\r\nline, \"\"quoted\"\"\"\n2,plain\r3,\"\"\n";
        let whole = parse_all(input);
        for split in 1..input.len() {
            let mut t = Tokenizer::new(b',', b'"');
            let mut buf = input[..split].to_vec();
            let mut lines = Vec::new();
            let mut r = Records::default();
            let n = t.parse(&buf, false, &mut r);
            lines.extend(r.records.iter().map(|x| x.line));
            buf.drain(..n);
            buf.extend_from_slice(&input[split..]);
            let mut r = Records::default();
            t.parse(&buf, true, &mut r);
            lines.extend(r.records.iter().map(|x| x.line));
            assert_eq!(lines, whole.iter().map(|w| w.0).collect::<Vec<_>>(), "split at {split}");
        }
    }

    /// Everything one tokenizer makes of `input` (fed whole, then the rest after what it
    /// consumed, as the file job does), with the block scan on or off.
    fn tokens(input: &[u8], eof: bool, max_fields: usize, max_records: usize, blocks: bool) -> Vec<String> {
        let mut t = Tokenizer::new(b',', b'"');
        t.blocks = blocks;
        t.set_max_fields(max_fields);
        t.set_max_records(max_records);
        let mut seen = Vec::new();
        let mut pos = 0;
        loop {
            let mut r = Records::default();
            let n = t.parse(&input[pos..], eof, &mut r);
            seen.push(format!("{n} {:?} {:?} {}", r.records, r.fields, t.line()));
            pos += n;
            if n == 0 || pos == input.len() {
                return seen;
            }
        }
    }

    #[test]
    fn the_block_scan_reads_long_plain_files_as_byte_by_byte() {
        let mut input = Vec::new();
        for i in 0..2_000 {
            input.extend_from_slice(format!("{i},x{},,{}\n", "y".repeat(i % 150), i % 7).as_bytes());
            if i % 97 == 0 {
                input.extend_from_slice(b"\"q,\"\"\",2\r\n\r3,a\"b\n");
            }
        }
        for eof in [false, true] {
            for (max_fields, max_records) in [(usize::MAX, usize::MAX), (3, 1_000), (4, 7)] {
                let on = tokens(&input, eof, max_fields, max_records, true);
                assert_eq!(on, tokens(&input, eof, max_fields, max_records, false));
                assert!(on.len() > 1 || max_records == usize::MAX);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_block_scan_reads_every_input_as_byte_by_byte(
            input in proptest::collection::vec(
                proptest::sample::select(b"aaaaab7,,,\n\n\"\r\xff".to_vec()), 0..600),
            eof: bool,
            max_fields in 1usize..8,
            max_records in 1usize..40,
        ) {
            proptest::prop_assert_eq!(
                tokens(&input, eof, max_fields, max_records, true),
                tokens(&input, eof, max_fields, max_records, false)
            );
        }
    }

    #[test]
    fn the_word_scan_finds_the_first_special_byte_at_every_offset() {
        // Every byte value at every offset of a field of up to 24 bytes, after a prefix of
        // plain bytes (ASCII and bytes with the high bit set, which the word arithmetic must
        // not mistake for a delimiter), against the byte-at-a-time answer.
        for (delimiter, quote) in [(b',', b'"'), (b'\t', b'\''), (b';', b'"')] {
            let t = Tokenizer::new(delimiter, quote);
            let reference = |buf: &[u8], mut p: usize| {
                while p < buf.len() && !t.special[buf[p] as usize] {
                    p += 1;
                }
                p
            };
            for len in 0..24 {
                for at in 0..len {
                    for byte in 0..=255u8 {
                        let mut buf: Vec<u8> = (0..len).map(|i| [b'a', 0x80, 0xac, 0xff, b'0'][i % 5]).collect();
                        buf[at] = byte;
                        for start in [0, at.min(3)] {
                            assert_eq!(t.plain_end(&buf, start), reference(&buf, start), "{buf:?} from {start}");
                        }
                    }
                }
            }
        }
    }
}
