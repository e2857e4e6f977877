//! The lake: one object store root with the landing, staging and rejected prefixes.
//!
//! A key is the raw object key: the S3 key, or the path relative to the lake folder in UTF-8.
//! It is the store's [`Path`] verbatim (never percent-encoded again), so any name S3 allows —
//! spaces, `+ ~ % [ ] " ' # { } ^ | < > \ * ?`, any UTF-8 — goes from listing or event to the
//! read unchanged. A name that no store path can hold (a control character, an empty or `..`
//! segment) is refused when the file is read ([`Lake::check_key`]), not when the lake is listed:
//! a folder is walked by glueless itself, and a bucket listed with glueless's own ListObjectsV2
//! requests (`s3_list`), so such a name never stops the others.

mod folder;
mod s3_list;
mod watch;

pub use folder::{LakeFolder, Refused};
pub use watch::LandingWatch;

use crate::ports::{Millis, ObjectEvent};
use futures::TryStreamExt;
use glueless_engine::store::{Location, S3Bucket, StoreError, Stores};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Lake {
    /// The root URL, without a trailing slash (`/srv/lake`, `s3://bucket/prefix`).
    pub root: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    pub landing: String,
    pub staging: String,
    pub rejected: String,
    /// A local folder (writes are not atomic there, so new files are given time to settle).
    pub is_local: bool,
    /// The folder of a local lake.
    dir: Option<std::path::PathBuf>,
    /// The bucket of an S3 lake, listed by `s3_list` (`None` if object_store must list it).
    s3: Option<(S3Bucket, reqwest::Client)>,
}

/// What one look at the landing prefix found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every object, oldest first.
    pub events: Vec<ObjectEvent>,
    /// Entries that could not be named or read, one line each (a local name or an S3 key that
    /// is not UTF-8, a folder that cannot be read).
    pub problems: Vec<String>,
}

/// The landing prefix could not be listed at all.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Folder(#[from] folder::WalkError),
    #[error(transparent)]
    S3(#[from] s3_list::S3ListError),
}

/// The store path of `key` below `prefix`, holding the key verbatim.
fn join(prefix: &Path, key: &str) -> Result<Path, object_store::path::Error> {
    let key = key.trim_start_matches('/');
    if prefix.as_ref().is_empty() { Path::parse(key) } else { Path::parse(format!("{}/{key}", prefix.as_ref())) }
}

/// Why no store path can hold `key`, in words for the file's REJECTED reason.
fn bad_key_reason(key: &str) -> String {
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return format!(
            "its name contains the control character {:?}, which glueless cannot name in a store path; rename the file",
            c
        );
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return "its key has a `.` or `..` segment, which glueless does not follow; rename the file".into();
    }
    "its key has an empty segment (`//`); rename the file".into()
}

fn dir_prefix(p: &str) -> String {
    let p = p.trim_matches('/');
    format!("{p}/")
}

impl Lake {
    pub fn open(url: &str, landing: &str, staging: &str, rejected: &str, stores: &Stores) -> Result<Lake, StoreError> {
        let is_local = !url.contains("://") || url.starts_with("file://");
        if is_local {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(std::path::Path::new(dir).join(landing.trim_matches('/'))).map_err(|e| {
                StoreError::Invalid { url: url.into(), message: format!("cannot create the lake folder: {e}") }
            })?;
        }
        let root = stores.resolve(url.trim_end_matches('/'))?;
        let (store, dir): (Arc<dyn ObjectStore>, _) = if is_local {
            let dir = std::path::PathBuf::from(&root.url);
            let folder = LakeFolder::new(&dir).map_err(|e| StoreError::Invalid {
                url: url.into(),
                message: format!("cannot open the lake folder: {e}"),
            })?;
            (Arc::new(folder), Some(dir))
        } else {
            (root.store, None)
        };
        let s3 = match stores.s3(url)? {
            Some(bucket) if bucket.plain_sigv4 => {
                let http = reqwest::Client::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .timeout(std::time::Duration::from_secs(120))
                    .build()
                    .map_err(|e| StoreError::Invalid {
                        url: url.into(),
                        message: format!("cannot set up HTTP: {e}"),
                    })?;
                Some((bucket, http))
            }
            _ => None,
        };
        Ok(Lake {
            root: root.url.trim_end_matches('/').to_string(),
            store,
            prefix: root.path,
            landing: dir_prefix(landing),
            staging: dir_prefix(staging),
            rejected: dir_prefix(rejected),
            is_local,
            dir,
            s3,
        })
    }

    /// The lake of `[lake]`: a folder is resolved against the config file's folder.
    pub fn from_settings(s: &crate::settings::Settings, stores: &Stores) -> Result<Lake, StoreError> {
        let url =
            if s.lake.url.contains("://") { s.lake.url.clone() } else { s.path(&s.lake.url).display().to_string() };
        Lake::open(&url, &s.lake.landing, &s.lake.staging, &s.lake.rejected, stores)
    }

    /// The object at `key` (relative to the root). A key that no store path can hold (see
    /// [`Lake::check_key`]) is given an encoded path that names no object.
    pub fn location(&self, key: &str) -> Location {
        let path = join(&self.prefix, key).unwrap_or_else(|_| Path::from(format!("{}/{key}", self.prefix.as_ref())));
        Location { store: self.store.clone(), path, url: format!("{}/{}", self.root, key.trim_start_matches('/')) }
    }

    /// `Err(reason)` when `key` cannot be read from this lake because no store path can hold
    /// it: a control character, an empty segment, a `.` or `..` segment.
    pub fn check_key(&self, key: &str) -> Result<(), String> {
        join(&self.prefix, key).map(|_| ()).map_err(|_| bad_key_reason(key))
    }

    /// The `If-Match` value that pins a read to `version` (as recorded: S3 ETags without quotes).
    pub fn if_match(&self, version: &str) -> String {
        if self.is_local { version.to_string() } else { format!("\"{version}\"") }
    }

    /// The object URL that a command-line argument names: a URL (`s3://…`), a key relative to
    /// the root (`landing/orders/a.csv`), or, in a local lake, a path (absolute, or relative to
    /// the current folder) or a `file://` URL. An argument outside the lake is returned as it is
    /// (as a path, in a local lake), for [`Lake::key_of`] to refuse; a relative path that names
    /// nothing (and has no `..`) is taken as a key.
    pub fn url_of(&self, arg: &str) -> String {
        let other_scheme = arg.contains("://") && !arg.starts_with("file://");
        if !self.is_local || other_scheme {
            return if arg.contains("://") { arg.to_string() } else { self.location(arg).url };
        }
        let path = std::path::Path::new(arg.strip_prefix("file://").unwrap_or(arg));
        let Ok(abs) = std::path::absolute(path) else { return self.location(arg).url };
        let outside = || {
            std::fs::symlink_metadata(&abs).is_ok() || path.components().any(|c| c == std::path::Component::ParentDir)
        };
        if path.is_relative() && !abs.starts_with(&self.root) && !outside() {
            return self.location(arg).url;
        }
        let mut url = abs.display().to_string();
        if arg.ends_with('/') && !url.ends_with('/') {
            url.push('/');
        }
        url
    }

    /// The key (relative to the root) of an object URL of this lake.
    pub fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(&self.root).and_then(|k| k.strip_prefix('/'))
    }

    /// Every object under the landing prefix, as events. Names starting with `.` or ending in
    /// `.tmp`/`.part` are skipped: that is how producers write files they have not finished.
    pub async fn list_landing(&self) -> Result<Vec<ObjectEvent>, ListError> {
        Ok(self.scan_landing().await?.events)
    }

    /// [`Lake::list_landing`] with the entries that could not be named or read. A local lake
    /// is walked without following symbolic links (they are listed, and refused when read).
    pub async fn scan_landing(&self) -> Result<Listing, ListError> {
        let mut listing = Listing::default();
        match &self.dir {
            Some(dir) => {
                let (dir, landing) = (dir.clone(), self.landing.clone());
                let walk = tokio::task::spawn_blocking(move || folder::walk(&dir, &landing))
                    .await
                    .map_err(|e| object_store::Error::JoinError { source: e })??;
                listing.problems = walk.problems;
                for (key, md) in walk.entries {
                    if !skipped_name(&key) {
                        let version = folder::etag(&md);
                        let time = folder::modified(&md).timestamp_millis() as Millis;
                        listing.events.push(self.event_of(&key, version, md.len(), time));
                    }
                }
            }
            None => {
                let strip = if self.prefix.as_ref().is_empty() { 0 } else { self.prefix.as_ref().len() + 1 };
                if let Some((bucket, http)) = &self.s3 {
                    // Keys verbatim: one that no store path can hold is listed and REJECTED when read.
                    let root = if strip == 0 { String::new() } else { format!("{}/", self.prefix.as_ref()) };
                    let listed = s3_list::list(bucket, http, &format!("{root}{}", self.landing)).await?;
                    listing.problems = listed.problems;
                    for e in listed.entries {
                        let Some(key) = e.key.strip_prefix(&root) else { continue };
                        if !skipped_name(key) {
                            let version = version_of(e.e_tag.as_deref(), e.size, &e.last_modified);
                            let time = e.last_modified.timestamp_millis() as Millis;
                            listing.events.push(self.event_of(key, version, e.size, time));
                        }
                    }
                } else {
                    let base = join(&self.prefix, &self.landing).map_err(object_store::Error::from)?;
                    let metas: Vec<_> = self.store.list(Some(&base)).try_collect().await?;
                    for m in metas {
                        let full = m.location.as_ref();
                        let key = &full[strip.min(full.len())..];
                        if !skipped_name(key) {
                            listing.events.push(self.event(key, &m));
                        }
                    }
                }
            }
        }
        listing.events.sort_by(|a, b| (a.event_time, &a.key).cmp(&(b.event_time, &b.key)));
        Ok(listing)
    }

    /// File-system notifications for the landing folder of a local lake (`None` for a bucket,
    /// which is listed, or reports its objects through the queue).
    pub fn watch_landing(&self) -> Option<std::io::Result<LandingWatch>> {
        let dir = self.dir.as_ref()?;
        Some(LandingWatch::start(&dir.join(self.landing.trim_matches('/'))))
    }

    /// The object at `key` (relative to the root) as it is now; `None` if there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectEvent>, object_store::Error> {
        let Ok(path) = join(&self.prefix, key) else { return Ok(None) };
        match self.store.head(&path).await {
            Ok(m) => Ok(Some(self.event(key, &m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The event for the object `key` whose metadata is `m`.
    fn event(&self, key: &str, m: &ObjectMeta) -> ObjectEvent {
        let version = version_of(m.e_tag.as_deref(), m.size, &m.last_modified);
        self.event_of(key, version, m.size, m.last_modified.timestamp_millis() as Millis)
    }

    fn event_of(&self, key: &str, version: String, size: u64, time: Millis) -> ObjectEvent {
        ObjectEvent { url: format!("{}/{key}", self.root), key: key.to_string(), version, size, event_time: Some(time) }
    }

    /// `<prefix><dataset>/<key below landing/<dataset>/>.<version tag><suffix>`: one name per file
    /// version (the tag is a hash of the version), so two versions of one key never overwrite
    /// each other's staging or quarantine.
    fn derived(&self, prefix: &str, dataset: &str, key: &str, version: &str, suffix: &str) -> Location {
        let rel = key.strip_prefix(&self.landing).unwrap_or(key);
        let rel = rel.strip_prefix(dataset).and_then(|r| r.strip_prefix('/')).unwrap_or(rel);
        let tag = twox_hash::XxHash3_64::oneshot(version.as_bytes());
        self.location(&format!("{prefix}{dataset}/{rel}.{:08x}{suffix}", tag >> 32))
    }

    pub fn staging_for(&self, dataset: &str, key: &str, version: &str) -> Location {
        self.derived(&self.staging, dataset, key, version, ".parquet")
    }

    pub fn quarantine_for(&self, dataset: &str, key: &str, version: &str) -> Location {
        self.derived(&self.rejected, dataset, key, version, ".jsonl")
    }
}

/// The version of an object: its ETag without the quotes S3 puts around it (events name it so),
/// or its size and time for a store without ETags.
fn version_of(e_tag: Option<&str>, size: u64, modified: &chrono::DateTime<chrono::Utc>) -> String {
    e_tag.map(|e| e.trim_matches('"').to_string()).unwrap_or_else(|| format!("{size}-{}", modified.timestamp_micros()))
}

/// Names producers use for files they have not finished writing.
fn skipped_name(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_store_path_verbatim_in_both_lake_kinds() {
        let stores = Stores::new();
        let dir = tempfile::tempdir().unwrap();
        let local = Lake::open(dir.path().to_str().unwrap(), "landing", "staging", "rejected", &stores).unwrap();
        let s3 = Lake::open("s3://bucket/pre", "landing", "staging", "rejected", &stores).unwrap();
        let key = r#"landing/x/café a%41+[1]"q'#1{^|<>}\*?.csv"#;
        let root = dir.path();
        let abs = format!("{}/{key}", root.to_str().unwrap().trim_start_matches('/'));
        let local_path = local.location(key).path;
        assert_eq!(local_path.as_ref(), abs, "what LocalFileSystem names the file {key} on disk");
        assert_eq!(s3.location(key).path.as_ref(), format!("pre/{key}"), "the S3 key");
        assert_eq!(s3.location(key).url, format!("s3://bucket/pre/{key}"));
        assert_eq!(s3.if_match("abc"), "\"abc\"");
        assert!(s3.check_key(key).is_ok());
        assert!(s3.check_key("landing/a\nb.csv").unwrap_err().contains("control character"));
        assert!(s3.check_key("landing/../b.csv").unwrap_err().contains("`..`"));
        assert!(s3.check_key("landing//b.csv").unwrap_err().contains("empty segment"));
    }
}
