//! Streaming decode: an object is read in chunks, decompressed by its key's suffix (`.gz`,
//! `.zst`), transcoded to UTF-8 (Latin-1 when the contract says so; a UTF-8 byte-order mark is
//! dropped) and cut into records by the [`tokenizer`]. Memory is one chunk plus the one
//! incomplete record carried into the next chunk, whatever the size of the file.

pub mod tokenizer;

use crate::contract::Encoding;
use crate::store::Location;
use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use futures::TryStreamExt;
use object_store::GetResultPayload;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadBuf};
use twox_hash::XxHash3_64;

/// Bytes requested from the source per read.
pub const CHUNK_BYTES: usize = 1 << 20;

/// How an object is compressed, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_key(key: &str) -> Self {
        let k = key.to_ascii_lowercase();
        if k.ends_with(".gz") || k.ends_with(".gzip") {
            Compression::Gzip
        } else if k.ends_with(".zst") || k.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A file-level read failure.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{url} does not exist (was it deleted before it was processed?)")]
    NotFound { url: String },
    #[error("cannot read {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot read {url}: {message}")]
    Io { url: String, message: String },
    #[error("{url} is not valid {compression:?} data: {message}")]
    Corrupt { url: String, compression: Compression, message: String },
    /// The store refuses to read it (a lake folder reads only regular files).
    #[error("{url} is not read: {reason}")]
    Refused { url: String, reason: String },
    /// The read was pinned to a version (`If-Match`) that the object no longer is.
    #[error("{url} is no longer the version registered (ETag {expected}): it was changed or replaced since")]
    Changed { url: String, expected: String },
}

impl DecodeError {
    /// Whether trying again later can help (a network error can; a corrupt object cannot).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DecodeError::Store { .. } | DecodeError::Io { .. })
    }
}

/// An open object being read as UTF-8 text.
pub struct Input {
    source: Source,
    url: String,
    compression: Compression,
    encoding: Encoding,
    /// Size of the stored object (compressed bytes).
    pub size: u64,
    /// The store's entity tag of the version being read, when it has one.
    pub e_tag: Option<String>,
    tally: Tally,
    /// Bytes out of the decompressor (before transcoding): what a bomb inflates.
    decompressed: u64,
    started: bool,
    latin1: Vec<u8>,
}

/// Where an input's bytes come from.
enum Source {
    /// A local file read as it is (no decompression), straight into the chunk's buffer: through
    /// `tokio::fs::File` every byte would be copied twice (it reads into a buffer of its own).
    /// `None` once a read lost the file: every later read is then an error, never an end of file.
    File(Option<std::fs::File>),
    /// Any other object, as a stream: decompressed, counted and fingerprinted on the way.
    Stream(Pin<Box<dyn AsyncRead + Send>>),
}

/// The stored bytes read so far, counted and fingerprinted wherever the read runs (the job's
/// task for a stream, the blocking pool for a local file).
#[derive(Clone)]
struct Tally {
    read: Arc<AtomicU64>,
    hash: Arc<Mutex<XxHash3_64>>,
}

impl Tally {
    fn add(&self, bytes: &[u8]) {
        self.read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if !bytes.is_empty() {
            std::hash::Hasher::write(&mut *self.hash.lock().expect("the hasher is never poisoned"), bytes);
        }
    }
}

impl Input {
    pub async fn open(loc: &Location, encoding: Encoding) -> Result<Input, DecodeError> {
        Self::open_version(loc, encoding, None).await
    }

    /// [`Input::open`] pinned to one version: with `if_match` (an ETag as the store writes it),
    /// an object that has changed since is [`DecodeError::Changed`], never read.
    pub async fn open_version(
        loc: &Location,
        encoding: Encoding,
        if_match: Option<&str>,
    ) -> Result<Input, DecodeError> {
        let url = loc.url.clone();
        let options = object_store::GetOptions { if_match: if_match.map(str::to_string), ..Default::default() };
        let got = loc.store.get_opts(&loc.path, options).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => DecodeError::NotFound { url: url.clone() },
            object_store::Error::Precondition { .. } => {
                DecodeError::Changed { url: url.clone(), expected: if_match.unwrap_or_default().to_string() }
            }
            object_store::Error::NotSupported { source } => {
                DecodeError::Refused { url: url.clone(), reason: source.to_string() }
            }
            source => DecodeError::Store { url: url.clone(), source },
        })?;
        let size = got.meta.size;
        let e_tag = got.meta.e_tag.clone();
        let tally = Tally { read: Arc::new(AtomicU64::new(0)), hash: Arc::new(Mutex::new(XxHash3_64::with_seed(0))) };
        let compression = Compression::from_key(loc.path.as_ref());
        let source = match got.payload {
            GetResultPayload::File(file, _) if compression == Compression::None => Source::File(Some(file)),
            payload => Source::Stream(stream(payload, compression, tally.clone())),
        };
        Ok(Input {
            source,
            url,
            compression,
            encoding,
            size,
            e_tag,
            tally,
            decompressed: 0,
            started: false,
            latin1: Vec::new(),
        })
    }

    /// Bytes read from the store so far (compressed, as stored).
    pub fn bytes_read(&self) -> u64 {
        self.tally.read.load(Ordering::Relaxed)
    }

    /// A fingerprint of the stored bytes read so far (`xxh3:<hex>`); after the last
    /// [`Input::fill`] it identifies the object's content, whatever its key or ETag.
    pub fn fingerprint(&self) -> String {
        let h = self.tally.hash.lock().expect("the hasher is never poisoned");
        format!("xxh3:{:016x}", std::hash::Hasher::finish(&*h))
    }

    /// Bytes of the object after decompression read so far (equal to [`Input::bytes_read`] for
    /// an uncompressed object).
    pub fn decompressed_bytes(&self) -> u64 {
        self.decompressed
    }

    /// How the object is compressed (from its key); compressed sizes say little about rows.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Appends up to [`CHUNK_BYTES`] of UTF-8 text to `buf`; returns `false` at the end.
    pub async fn fill(&mut self, buf: &mut Vec<u8>) -> Result<bool, DecodeError> {
        let target = match self.encoding {
            Encoding::Utf8 => &mut *buf,
            Encoding::Latin1 => {
                self.latin1.clear();
                &mut self.latin1
            }
        };
        let before = target.len();
        let n = match &mut self.source {
            Source::File(slot) => {
                let file = slot.take().ok_or_else(|| DecodeError::Io {
                    url: self.url.clone(),
                    message: "the file was closed by an earlier failed read".into(),
                })?;
                let (file, filled, got) = read_chunk(file, std::mem::take(target), self.tally.clone()).await;
                *target = filled;
                *slot = file;
                got.map_err(|e| DecodeError::Io { url: self.url.clone(), message: e.to_string() })?
            }
            Source::Stream(reader) => {
                target.reserve(CHUNK_BYTES);
                let mut n = 0;
                // Fill the whole chunk (a stream may hand out small pieces) unless it ends.
                while n < CHUNK_BYTES {
                    let got = reader.take((CHUNK_BYTES - n) as u64).read_buf(target).await.map_err(|e| {
                        if self.compression != Compression::None && e.kind() != std::io::ErrorKind::Other {
                            DecodeError::Corrupt {
                                url: self.url.clone(),
                                compression: self.compression,
                                message: e.to_string(),
                            }
                        } else {
                            DecodeError::Io { url: self.url.clone(), message: e.to_string() }
                        }
                    })?;
                    if got == 0 {
                        break;
                    }
                    n += got;
                }
                n
            }
        };
        self.decompressed += n as u64;
        if !self.started && target.len() > before {
            self.started = true;
            if self.encoding == Encoding::Utf8 && target[before..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                target.drain(before..before + 3);
            }
        }
        if self.encoding == Encoding::Latin1 {
            latin1_to_utf8(&self.latin1, buf);
        }
        Ok(n > 0)
    }
}

/// An object's bytes as a stream, counted and fingerprinted as stored, then decompressed.
fn stream(payload: GetResultPayload, compression: Compression, tally: Tally) -> Pin<Box<dyn AsyncRead + Send>> {
    let raw: Pin<Box<dyn AsyncRead + Send>> = match payload {
        // A compressed local file is read in large reads, not as object_store's stream of
        // 8 KiB chunks.
        GetResultPayload::File(file, _) => Box::pin(tokio::fs::File::from_std(file)),
        GetResultPayload::Stream(s) => Box::pin(tokio_util::io::StreamReader::new(s.map_err(std::io::Error::other))),
    };
    let counted = Counting { inner: raw, tally };
    match compression {
        Compression::None => Box::pin(counted),
        Compression::Gzip => {
            let mut d = GzipDecoder::new(BufReader::with_capacity(256 << 10, counted));
            d.multiple_members(true);
            Box::pin(d)
        }
        Compression::Zstd => {
            let mut d = ZstdDecoder::new(BufReader::with_capacity(256 << 10, counted));
            d.multiple_members(true);
            Box::pin(d)
        }
    }
}

/// Appends up to [`CHUNK_BYTES`] of `file` to `buf` on the blocking pool, counting and
/// fingerprinting them there too; gives both back with the number of bytes read (0 at the end).
/// The file is lost only if the blocking pool is gone (the runtime is shutting down).
async fn read_chunk(
    mut file: std::fs::File,
    mut buf: Vec<u8>,
    tally: Tally,
) -> (Option<std::fs::File>, Vec<u8>, std::io::Result<usize>) {
    let task = tokio::task::spawn_blocking(move || {
        let start = buf.len();
        buf.reserve(CHUNK_BYTES);
        let mut n = 0;
        let result = loop {
            match read_into_spare(&mut file, &mut buf, CHUNK_BYTES - n) {
                Ok(0) => break Ok(()),
                Ok(got) => {
                    n += got;
                    if n == CHUNK_BYTES {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        tally.add(&buf[start..]);
        (file, buf, result.map(|()| n))
    });
    match task.await {
        Ok((file, buf, result)) => (Some(file), buf, result),
        Err(e) => (None, Vec::new(), Err(std::io::Error::other(e))),
    }
}

/// Reads at most `max` bytes of `file` into `buf`'s spare capacity (which must hold them) and
/// appends them; the number read, 0 at the end of the file.
#[cfg(target_os = "linux")]
fn read_into_spare(file: &mut std::fs::File, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let spare = buf.spare_capacity_mut();
    let want = max.min(spare.len());
    // SAFETY: read(2) writes at most `want` bytes at the pointer, all inside the vector's
    // allocation (its spare capacity); only the bytes it reports written become part of the
    // vector. Reading into uninitialised memory spares zeroing every chunk first (1 % of a
    // one-thread run).
    let got = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
    if got < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let got = got as usize;
    // SAFETY: the kernel initialised `got <= want` bytes past the old length.
    unsafe { buf.set_len(buf.len() + got) };
    Ok(got)
}

#[cfg(not(target_os = "linux"))]
fn read_into_spare(file: &mut std::fs::File, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    use std::io::Read;
    let start = buf.len();
    buf.resize(start + max, 0);
    let got = file.read(&mut buf[start..]);
    buf.truncate(start + *got.as_ref().unwrap_or(&0));
    got
}

/// ISO-8859-1 to UTF-8: bytes below 0x80 are the same; the others become two bytes.
pub fn latin1_to_utf8(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(src.len() + src.len() / 8);
    for &b in src {
        if b < 0x80 {
            out.push(b);
        } else {
            out.push(0xC0 | (b >> 6));
            out.push(0x80 | (b & 0x3F));
        }
    }
}

/// Counts and fingerprints the bytes that pass through, for `bytes_read`, progress and
/// [`Input::fingerprint`] (xxh3 runs at memory speed, so this costs nothing measurable).
struct Counting {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    tally: Tally,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = self.inner.as_mut().poll_read(cx, buf);
        self.tally.add(&buf.filled()[before..]);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_transcodes() {
        let mut out = Vec::new();
        latin1_to_utf8(b"caf\xe9", &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "café");
    }

    #[test]
    fn compression_from_key() {
        assert_eq!(Compression::from_key("a/b.csv.GZ"), Compression::Gzip);
        assert_eq!(Compression::from_key("a/b.csv.zst"), Compression::Zstd);
        assert_eq!(Compression::from_key("a/b.csv"), Compression::None);
    }

    async fn read_all(stores: &crate::store::Stores, url: &str, encoding: Encoding) -> (Vec<u8>, u64, String) {
        let loc = stores.resolve(url).unwrap();
        let mut input = Input::open(&loc, encoding).await.unwrap();
        let (mut text, mut buf) = (Vec::new(), Vec::new());
        loop {
            buf.clear();
            let more = input.fill(&mut buf).await.unwrap();
            // Latin-1 takes up to two bytes of UTF-8 per byte read.
            let most = if matches!(encoding, Encoding::Utf8) { CHUNK_BYTES } else { 2 * CHUNK_BYTES };
            assert!(buf.len() <= most, "a read appends at most one chunk");
            text.extend_from_slice(&buf);
            if !more {
                break;
            }
        }
        (text, input.bytes_read(), input.fingerprint())
    }

    /// A local file is read straight into the chunk's buffer, any other object through its
    /// stream: both give the same text, byte count and fingerprint, over several chunks.
    #[tokio::test]
    async fn a_local_file_reads_as_the_same_object_in_memory_does() {
        use object_store::ObjectStoreExt;
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        while bytes.len() < 2 * CHUNK_BYTES + 12_345 {
            let n = bytes.len().to_string();
            bytes.extend_from_slice(n.as_bytes());
            bytes.extend_from_slice(b",caf\xe9,x\n");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, &bytes).unwrap();
        let stores = crate::store::Stores::new();
        let mem = stores.resolve("memory://landing/a.csv").unwrap();
        mem.store.put(&mem.path, bytes.clone().into()).await.unwrap();
        let local = read_all(&stores, path.to_str().unwrap(), Encoding::Utf8).await;
        let memory = read_all(&stores, "memory://landing/a.csv", Encoding::Utf8).await;
        // Compared, not printed: a failure would print megabytes.
        assert!(local.0 == bytes[3..], "the byte-order mark is dropped, nothing else");
        assert!(local.0 == memory.0, "the same text from both stores");
        assert_eq!((local.1, &local.2), (memory.1, &memory.2), "the same count and fingerprint");
        assert_eq!(local.1, bytes.len() as u64);
        // Latin-1 goes through the same reads.
        let local = read_all(&stores, path.to_str().unwrap(), Encoding::Latin1).await;
        let memory = read_all(&stores, "memory://landing/a.csv", Encoding::Latin1).await;
        assert!(local.0 == memory.0 && local.0.len() > bytes.len(), "é takes two bytes in UTF-8");
        assert_eq!((local.1, &local.2), (memory.1, &memory.2));
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn a_read_pinned_to_a_version_refuses_another() {
        let stores = crate::store::Stores::new();
        let loc = stores.resolve("memory://landing/a.csv").unwrap();
        let put = loc.store.put(&loc.path, b"a\n1\n".to_vec().into()).await.unwrap();
        let tag = put.e_tag.unwrap();
        assert!(Input::open_version(&loc, Encoding::Utf8, Some(&tag)).await.is_ok());
        loc.store.put(&loc.path, b"a\n2\n".to_vec().into()).await.unwrap();
        match Input::open_version(&loc, Encoding::Utf8, Some(&tag)).await {
            Err(e @ DecodeError::Changed { .. }) => assert!(!e.is_retryable(), "{e}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("the changed object was read"),
        }
    }
}
