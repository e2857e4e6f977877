//! The validator's columns encoded into Parquet column chunks by our own code, for the types
//! it makes most: 64- and 32-bit integers (integers, datetimes, times, dates, decimals of up to
//! 18 digits) and UTF-8 strings. Every other column (floats, booleans, wide decimals, whatever a
//! transform returns) goes through arrow-rs's own column writer, and the file around the chunks
//! (schema, row groups, footer) is arrow-rs's too: only the pages are ours.
//!
//! Why: arrow-rs's writer took about 0.15 s of CPU per 1e6 orders beside zstd's 0.1 s (one
//! pinned core; `glueless validate`, which writes nothing, took 0.42 s and `transform` 0.71 s),
//! in per-value statistics comparisons, mini-batches of 1,024 values, a gathering copy of
//! every string, a general interner, and fresh buffers for every page and row group. Here a
//! column chunk is one pass over the Arrow buffers, 1,024 rows at a time: plain integers are
//! copied into the page as they are, a dictionary column keeps its indices and takes its
//! statistics from the dictionary once at the end, short strings are interned as one or two
//! machine words, and the buffers are kept from one page and one row group to the next.
//!
//! The chunks are the ones arrow-rs writes for the same data: data pages v1 of up to 1 MiB or
//! about 20,000 rows, levels RLE, values PLAIN or RLE_DICTIONARY with a PLAIN dictionary page
//! first, the dictionary given up (the rest of the chunk plain) past 1 MiB, column statistics
//! with the null count and min/max (strings' min/max left out past 64 bytes, where arrow-rs
//! would truncate them), the offset index. What differs: no column index (the pages' min/max;
//! readers prune row groups by the column statistics all the same).

use arrow::array::Array;
use arrow::datatypes::{DataType, TimeUnit, ToByteSlice};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, PageType, Type as Physical};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A data page is closed once its encoded values reach this size (arrow-rs's default).
const PAGE_BYTES: usize = 1 << 20;
/// A data page is closed once it holds this many rows, looked at every [`CHECK_EVERY`] rows
/// (arrow-rs's defaults: its pages hold 20,480 rows). It matters to zstd: 1 MiB of the
/// orders' timestamps compresses to 745 KB in one piece and to 442 KB in pieces of 64 KiB,
/// zstd's parameters for inputs up to 256 KiB suiting such columns better.
const PAGE_ROWS: usize = 20_000;
const CHECK_EVERY: usize = 1024;
/// A dictionary is given up once its plain encoding passes this size (arrow-rs's default).
const DICTIONARY_BYTES: usize = 1 << 20;
/// Strings' min/max longer than this are left out of the statistics (arrow-rs truncates them
/// to this length).
const STATISTICS_BYTES: usize = 64;

/// How the values of an Arrow column become the physical values of its Parquet column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// `Int64`, `Timestamp(µs)`, `Time64(µs)`: the 64-bit values as they are.
    I64,
    /// `Decimal128` of 10 to 18 digits: the unscaled value, which fits 64 bits.
    Decimal64,
    /// `Int32`, `Date32`: the 32-bit values as they are.
    I32,
    /// `Decimal128` of up to 9 digits.
    Decimal32,
    /// `Utf8`: the bytes.
    Utf8,
}

impl Source {
    /// The source for a column of type `t` whose Parquet column is `descr`, if it is one of
    /// ours: a flat column of a physical type this module writes.
    fn of(t: &DataType, descr: &ColumnDescPtr) -> Option<Source> {
        if descr.max_rep_level() != 0 || descr.max_def_level() > 1 {
            return None;
        }
        let source = match t {
            DataType::Int64
            | DataType::Timestamp(TimeUnit::Microsecond, _)
            | DataType::Time64(TimeUnit::Microsecond) => Source::I64,
            DataType::Decimal128(p, _) if (10..=18).contains(p) => Source::Decimal64,
            DataType::Int32 | DataType::Date32 => Source::I32,
            DataType::Decimal128(p, _) if (1..=9).contains(p) => Source::Decimal32,
            DataType::Utf8 => Source::Utf8,
            _ => return None,
        };
        let physical = match source {
            Source::I64 | Source::Decimal64 => Physical::INT64,
            Source::I32 | Source::Decimal32 => Physical::INT32,
            Source::Utf8 => Physical::BYTE_ARRAY,
        };
        (descr.physical_type() == physical).then_some(source)
    }
}

/// A hash of the interner's keys: two words folded by one wide multiplication with secret
/// keys (integers and strings of up to 15 bytes are one `u128`), longer strings 16 bytes at a
/// time. The keys are random for every dictionary ([`Keyed`]): the values are the file's, and
/// without them strings chosen to collide would make every lookup scan the whole dictionary.
struct WordHasher {
    state: u64,
    key: u64,
}

impl WordHasher {
    fn fold(&mut self, lo: u64, hi: u64) {
        let m = u128::from(lo ^ self.state) * u128::from(hi ^ self.key);
        self.state = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// The random keys of a dictionary's [`WordHasher`]s.
#[derive(Clone)]
struct Keyed {
    k0: u64,
    k1: u64,
}

impl Default for Keyed {
    fn default() -> Self {
        let random = std::hash::RandomState::new();
        Keyed { k0: random.hash_one(0u64), k1: random.hash_one(1u64) | 1 }
    }
}

impl BuildHasher for Keyed {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher { state: self.k0, key: self.k1 }
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.state
    }
    fn write(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(16) {
            let mut w = [0u8; 16];
            w[..piece.len()].copy_from_slice(piece);
            let v = u128::from_le_bytes(w);
            self.fold(v as u64, (v >> 64) as u64 ^ piece.len() as u64);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.fold(v as u64, (v >> 64) as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.fold(v as u64, 0);
    }
}

type Words = HashMap<u128, u32, Keyed>;
type Strings = HashMap<Box<[u8]>, u32, Keyed>;

/// Strings of up to this many bytes are interned as one `u128`: their bytes, and their length
/// in the top byte.
const WORD_BYTES: usize = 15;

fn string_word(v: &[u8]) -> u128 {
    let mut w = [0u8; 16];
    w[..v.len()].copy_from_slice(v);
    w[15] = v.len() as u8;
    u128::from_le_bytes(w)
}

/// The dictionary of a chunk: each distinct value once, PLAIN-encoded in order of arrival.
#[derive(Default)]
struct Dictionary {
    /// Integers by value; strings of up to [`WORD_BYTES`] bytes as one word ([`string_word`]).
    words: Words,
    /// Longer strings.
    strings: Strings,
    /// The dictionary page's values.
    plain: Vec<u8>,
    len: u32,
}

impl Dictionary {
    fn intern_word(&mut self, key: u128, plain: impl FnOnce(&mut Vec<u8>)) -> u32 {
        let next = self.len;
        let index = *self.words.entry(key).or_insert(next);
        if index == next {
            plain(&mut self.plain);
            self.len += 1;
        }
        index
    }

    fn intern_bytes(&mut self, v: &[u8]) -> u32 {
        if v.len() <= WORD_BYTES {
            return self.intern_word(string_word(v), |out| put_bytes(out, v));
        }
        if let Some(&i) = self.strings.get(v) {
            return i;
        }
        let i = self.len;
        self.strings.insert(v.into(), i);
        put_bytes(&mut self.plain, v);
        self.len += 1;
        i
    }
}

fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    out.extend_from_slice(v);
}

/// Min, max and nulls of the values written plain (those in the dictionary are taken from it
/// when the chunk closes).
#[derive(Default)]
struct Bounds {
    int: Option<(i64, i64)>,
    bytes: Option<(Vec<u8>, Vec<u8>)>,
    nulls: u64,
}

impl Bounds {
    fn int(&mut self, v: i64) {
        self.int = Some(match self.int {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }

    /// Every value of `d` (the values written as its indices).
    fn dictionary(&mut self, source: Source, d: &Dictionary) {
        for_each_plain(source, &d.plain, d.len, |v| match v {
            Plain::Int(v) => self.int(v),
            Plain::Bytes(v) => self.bytes(v),
        });
    }

    fn bytes(&mut self, v: &[u8]) {
        match &mut self.bytes {
            None => self.bytes = Some((v.to_vec(), v.to_vec())),
            Some((lo, hi)) => {
                if v < lo.as_slice() {
                    lo.clear();
                    lo.extend_from_slice(v);
                } else if v > hi.as_slice() {
                    hi.clear();
                    hi.extend_from_slice(v);
                }
            }
        }
    }
}

/// One column chunk being encoded: the pages so far, the page being filled, the dictionary.
pub struct ChunkEncoder {
    descr: ColumnDescPtr,
    source: Source,
    codec: Compression,
    nullable: bool,
    /// Values are dictionary indices until the dictionary passes [`DICTIONARY_BYTES`].
    dictionary: Option<Dictionary>,
    /// Each chunk starts with a dictionary (unless the column is plain).
    with_dictionary: bool,
    /// The dictionary given up: the pages from here on are plain, and its page is still
    /// written for the pages before.
    given_up: Option<Dictionary>,
    /// The page being filled: its definition levels (one byte a row, if nullable), its plain
    /// values or its dictionary indices.
    levels: Vec<u8>,
    plain: Vec<u8>,
    indices: Vec<u32>,
    page_values: usize,
    /// The page's bytes, when they are more than `plain` (levels, or indices).
    page: Vec<u8>,
    /// Pages done, compressed, in order (the dictionary page goes before them on close).
    pages: Vec<CompressedPage>,
    stats: Vec<PageEncodingStats>,
    bounds: Bounds,
    rows: u64,
    buffered: usize,
    /// How this column's plain pages are compressed, once the start of its first large one has
    /// been tried both ways ([`Compressor::compress_plain`]); kept for the rest of the file.
    quick: Option<bool>,
}

impl ChunkEncoder {
    /// An encoder for a column of Arrow type `t` into `descr`, with the codec and dictionary
    /// setting `props` give the column; `None` if the column is not one of ours.
    pub fn new(t: &DataType, descr: ColumnDescPtr, props: &WriterProperties) -> Option<ChunkEncoder> {
        let codec = props.compression(descr.path());
        if !matches!(codec, Compression::UNCOMPRESSED | Compression::ZSTD(_)) {
            return None;
        }
        let plain = !props.dictionary_enabled(descr.path());
        let source = Source::of(t, &descr)?;
        Some(ChunkEncoder {
            nullable: descr.max_def_level() == 1,
            descr,
            source,
            codec,
            dictionary: (!plain).then(Dictionary::default),
            with_dictionary: !plain,
            given_up: None,
            levels: Vec::new(),
            plain: Vec::new(),
            indices: Vec::new(),
            page_values: 0,
            page: Vec::new(),
            pages: Vec::new(),
            stats: Vec::new(),
            bounds: Bounds::default(),
            rows: 0,
            buffered: 0,
            quick: None,
        })
    }

    /// The encoded size held: pages done (compressed) and the page being filled.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered + self.page_bytes()
    }

    fn page_bytes(&self) -> usize {
        self.plain.len() + self.indices.len() * 4 + self.levels.len() / 8
    }

    /// Appends `array`'s values (its type is the one the encoder was made for), a segment of
    /// at most [`CHECK_EVERY`] rows at a time, the page's size checked after each.
    pub fn write(&mut self, array: &dyn Array, zstd: &mut Compressor) -> Result<()> {
        let n = array.len();
        self.rows += n as u64;
        let nulls = array.logical_nulls().filter(|b| b.null_count() > 0);
        if !self.nullable && nulls.is_some() {
            return Err(ParquetError::General(format!(
                "column `{}` is required but its batch holds nulls",
                self.descr.path()
            )));
        }
        self.bounds.nulls += nulls.as_ref().map_or(0, |b| b.null_count()) as u64;
        let data = array.to_data();
        let mut at = 0;
        while at < n {
            let mut take = (n - at).min(CHECK_EVERY);
            if self.source == Source::Utf8 {
                // A segment of long strings is cut so that a page passes its size by little.
                let offsets = data.buffer::<i32>(0);
                while take > 1 && (offsets[at + take] - offsets[at]) as usize > PAGE_BYTES {
                    take /= 2;
                }
            }
            let rows = at..at + take;
            if let (true, Some(b)) = (self.nullable, &nulls) {
                self.levels.extend(rows.clone().map(|i| b.is_valid(i) as u8));
            } else if self.nullable {
                self.levels.resize(self.levels.len() + take, 1);
            }
            let valid = |i: &usize| nulls.as_ref().is_none_or(|b| b.is_valid(*i));
            match self.source {
                Source::I64 => {
                    let values = &data.buffer::<i64>(0)[rows.clone()];
                    match &nulls {
                        None if self.dictionary.is_none() && cfg!(target_endian = "little") => {
                            // The values' bytes are the page's (Parquet and this machine are both
                            // little-endian).
                            let (lo, hi) = values.iter().fold((i64::MAX, i64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                            self.bounds.int(lo);
                            self.bounds.int(hi);
                            self.plain.extend_from_slice(values.to_byte_slice());
                        }
                        None => self.put_ints(values.iter().copied()),
                        Some(_) => self.put_ints(rows.filter(valid).map(|i| values[i - at])),
                    }
                }
                Source::I32 => {
                    let values = &data.buffer::<i32>(0)[rows.clone()];
                    match &nulls {
                        None => self.put_ints(values.iter().map(|&v| i64::from(v))),
                        Some(_) => self.put_ints(rows.filter(valid).map(|i| i64::from(values[i - at]))),
                    }
                }
                Source::Decimal64 | Source::Decimal32 => {
                    // The precision keeps every unscaled value within the column's width.
                    let values = &data.buffer::<i128>(0)[rows.clone()];
                    match &nulls {
                        None => self.put_ints(values.iter().map(|&v| v as i64)),
                        Some(_) => self.put_ints(rows.filter(valid).map(|i| values[i - at] as i64)),
                    }
                }
                Source::Utf8 => {
                    let offsets = data.buffer::<i32>(0);
                    let bytes = data.buffers()[1].as_slice();
                    let value = |i: usize| (offsets[i] as usize, offsets[i + 1] as usize);
                    match &nulls {
                        None => self.put_strings(bytes, rows.map(value)),
                        Some(_) => self.put_strings(bytes, rows.filter(valid).map(value)),
                    }
                }
            }
            self.page_values += take;
            at += take;
            self.check_sizes(zstd)?;
        }
        Ok(())
    }

    /// Integers (as `i64`, written in the column's width): indices into the dictionary, or
    /// plain with their min and max.
    fn put_ints(&mut self, values: impl Iterator<Item = i64> + Clone) {
        let wide = matches!(self.source, Source::I64 | Source::Decimal64);
        match &mut self.dictionary {
            Some(d) => {
                for v in values {
                    let index = d.intern_word(u128::from(v as u64), |out| {
                        if wide {
                            out.extend_from_slice(&v.to_le_bytes())
                        } else {
                            out.extend_from_slice(&(v as i32).to_le_bytes())
                        }
                    });
                    self.indices.push(index);
                }
            }
            None => {
                let (lo, hi) = values.clone().fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
                if lo <= hi {
                    self.bounds.int(lo);
                    self.bounds.int(hi);
                }
                if wide {
                    self.plain.extend(values.flat_map(i64::to_le_bytes));
                } else {
                    self.plain.extend(values.flat_map(|v| (v as i32).to_le_bytes()));
                }
            }
        }
    }

    /// Strings, as spans of `bytes`: indices into the dictionary, or plain with their min and
    /// max.
    fn put_strings(&mut self, bytes: &[u8], spans: impl Iterator<Item = (usize, usize)>) {
        match &mut self.dictionary {
            Some(d) => {
                for (start, end) in spans {
                    let len = end - start;
                    let index = if len <= WORD_BYTES && start + 16 <= bytes.len() {
                        // The string and what follows it as one load, what follows masked off:
                        // the same word as `string_word`.
                        let word = u128::from_le_bytes(bytes[start..start + 16].try_into().expect("16 bytes"));
                        let word = (word & ((1u128 << (8 * len)) - 1)) | ((len as u128) << 120);
                        d.intern_word(word, |out| put_bytes(out, &bytes[start..end]))
                    } else {
                        d.intern_bytes(&bytes[start..end])
                    };
                    self.indices.push(index);
                }
            }
            None => {
                for (start, end) in spans {
                    let v = &bytes[start..end];
                    self.bounds.bytes(v);
                    put_bytes(&mut self.plain, v);
                }
            }
        }
    }

    /// Closes the page once it is full, and gives the dictionary up once it is too large.
    fn check_sizes(&mut self, zstd: &mut Compressor) -> Result<()> {
        let too_large = self.dictionary.as_ref().is_some_and(|d| d.plain.len() > DICTIONARY_BYTES);
        if too_large || self.page_bytes() >= PAGE_BYTES || self.page_values >= PAGE_ROWS {
            self.flush_page(zstd)?;
        }
        if too_large {
            self.give_up_dictionary();
        }
        Ok(())
    }

    /// From here on the values are written plain; the dictionary's values go into the
    /// statistics now (the pages written with it stay as they are).
    fn give_up_dictionary(&mut self) {
        if let Some(mut d) = self.dictionary.take() {
            self.bounds.dictionary(self.source, &d);
            d.words = Words::default();
            d.strings = Strings::default();
            self.given_up = Some(d);
        }
    }

    fn encoding(&self) -> Encoding {
        if self.dictionary.is_some() { Encoding::RLE_DICTIONARY } else { Encoding::PLAIN }
    }

    fn flush_page(&mut self, zstd: &mut Compressor) -> Result<()> {
        if self.page_values == 0 {
            return Ok(());
        }
        let encoding = self.encoding();
        let data = if !self.nullable && encoding == Encoding::PLAIN {
            // A required column's plain page is its values alone: compressed where they are.
            &self.plain
        } else {
            let buf = &mut self.page;
            buf.clear();
            if self.nullable {
                buf.extend_from_slice(&[0; 4]);
                hybrid(buf, &self.levels, 1);
                let len = (buf.len() - 4) as u32;
                buf[..4].copy_from_slice(&len.to_le_bytes());
            }
            if encoding == Encoding::RLE_DICTIONARY {
                let len = self.dictionary.as_ref().map_or(0, |d| d.len);
                let bits = bit_width(len.saturating_sub(1));
                buf.push(bits);
                hybrid(buf, &self.indices, bits);
            } else {
                buf.extend_from_slice(&self.plain);
            }
            &self.page
        };
        let buf = match encoding {
            Encoding::PLAIN => zstd.compress_plain(data, self.codec, &mut self.quick)?,
            _ => zstd.compress(data, self.codec)?,
        };
        let page = Page::DataPage {
            buf,
            num_values: self.page_values as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let page = CompressedPage::new(page, data.len());
        self.buffered += page.compressed_size();
        count_page(&mut self.stats, PageType::DATA_PAGE, encoding);
        self.pages.push(page);
        self.levels.clear();
        self.plain.clear();
        self.indices.clear();
        self.page_values = 0;
        Ok(())
    }

    /// The chunk's bytes (the dictionary page, then the data pages, each with its header) and
    /// what the row group needs to know of them. The encoder starts the next chunk, its
    /// buffers kept.
    pub fn close(&mut self, zstd: &mut Compressor) -> Result<(Bytes, ColumnCloseResult)> {
        self.flush_page(zstd)?;
        let mut sink = TrackedWrite::new(Vec::with_capacity(self.buffered + 64 * (self.pages.len() + 1)));
        let mut writer = SerializedPageWriter::new(&mut sink);
        let (mut compressed, mut uncompressed, mut values) = (0i64, 0i64, 0i64);
        let mut dictionary_offset = None;
        let mut stats = Vec::with_capacity(self.stats.len() + 1);
        let mut bounds = std::mem::take(&mut self.bounds);
        if let Some(d) = &self.dictionary {
            bounds.dictionary(self.source, d);
        }
        if let Some(mut d) = self.dictionary.take().or(self.given_up.take()) {
            let page = Page::DictionaryPage {
                buf: zstd.compress(&d.plain, self.codec)?,
                num_values: d.len,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            };
            let page = CompressedPage::new(page, d.plain.len());
            let spec = writer.write_page(page)?;
            dictionary_offset = Some(spec.offset as i64);
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            count_page(&mut stats, PageType::DICTIONARY_PAGE, Encoding::PLAIN);
            d.words.clear();
            d.strings.clear();
            d.plain.clear();
            d.len = 0;
            self.dictionary = self.with_dictionary.then_some(d);
        }
        stats.append(&mut self.stats);
        let mut data_offset = None;
        let mut locations = Vec::with_capacity(self.pages.len());
        for page in self.pages.drain(..) {
            let spec = writer.write_page(page)?;
            data_offset.get_or_insert(spec.offset as i64);
            locations.push(PageLocation {
                offset: spec.offset as i64,
                compressed_page_size: spec.compressed_size as i32,
                first_row_index: values,
            });
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            values += i64::from(spec.num_values);
        }
        writer.close()?;
        let bytes = Bytes::from(sink.into_inner()?);
        // The levels' encoding is listed whether or not there are levels, as arrow-rs does.
        let mut encodings: Vec<Encoding> = stats.iter().map(|s| s.encoding).collect();
        encodings.push(Encoding::RLE);
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(self.codec)
            .set_encodings_mask(parquet::basic::EncodingMask::new_from_encodings(encodings.iter()))
            .set_page_encoding_stats(stats)
            .set_total_compressed_size(compressed)
            .set_total_uncompressed_size(uncompressed)
            .set_num_values(values)
            .set_data_page_offset(data_offset.unwrap_or(0))
            .set_dictionary_page_offset(dictionary_offset)
            .set_statistics(statistics(self.source, bounds))
            .build()?;
        let result = ColumnCloseResult {
            bytes_written: compressed as u64,
            rows_written: std::mem::take(&mut self.rows),
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: locations,
                unencoded_byte_array_data_bytes: None,
            }),
        };
        self.buffered = 0;
        Ok((bytes, result))
    }
}

fn count_page(stats: &mut Vec<PageEncodingStats>, page_type: PageType, encoding: Encoding) {
    match stats.last_mut() {
        Some(s) if s.page_type == page_type && s.encoding == encoding => s.count += 1,
        _ => stats.push(PageEncodingStats { page_type, encoding, count: 1 }),
    }
}

enum Plain<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

/// Calls `f` with each of the `n` PLAIN-encoded values in `plain`.
fn for_each_plain(source: Source, plain: &[u8], n: u32, mut f: impl FnMut(Plain<'_>)) {
    let mut at = 0;
    for _ in 0..n {
        match source {
            Source::I64 | Source::Decimal64 => {
                f(Plain::Int(i64::from_le_bytes(plain[at..at + 8].try_into().expect("8 bytes"))));
                at += 8;
            }
            Source::I32 | Source::Decimal32 => {
                f(Plain::Int(i64::from(i32::from_le_bytes(plain[at..at + 4].try_into().expect("4 bytes")))));
                at += 4;
            }
            Source::Utf8 => {
                let len = u32::from_le_bytes(plain[at..at + 4].try_into().expect("4 bytes")) as usize;
                f(Plain::Bytes(&plain[at + 4..at + 4 + len]));
                at += 4 + len;
            }
        }
    }
}

/// The column statistics arrow-rs writes: min, max and the null count; strings' min and max
/// only when both are at most [`STATISTICS_BYTES`] long.
fn statistics(source: Source, b: Bounds) -> Statistics {
    let nulls = Some(b.nulls);
    match source {
        Source::I64 | Source::Decimal64 => Statistics::Int64(
            ValueStatistics::new(b.int.map(|m| m.0), b.int.map(|m| m.1), None, nulls, false)
                .with_backwards_compatible_min_max(true),
        ),
        Source::I32 | Source::Decimal32 => Statistics::Int32(
            ValueStatistics::new(b.int.map(|m| m.0 as i32), b.int.map(|m| m.1 as i32), None, nulls, false)
                .with_backwards_compatible_min_max(true),
        ),
        Source::Utf8 => {
            let (lo, hi) = match b.bytes {
                Some((lo, hi)) if lo.len() <= STATISTICS_BYTES && hi.len() <= STATISTICS_BYTES => {
                    (Some(ByteArray::from(lo)), Some(ByteArray::from(hi)))
                }
                _ => (None, None),
            };
            Statistics::ByteArray(ValueStatistics::new(lo, hi, None, nulls, false))
        }
    }
}

/// Bits to hold every value up to `max`.
fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

/// Appends `n` values in Parquet's RLE / bit-packing hybrid encoding of `bits` bits a value:
/// a run of 8 or more equal values as one RLE run, the rest bit-packed in groups of 8 (at
/// most 63 groups a run, as parquet-mr writes them).
fn hybrid<T: Copy + Eq + Into<u32>>(out: &mut Vec<u8>, values: &[T], bits: u8) {
    let n = values.len();
    let run_at = |i: usize| -> usize {
        let v = values[i];
        values[i..].iter().take_while(|&&x| x == v).count()
    };
    let value_bytes = usize::from(bits).div_ceil(8);
    let mut i = 0;
    while i < n {
        let run = run_at(i);
        if run >= 8 {
            crate::leb128::write((run as u64) << 1, |b| out.push(b));
            out.extend_from_slice(&values[i].into().to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // Bit-packed groups of 8 until a run of 8 equal values starts a group, or 63 groups.
        let start = i;
        let mut groups = 0usize;
        while i < n && groups < 63 {
            i += 8;
            groups += 1;
            if i < n && run_at(i) >= 8 {
                break;
            }
        }
        crate::leb128::write(((groups as u64) << 1) | 1, |b| out.push(b));
        pack(out, &values[start..i.min(n)], groups * 8, bits);
        i = i.min(n);
    }
}

/// Packs `values` (zero-padded to `count`) `bits` bits each, least significant bit first.
fn pack<T: Copy + Into<u32>>(out: &mut Vec<u8>, values: &[T], count: usize, bits: u8) {
    let mut acc: u64 = 0;
    let mut filled = 0u32;
    for k in 0..count {
        let v: u32 = values.get(k).map_or(0, |&v| v.into());
        acc |= u64::from(v) << filled;
        filled += u32::from(bits);
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// One zstd context for every page of a file (arrow-rs makes one a column chunk), and the
/// buffer pages are compressed into before they are copied out at their size.
#[derive(Default)]
pub struct Compressor {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    out: Vec<u8>,
}

/// zstd's target length for the quick way of [`Compressor::compress_plain`]. For its fastest
/// strategy (that of level 1) a target length above 0 makes zstd skip more positions where it
/// finds no match and store literals as they are instead of Huffman-coding them.
const QUICK_TARGET_LENGTH: u32 = 2;

/// The bytes of a column's first large plain page that [`Compressor::compress_plain`]
/// compresses both ways to choose. On the 1e6 orders, 32 KiB chose as whole pages did, at a
/// fifth of the cost.
const TRIAL_BYTES: usize = 32 << 10;

impl Compressor {
    /// `data` as stored with `codec`: zstd at its level, or as it is (the two codecs
    /// [`ChunkEncoder::new`] takes).
    fn compress(&mut self, data: &[u8], codec: Compression) -> Result<Bytes> {
        let Compression::ZSTD(level) = codec else { return Ok(Bytes::copy_from_slice(data)) };
        self.compress_into(data, level.compression_level(), false)?;
        Ok(Bytes::copy_from_slice(&self.out))
    }

    /// A plain data page of a column, compressed at level 1 the usual way or the quick way
    /// ([`QUICK_TARGET_LENGTH`]), as `quick` says. While it says nothing, the first
    /// [`TRIAL_BYTES`] of a page of at least twice that are compressed both ways, and `quick`
    /// keeps the answer (the quick way if it is no larger) for this page and the column's
    /// others; smaller pages go the usual way, so that a short file pays for no trial. Other
    /// levels and codecs as [`Compressor::compress`].
    ///
    /// Why: the quick way takes about a third less time, and for some columns it is also the
    /// smaller (of the 1e6 orders, the customer ids and prices: 3.02 and 2.70 MB instead of
    /// 3.46 and 2.78, where Huffman-coding the literals gained less than the shorter steps
    /// lost); for others it is much larger (the timestamps 3.70 MB instead of 3.01, the order
    /// ids stored as they are). The start of a page says which it is; trying every page both
    /// ways would cost more than the quick way saves.
    fn compress_plain(&mut self, data: &[u8], codec: Compression, quick: &mut Option<bool>) -> Result<Bytes> {
        if !matches!(codec, Compression::ZSTD(level) if level.compression_level() == 1) {
            return self.compress(data, codec);
        }
        if quick.is_none() && data.len() >= 2 * TRIAL_BYTES {
            let trial = &data[..TRIAL_BYTES];
            self.compress_into(trial, 1, false)?;
            let usual = self.out.len();
            self.compress_into(trial, 1, true)?;
            *quick = Some(self.out.len() <= usual);
        }
        self.compress_into(data, 1, quick.unwrap_or(false))?;
        Ok(Bytes::copy_from_slice(&self.out))
    }

    /// `data` compressed with zstd at `level` into `self.out`; at level 1, the quick way if
    /// `quick` (setting a parameter is storing it: no need to remember what the context has).
    fn compress_into(&mut self, data: &[u8], level: i32, quick: bool) -> Result<()> {
        let zstd = match &mut self.zstd {
            Some(z) => z,
            None => {
                let mut z = zstd::bulk::Compressor::new(level)?;
                if level == 1 {
                    small_window_parameters(&mut z)?;
                }
                self.zstd.insert(z)
            }
        };
        if level == 1 {
            let target = if quick { QUICK_TARGET_LENGTH } else { 0 };
            zstd.set_parameter(zstd::zstd_safe::CParameter::TargetLength(target))?;
        }
        self.out.clear();
        self.out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        zstd.compress_to_buffer(data, &mut self.out)?;
        Ok(())
    }
}

/// zstd's level 1 with a smaller window and hash table than zstd itself takes for a page: a
/// 128 KiB window, 4 Ki hash entries and matches of 5 bytes or more, where zstd's level 1 takes
/// 256 KiB, 16 Ki and 6 for the 160–280 KiB of a page of 20,000 rows (its parameters for inputs
/// of up to 256 KiB). The smaller table stays in the first-level cache, and the shorter matches
/// find more in the orders' timestamps. Chosen by measurement on the pages of the 1e6-row
/// orders file (its five plain columns, pages of 20,000 rows, one context a column, best of 7,
/// this machine, 2026-12-07): 110.3 ms for 18.80 MB at level 1, 103.5 ms for 18.45 MB with
/// these; level −1 took 91.9 ms for 23.02 MB, and literals left unpacked 95.0 ms for 22.93 MB.
/// In whole runs zstd's CPU went from 131 to 122 ms (4 runs each, one pinned core) and the file
/// from 19.66 to 19.31 MB; decompressing the pages takes 45.2 ms instead of 43.1 (more, shorter
/// matches), which a load that reads the staging file back does not show (`benches/natives.sh`).
fn small_window_parameters(z: &mut zstd::bulk::Compressor<'static>) -> std::io::Result<()> {
    use zstd::zstd_safe::CParameter;
    z.set_parameter(CParameter::WindowLog(17))?;
    z.set_parameter(CParameter::HashLog(12))?;
    z.set_parameter(CParameter::MinMatch(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift generator of test data from `seed` (not 0).
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Decodes the hybrid encoding back (the reader's side, written from the format's spec).
    fn unhybrid(mut b: &[u8], n: usize, bits: u8) -> Vec<u32> {
        let mut out = Vec::new();
        let value_bytes = usize::from(bits).div_ceil(8);
        while out.len() < n {
            let (header, used) = crate::leb128::read(b);
            b = &b[used..];
            if header & 1 == 0 {
                let run = (header >> 1) as usize;
                let mut v = [0u8; 4];
                v[..value_bytes].copy_from_slice(&b[..value_bytes]);
                b = &b[value_bytes..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(v), run));
            } else {
                let count = (header >> 1) as usize * 8;
                let bytes = count * usize::from(bits) / 8;
                let (packed, rest) = b.split_at(bytes);
                b = rest;
                for k in 0..count {
                    let mut v = 0u32;
                    for bit in 0..usize::from(bits) {
                        let at = k * usize::from(bits) + bit;
                        v |= u32::from((packed[at / 8] >> (at % 8)) & 1) << bit;
                    }
                    out.push(v);
                }
            }
        }
        out.truncate(n);
        out
    }

    /// A page is compressed with a window of 128 KiB, which its frame header says (zstd's own
    /// level 1 would make the whole page one segment of 256 KiB), and decompresses to the page.
    #[test]
    fn pages_are_compressed_with_a_small_window() {
        let page: Vec<u8> =
            (0..25_000u64).flat_map(|i| (1_700_000_000_000_000 + i * 5_000_000).to_le_bytes()).collect();
        let mut zstd = Compressor::default();
        let level = parquet::basic::ZstdLevel::try_new(1).expect("a level");
        let frame = zstd.compress(&page, Compression::ZSTD(level)).expect("compressed");
        assert_eq!(zstd::bulk::decompress(&frame, page.len()).expect("a zstd frame"), page);
        // The frame header (RFC 8878, 3.1.1.1): magic number, descriptor, then the window
        // descriptor unless the frame is a single segment.
        let descriptor = frame[4];
        assert_eq!(descriptor & 0x20, 0, "not a single segment of the whole page");
        let exponent = u32::from(frame[5] >> 3) + 10;
        let window = (1u64 << exponent) + (1u64 << exponent) / 8 * u64::from(frame[5] & 7);
        assert_eq!(window, 128 << 10);
    }

    /// A column's first page of at least twice [`TRIAL_BYTES`] is tried both ways on its first
    /// [`TRIAL_BYTES`]; that page and the column's later ones go the way that was no larger
    /// there (the quick one on a tie); a smaller page before it goes the usual way and decides
    /// nothing; every frame decompresses to its page. Columns of both kinds are among the
    /// samples, so a choice made always one way fails.
    #[test]
    fn a_columns_plain_pages_go_the_quick_way_only_where_it_is_no_larger() {
        let mut next = xorshift(11);
        let level = Compression::ZSTD(parquet::basic::ZstdLevel::try_new(1).expect("a level"));
        let page = |rows: u64, f: &mut dyn FnMut(u64) -> u64| -> Vec<u8> {
            (0..rows).flat_map(|i| f(i).to_le_bytes()).collect()
        };
        let digits = |n: u64| u64::from_le_bytes(std::array::from_fn(|k| b'0' + ((n >> (4 * k)) % 10) as u8));
        let columns: Vec<(&str, [Vec<u8>; 3])> = vec![
            (
                "ids below 2^21",
                [
                    page(1_000, &mut |_| next() % (1 << 21)),
                    page(20_000, &mut |_| next() % (1 << 21)),
                    page(20_000, &mut |_| next() % (1 << 21)),
                ],
            ),
            (
                "timestamps 5 s apart",
                [
                    page(1_000, &mut |i| 1_600_000_000_000_000 + i * 5_000_000),
                    page(20_000, &mut |i| 1_700_000_000_000_000 + i * 5_000_000),
                    page(20_000, &mut |i| 1_700_100_000_000_000 + i * 5_000_000),
                ],
            ),
            (
                "random words",
                [page(1_000, &mut |_| next()), page(20_000, &mut |_| next()), page(20_000, &mut |_| next())],
            ),
            (
                "digits as text",
                [
                    page(1_000, &mut |_| digits(next())),
                    page(20_000, &mut |_| digits(next())),
                    page(20_000, &mut |_| digits(next())),
                ],
            ),
        ];
        let size = |p: &[u8], quick: bool| {
            let mut z = Compressor::default();
            z.compress_into(p, 1, quick).expect("compressed");
            z.out.len()
        };
        let mut chosen = Vec::new();
        for (name, [small, first, second]) in &columns {
            let mut zstd = Compressor::default();
            let mut way = None;
            let frame = zstd.compress_plain(small, level, &mut way).expect("compressed");
            assert_eq!(way, None, "{name}: a small page decides nothing");
            assert_eq!(frame.len(), size(small, false), "{name}: a small page goes the usual way");
            assert_eq!(zstd::bulk::decompress(&frame, small.len()).expect("a zstd frame"), *small);
            let trial = &first[..TRIAL_BYTES];
            let (usual, quick) = (size(trial, false), size(trial, true));
            let frame = zstd.compress_plain(first, level, &mut way).expect("compressed");
            assert_eq!(way, Some(quick <= usual), "{name}: {quick} bytes the quick way, {usual} the usual way");
            assert_eq!(frame.len(), size(first, quick <= usual), "{name}: the page goes the way chosen");
            assert_eq!(zstd::bulk::decompress(&frame, first.len()).expect("a zstd frame"), *first);
            let frame = zstd.compress_plain(second, level, &mut way).expect("compressed");
            assert_eq!(frame.len(), size(second, quick <= usual), "{name}: the next page goes the same way");
            assert_eq!(zstd::bulk::decompress(&frame, second.len()).expect("a zstd frame"), *second);
            chosen.push(quick <= usual);
        }
        assert!(chosen.contains(&true) && chosen.contains(&false), "both ways among the samples: {chosen:?}");
    }

    #[test]
    fn the_hybrid_encoding_decodes_back_for_runs_and_mixes_of_every_width() {
        let mut next = xorshift(7);
        for bits in [1u8, 2, 3, 5, 8, 9, 13, 17, 24, 32] {
            let max = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
            for n in [1usize, 7, 8, 9, 63, 64, 100, 504, 505, 1000, 5000] {
                // Random runs of random lengths (1 to 40) of values up to `max`.
                let mut values = Vec::with_capacity(n);
                while values.len() < n {
                    let v = (next() as u32) & max;
                    let run = 1 + (next() % 40) as usize;
                    values.extend(std::iter::repeat_n(v, run.min(n - values.len())));
                }
                let mut out = Vec::new();
                hybrid(&mut out, &values, bits);
                assert_eq!(unhybrid(&out, n, bits), values, "{bits} bits, {n} values");
            }
        }
    }

    #[test]
    fn a_string_loaded_with_its_neighbours_is_the_word_of_the_string_alone() {
        let bytes = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for start in 0..8 {
            for len in 0..=WORD_BYTES {
                let end = start + len;
                let word = u128::from_le_bytes(bytes[start..start + 16].try_into().unwrap());
                let word = (word & ((1u128 << (8 * len)) - 1)) | ((len as u128) << 120);
                assert_eq!(word, string_word(&bytes[start..end]), "{start}..{end}");
            }
        }
        // Lengths tell apart strings whose bytes are a prefix of another's (and the empty one).
        assert_ne!(string_word(b""), string_word(b"\0"));
        assert_ne!(string_word(b"ab"), string_word(b"ab\0"));
    }

    #[test]
    fn every_dictionary_hashes_with_keys_of_its_own() {
        // Two dictionaries place the same values differently: strings chosen against one
        // cannot be chosen against the next.
        let (a, b) = (Dictionary::default(), Dictionary::default());
        for v in [string_word(b"USD"), string_word(b""), 7u128] {
            assert_ne!(a.words.hasher().hash_one(v), b.words.hasher().hash_one(v));
        }
        let long: &[u8] = b"a string longer than one word";
        assert_ne!(a.strings.hasher().hash_one(long), b.strings.hasher().hash_one(long));
    }

    #[test]
    fn bit_widths_hold_the_largest_index() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(7), 3);
        assert_eq!(bit_width(8), 4);
        assert_eq!(bit_width(u32::MAX), 32);
    }
}
