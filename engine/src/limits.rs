//! The resource bounds of one file job: whatever the input, the job stays within them or
//! rejects the file with a [`FileProblem`](crate::validate::FileProblem) that names the bound.
//!
//! Every bound is relative to something the operator controls (the stored size of the input,
//! a fixed number of bytes), never to a guess made from the data: a hostile file chooses its
//! own density, padding and compression ratio.

/// Bounds of one file job. [`Limits::default`] is what `glueless.toml` gets without a
/// `[limits]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory for the transform's DataFusion pool, in bytes (`[limits] memory_mb` / 2); a query that needs more (and
    /// cannot spill) fails the file with "Resources exhausted". Default 128 MiB: half of the
    /// 256 MB budget of a file job, the rest being the key indexes ([`Limits::key_index_bytes`],
    /// an eighth), the reader, the batches in flight and the Parquet row group being encoded.
    pub transform_memory_bytes: usize,
    /// Memory for the file's in-file key indexes (`primaryKey` and `unique`, shared equally),
    /// in bytes (`[limits] memory_mb` / 8): past it, an index spills its keys to sorted runs in
    /// the OS temp dir (`TMPDIR`), removed when the file is done. Default 32 MiB, about two
    /// million integer keys in memory.
    pub key_index_bytes: usize,
    /// A record (with its quoted newlines) longer than this rejects the file: almost always a
    /// quote that is never closed. Also bounds each line skipped by `dialect.skip_lines`.
    /// Checked while a record is incomplete, so a value below one read (1 MiB) acts as 1 MiB.
    /// Default 64 MiB.
    pub max_record_bytes: usize,
    /// An Arrow batch is handed on once its rows hold this many bytes of text, whatever its row
    /// count. Keeps a batch's 32-bit string offsets from overflowing (with `max_record_bytes`,
    /// at most 1 GiB + 1 GiB < 2 GiB) and bounds the memory of batches in flight. Default 16 MiB.
    pub batch_bytes: usize,
    /// Row errors kept per rejected row; past it, one last `too-many-errors` error says how many
    /// more there were. Default 100.
    pub max_row_errors: usize,
    /// Columns a header may have. Cells past the header's width are counted, not kept (they
    /// become one `extra-cell` error per row). Default 1,048,576.
    pub max_columns: usize,
    /// A compressed input may decompress to at most `decompressed_ratio` times its stored size
    /// plus `decompressed_floor_bytes`. Defaults 200 and 1 GiB (gzip's own limit is 1032:1).
    pub decompressed_ratio: u64,
    pub decompressed_floor_bytes: u64,
    /// The quarantine of a file may hold at most `quarantine_ratio` times the (decompressed)
    /// bytes read plus `quarantine_floor_bytes`. Defaults 8 and 64 MiB: a rejected row is its
    /// raw text plus about 150 bytes per error, so only rows of a few bytes each with errors
    /// (blank lines, stray delimiters) come near it.
    pub quarantine_ratio: u64,
    pub quarantine_floor_bytes: u64,
}

/// A record can be at most this long whatever the configuration: `Cell` offsets are 32-bit and
/// a batch's string offsets are signed 32-bit, so a record and a batch together stay below 2 GiB.
pub const MAX_RECORD_BYTES_CAP: usize = 1 << 30;
/// The largest `batch_bytes` (see [`MAX_RECORD_BYTES_CAP`]).
pub const BATCH_BYTES_CAP: usize = (1 << 30) - (1 << 20);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            transform_memory_bytes: 128 << 20,
            key_index_bytes: 32 << 20,
            max_record_bytes: crate::job::MAX_RECORD_BYTES,
            batch_bytes: 16 << 20,
            max_row_errors: 100,
            max_columns: 1 << 20,
            decompressed_ratio: 200,
            decompressed_floor_bytes: 1 << 30,
            quarantine_ratio: 8,
            quarantine_floor_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The same limits with every value brought into the range the engine can honour (at least
    /// 1; records and batches below the 32-bit offset caps).
    pub fn clamped(self) -> Limits {
        Limits {
            transform_memory_bytes: self.transform_memory_bytes.max(1 << 20),
            key_index_bytes: self.key_index_bytes.max(1 << 16),
            max_record_bytes: self.max_record_bytes.clamp(1, MAX_RECORD_BYTES_CAP),
            batch_bytes: self.batch_bytes.clamp(1, BATCH_BYTES_CAP),
            max_row_errors: self.max_row_errors.max(2),
            max_columns: self.max_columns.max(1),
            ..self
        }
    }

    /// The most bytes an input stored as `stored` bytes may decompress to.
    pub fn max_decompressed(&self, stored: u64) -> u64 {
        self.decompressed_ratio.saturating_mul(stored).saturating_add(self.decompressed_floor_bytes)
    }

    /// The most quarantine bytes allowed after reading `decompressed` bytes of text.
    pub fn max_quarantine(&self, decompressed: u64) -> u64 {
        self.quarantine_ratio.saturating_mul(decompressed).saturating_add(self.quarantine_floor_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping_keeps_a_record_and_a_batch_below_32_bit_offsets() {
        let l = Limits { max_record_bytes: usize::MAX, batch_bytes: usize::MAX, ..Limits::default() }.clamped();
        assert!(l.max_record_bytes + l.batch_bytes < i32::MAX as usize);
        assert_eq!(Limits::default().clamped(), Limits::default());
    }

    #[test]
    fn bounds_are_relative_to_the_input_plus_a_floor() {
        let l = Limits::default();
        assert_eq!(l.max_decompressed(5_000), 200 * 5_000 + (1 << 30));
        assert_eq!(l.max_quarantine(0), 64 << 20);
        assert_eq!(l.max_decompressed(u64::MAX), u64::MAX);
    }
}
