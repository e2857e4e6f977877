//! The on-disk part of a key index: sorted runs of keys that no longer fit in its memory budget.
//!
//! A run is one unnamed temporary file (removed when closed, whatever happens) of entries sorted
//! by their 64-bit key: `key u64, line u32` for exact (integer) keys, plus `len u32, bytes` for
//! text and composite keys. In memory a run keeps a Bloom filter (10 bits a key, one cache line
//! a lookup) and a sparse fence index (the first key of each block of about 1 KiB), so a lookup
//! of a key that is not in the run costs one cache line, and one that may be reads one or two
//! blocks with `pread`: the blocks stay in the page cache, which is not the process's memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bytes of a block between two fences: a false positive of the filter reads and scans one
/// (4 KiB blocks made that a third of the time at 3e7 keys).
const BLOCK: u64 = 1024;
/// Bloom filter bits a key (6 bits set a key: about 1 % false positives).
const BLOOM_BITS: usize = 10;

/// The temp directory of one index's runs: made on the first spill, removed (with anything
/// left in it) when the index is dropped, also while a panic unwinds.
#[derive(Default)]
pub(super) struct SpillDir {
    /// Where to make it; `None` is the OS temp dir (`TMPDIR`).
    base: Option<PathBuf>,
    dir: Option<tempfile::TempDir>,
}

impl SpillDir {
    /// Makes the directory in `base` (`None`: the OS temp dir), unless it is made already.
    pub(super) fn set_base(&mut self, base: Option<PathBuf>) {
        if self.dir.is_none() {
            self.base = base;
        }
    }

    /// Where runs go (or would go).
    pub(super) fn location(&self) -> PathBuf {
        match (&self.dir, &self.base) {
            (Some(d), _) => d.path().to_path_buf(),
            (None, Some(b)) => b.clone(),
            (None, None) => std::env::temp_dir(),
        }
    }

    /// A new unnamed file in the directory, which is made first if need be.
    fn file(&mut self) -> io::Result<File> {
        if self.dir.is_none() {
            let base = self.base.clone().unwrap_or_else(std::env::temp_dir);
            self.dir = Some(tempfile::Builder::new().prefix("glueless-keys-").tempdir_in(base)?);
        }
        tempfile::tempfile_in(self.dir.as_ref().expect("made above").path())
    }

    #[cfg(test)]
    pub(super) fn path(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

/// A blocked Bloom filter: each key sets 6 bits in one 512-bit block.
struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    fn new(keys: usize) -> Self {
        let blocks = (keys * BLOOM_BITS).div_ceil(512).max(1);
        Bloom { words: vec![0; blocks * 8] }
    }

    /// The block and the bits of `k` (a well-mixed key).
    fn bits(&self, k: u64) -> (usize, [u16; 6]) {
        let blocks = self.words.len() / 8;
        let block = ((k as u128 * blocks as u128) >> 64) as usize;
        let h = (k ^ (k >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (block, std::array::from_fn(|i| ((h >> (10 + 9 * i)) & 511) as u16))
    }

    fn insert(&mut self, k: u64) {
        let (block, bits) = self.bits(k);
        for b in bits {
            self.words[block * 8 + b as usize / 64] |= 1 << (b % 64);
        }
    }

    fn prefetch(&self, k: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let block = ((k as u128 * (self.words.len() / 8) as u128) >> 64) as usize;
            let p = &self.words[block * 8] as *const u64 as *const i8;
            // SAFETY: a prefetch is a hint; it never faults, and `p` points into `words`.
            unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = k;
    }

    fn may_contain(&self, k: u64) -> bool {
        let (block, bits) = self.bits(k);
        bits.iter().all(|&b| self.words[block * 8 + b as usize / 64] & (1 << (b % 64)) != 0)
    }
}

/// The first key of a block and where the block starts.
struct Fence {
    first: u64,
    at: u64,
}

/// One sorted run on disk.
pub(super) struct Run {
    file: File,
    len: u64,
    /// Entries carry their key bytes (text and composite keys).
    text: bool,
    bloom: Bloom,
    fences: Vec<Fence>,
}

impl Run {
    /// Writes `entries` (sorted by key, `keys` of them) to a new file in `dir`.
    pub(super) fn write<'a>(
        dir: &mut SpillDir,
        text: bool,
        keys: usize,
        entries: impl Iterator<Item = (u64, u32, &'a [u8])>,
    ) -> io::Result<Run> {
        let mut out = BufWriter::with_capacity(64 << 10, dir.file()?);
        let (mut bloom, mut fences, mut at) = (Bloom::new(keys), Vec::new(), 0u64);
        for (k, line, bytes) in entries {
            if fences.last().is_none_or(|f: &Fence| at - f.at >= BLOCK) {
                fences.push(Fence { first: k, at });
            }
            bloom.insert(k);
            out.write_all(&k.to_le_bytes())?;
            out.write_all(&line.to_le_bytes())?;
            at += 12;
            if text {
                let n = u32::try_from(bytes.len()).map_err(|_| io::Error::other("a key longer than 4 GiB"))?;
                out.write_all(&n.to_le_bytes())?;
                out.write_all(bytes)?;
                at += 4 + bytes.len() as u64;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        fences.shrink_to_fit();
        Ok(Run { file, len: at, text, bloom, fences })
    }

    /// Starts loading the filter's block of `k` into the cache.
    pub(super) fn prefetch(&self, k: u64) {
        self.bloom.prefetch(k);
    }

    /// Memory this run keeps (its filter and fences).
    pub(super) fn bytes(&self) -> usize {
        self.bloom.words.capacity() * 8 + self.fences.capacity() * std::mem::size_of::<Fence>()
    }

    /// Bytes of the run on disk.
    pub(super) fn disk_bytes(&self) -> u64 {
        self.len
    }

    /// The line of the entry with key `k` and key bytes `bytes` (empty for exact keys), if the
    /// run has it. `buf` is scratch space for one block.
    pub(super) fn find(&self, k: u64, bytes: &[u8], buf: &mut Vec<u8>) -> io::Result<Option<u32>> {
        if !self.bloom.may_contain(k) {
            return Ok(None);
        }
        // Entries with key `k` start in the last block that starts below `k`, or later.
        let first = self.fences.partition_point(|f| f.first < k).saturating_sub(1);
        for b in first..self.fences.len() {
            let start = self.fences[b].at;
            let end = self.fences.get(b + 1).map_or(self.len, |f| f.at);
            buf.resize((end - start) as usize, 0);
            read_exact_at(&self.file, buf, start)?;
            let mut p = 0;
            while p < buf.len() {
                let ek = u64::from_le_bytes(buf[p..p + 8].try_into().expect("8 bytes"));
                let line = u32::from_le_bytes(buf[p + 8..p + 12].try_into().expect("4 bytes"));
                p += 12;
                let mut eb: &[u8] = &[];
                if self.text {
                    let n = u32::from_le_bytes(buf[p..p + 4].try_into().expect("4 bytes")) as usize;
                    eb = &buf[p + 4..p + 4 + n];
                    p += 4 + n;
                }
                if ek > k {
                    return Ok(None);
                }
                if ek == k && eb == bytes {
                    return Ok(Some(line));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

/// A spill that failed: the job stops (and can be retried) instead of going past its memory.
#[derive(Debug, thiserror::Error)]
#[error(
    "the primaryKey/unique index of this file outgrew its share of [limits] memory_mb and could not be spilled to disk in {dir}: {source}; free disk space there (or point TMPDIR to a larger disk), or raise [limits] memory_mb"
)]
pub struct KeyIndexError {
    pub dir: PathBuf,
    #[source]
    pub source: io::Error,
}

impl KeyIndexError {
    pub(super) fn new(dir: &Path, source: io::Error) -> Self {
        KeyIndexError { dir: dir.to_path_buf(), source }
    }
}
