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
    reader: Pin<Box<dyn AsyncRead + Send>>,
    url: String,
    compression: Compression,
    encoding: Encoding,
    /// Size of the stored object (compressed bytes).
    pub size: u64,
    /// The store's entity tag of the version being read, when it has one.
    pub e_tag: Option<String>,
    read: Arc<AtomicU64>,
    hash: Arc<Mutex<XxHash3_64>>,
    /// Bytes out of the decompressor (before transcoding): what a bomb inflates.
    decompressed: u64,
    started: bool,
    latin1: Vec<u8>,
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
        let read = Arc::new(AtomicU64::new(0));
        let hash = Arc::new(Mutex::new(XxHash3_64::with_seed(0)));
        let raw: Pin<Box<dyn AsyncRead + Send>> = match got.payload {
            // A local file is read directly, in large reads, rather than as a stream of 8 KiB
            // chunks.
            GetResultPayload::File(file, _) => Box::pin(tokio::fs::File::from_std(file)),
            GetResultPayload::Stream(s) => {
                Box::pin(tokio_util::io::StreamReader::new(s.map_err(std::io::Error::other)))
            }
        };
        let counted = Counting { inner: raw, read: read.clone(), hash: hash.clone() };
        let compression = Compression::from_key(loc.path.as_ref());
        let reader: Pin<Box<dyn AsyncRead + Send>> = match compression {
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
        };
        Ok(Input {
            reader,
            url,
            compression,
            encoding,
            size,
            e_tag,
            read,
            hash,
            decompressed: 0,
            started: false,
            latin1: Vec::new(),
        })
    }

    /// Bytes read from the store so far (compressed, as stored).
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// A fingerprint of the stored bytes read so far (`xxh3:<hex>`); after the last
    /// [`Input::fill`] it identifies the object's content, whatever its key or ETag.
    pub fn fingerprint(&self) -> String {
        let h = self.hash.lock().expect("the hasher is never poisoned");
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
        target.reserve(CHUNK_BYTES);
        let mut n = 0;
        // Fill the whole chunk (a stream may hand out small pieces) unless the input ends.
        while n < CHUNK_BYTES {
            let got = (&mut self.reader).take((CHUNK_BYTES - n) as u64).read_buf(target).await.map_err(|e| {
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
    read: Arc<AtomicU64>,
    hash: Arc<Mutex<XxHash3_64>>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = self.inner.as_mut().poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 {
            let mut h = self.hash.lock().expect("the hasher is never poisoned");
            std::hash::Hasher::write(&mut *h, &buf.filled()[before..]);
        }
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
