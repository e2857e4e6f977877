//! Object URLs: the one I/O port of the engine.
//!
//! A location is a plain path, a `file://` URL, an `s3://bucket/key` URL (configured from the
//! usual `AWS_*` environment: region, credentials, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`), or
//! `memory://key` for tests, which resolves to the [`Stores`]' own in-memory store.

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{ObjectStore, local::LocalFileSystem, memory::InMemory, path::Path};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A resolved location: the store that holds it and the path inside that store.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    /// The URL as the user wrote it (normalised), for reports and messages.
    pub url: String,
}

impl Location {
    /// Whether the location is in an object store over the network (S3), not a local file or
    /// memory.
    pub fn is_remote(&self) -> bool {
        self.url.starts_with("s3://")
    }

    /// The same store, another path next to this one: `sibling("x.jsonl")` of `a/b.parquet` is
    /// `a/x.jsonl`.
    pub fn with_file_name(&self, name: &str) -> Location {
        let parent = match self.path.as_ref().rfind('/') {
            Some(i) => &self.path.as_ref()[..i],
            None => "",
        };
        let path = if parent.is_empty() { Path::from(name) } else { Path::from(format!("{parent}/{name}")) };
        let url = match self.url.rfind('/') {
            Some(i) => format!("{}/{name}", &self.url[..i]),
            None => name.to_string(),
        };
        Location { store: self.store.clone(), path, url }
    }

    /// The last path segment.
    pub fn file_name(&self) -> &str {
        self.path.filename().unwrap_or("")
    }
}

/// Why a URL could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`{url}`: unsupported URL scheme `{scheme}`; use a path, file://, s3:// or memory://")]
    Scheme { url: String, scheme: String },
    #[error("`{url}`: {message}")]
    Invalid { url: String, message: String },
    #[error("`{url}`: cannot set up the object store: {source}")]
    Build {
        url: String,
        #[source]
        source: object_store::Error,
    },
}

/// One bucket's object_store client with what a request made outside object_store needs to
/// reach the same bucket the same way (the lake's own listing, which must see keys that
/// object_store cannot hold).
#[derive(Debug, Clone)]
pub struct S3Bucket {
    /// The client: its credential provider signs the outside requests too.
    pub client: Arc<AmazonS3>,
    /// The bucket's base URL as object_store addresses it, without a trailing slash:
    /// `https://s3.<region>.amazonaws.com/<bucket>`, `<endpoint>/<bucket>` (path-style) or the
    /// virtual-hosted endpoint.
    pub url: String,
    pub region: String,
    /// False when object_store signs this bucket's requests in a way a plain SigV4 request with
    /// the client's credentials cannot (S3 Express session credentials, unsigned requests).
    pub plain_sigv4: bool,
}

/// Resolves URLs to stores, reusing one client per bucket and one in-memory store.
#[derive(Debug, Default)]
pub struct Stores {
    memory: Arc<InMemory>,
    s3: Mutex<HashMap<String, S3Bucket>>,
    local: Mutex<Option<Arc<LocalFileSystem>>>,
}

impl Stores {
    pub fn new() -> Self {
        Self::default()
    }

    /// The in-memory store behind `memory://` URLs.
    pub fn memory(&self) -> Arc<InMemory> {
        self.memory.clone()
    }

    pub fn resolve(&self, url: &str) -> Result<Location, StoreError> {
        if let Some(rest) = url.strip_prefix("memory://") {
            return Ok(Location { store: self.memory.clone(), path: parse_path(url, rest)?, url: url.to_string() });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Invalid { url: url.into(), message: "the bucket name is missing".into() });
            }
            let store: Arc<dyn ObjectStore> = self.s3_bucket(url, bucket)?.client;
            return Ok(Location { store, path: parse_path(url, key)?, url: url.to_string() });
        }
        let local_path = if let Some(rest) = url.strip_prefix("file://") {
            std::path::PathBuf::from(rest)
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(StoreError::Scheme { url: url.into(), scheme: scheme.into() });
        } else {
            std::path::PathBuf::from(url)
        };
        let abs = if local_path.is_absolute() {
            local_path
        } else {
            std::env::current_dir()
                .map_err(|e| StoreError::Invalid { url: url.into(), message: format!("no current directory: {e}") })?
                .join(local_path)
        };
        let path = Path::from_absolute_path(&abs)
            .map_err(|e| StoreError::Invalid { url: url.into(), message: e.to_string() })?;
        let store = self.local.lock().expect("lock").get_or_insert_with(|| Arc::new(LocalFileSystem::new())).clone();
        Ok(Location { store, path, url: abs.display().to_string() })
    }

    /// The S3 bucket of an `s3://bucket/...` URL; `None` for any other URL.
    pub fn s3(&self, url: &str) -> Result<Option<S3Bucket>, StoreError> {
        let Some(rest) = url.strip_prefix("s3://") else { return Ok(None) };
        let bucket = rest.split_once('/').map_or(rest, |(b, _)| b);
        if bucket.is_empty() {
            return Err(StoreError::Invalid { url: url.into(), message: "the bucket name is missing".into() });
        }
        self.s3_bucket(url, bucket).map(Some)
    }

    fn s3_bucket(&self, url: &str, bucket: &str) -> Result<S3Bucket, StoreError> {
        let mut map = self.s3.lock().expect("lock");
        if let Some(s) = map.get(bucket) {
            return Ok(s.clone());
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL")) {
            // A custom endpoint (a local emulator, MinIO) is addressed path-style.
            b = b
                .with_endpoint(&endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        // The bucket URL as object_store's builder makes it (object_store 0.13, `build`).
        let flag = |k: AmazonS3ConfigKey| b.get_config_value(&k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let (virtual_hosted, express, unsigned) = (
            flag(AmazonS3ConfigKey::VirtualHostedStyleRequest),
            flag(AmazonS3ConfigKey::S3Express),
            flag(AmazonS3ConfigKey::SkipSignature),
        );
        let region = b.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let endpoint = b
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| b.get_config_value(&AmazonS3ConfigKey::Endpoint));
        let base = match (endpoint, virtual_hosted) {
            (Some(e), true) => e.trim_end_matches('/').to_string(),
            (Some(e), false) => format!("{}/{bucket}", e.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let client = Arc::new(b.build().map_err(|source| StoreError::Build { url: url.into(), source })?);
        let s3 = S3Bucket { client, url: base, region, plain_sigv4: !express && !unsigned };
        map.insert(bucket.to_string(), s3.clone());
        Ok(s3)
    }
}

fn parse_path(url: &str, key: &str) -> Result<Path, StoreError> {
    Path::parse(key).map_err(|e| StoreError::Invalid { url: url.into(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_each_scheme() {
        let s = Stores::new();
        assert_eq!(s.resolve("memory://a/b.csv").unwrap().path.as_ref(), "a/b.csv");
        let l = s.resolve("/tmp/x/y.csv").unwrap();
        assert_eq!(l.path.as_ref(), "tmp/x/y.csv");
        assert_eq!(l.with_file_name("z.jsonl").url, "/tmp/x/z.jsonl");
        assert!(matches!(s.resolve("gs://b/k"), Err(StoreError::Scheme { .. })));
        assert!(matches!(s.resolve("s3:///k"), Err(StoreError::Invalid { .. })));
    }
}
