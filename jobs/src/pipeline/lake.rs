//! The lake: one object store root with the landing, staging and rejected prefixes.

use crate::ports::{Millis, ObjectEvent};
use futures::TryStreamExt;
use glueless_engine::store::{Location, StoreError, Stores};
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
}

fn join(prefix: &Path, key: &str) -> Path {
    let key = key.trim_start_matches('/');
    if prefix.as_ref().is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", prefix.as_ref())) }
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
        Ok(Lake {
            root: root.url.trim_end_matches('/').to_string(),
            store: root.store,
            prefix: root.path,
            landing: dir_prefix(landing),
            staging: dir_prefix(staging),
            rejected: dir_prefix(rejected),
            is_local,
        })
    }

    /// The lake of `[lake]`: a folder is resolved against the config file's folder.
    pub fn from_settings(s: &crate::settings::Settings, stores: &Stores) -> Result<Lake, StoreError> {
        let url =
            if s.lake.url.contains("://") { s.lake.url.clone() } else { s.path(&s.lake.url).display().to_string() };
        Lake::open(&url, &s.lake.landing, &s.lake.staging, &s.lake.rejected, stores)
    }

    /// The object at `key` (relative to the root).
    pub fn location(&self, key: &str) -> Location {
        Location {
            store: self.store.clone(),
            path: join(&self.prefix, key),
            url: format!("{}/{}", self.root, key.trim_start_matches('/')),
        }
    }

    /// The key (relative to the root) of an object URL of this lake.
    pub fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(&self.root).and_then(|k| k.strip_prefix('/'))
    }

    /// Every object under the landing prefix, as events. Names starting with `.` or ending in
    /// `.tmp`/`.part` are skipped: that is how producers write files they have not finished.
    pub async fn list_landing(&self) -> Result<Vec<ObjectEvent>, object_store::Error> {
        let base = join(&self.prefix, &self.landing);
        let metas: Vec<_> = self.store.list(Some(&base)).try_collect().await?;
        let strip = if self.prefix.as_ref().is_empty() { 0 } else { self.prefix.as_ref().len() + 1 };
        let mut out = Vec::with_capacity(metas.len());
        for m in metas {
            let full = m.location.as_ref();
            let key = &full[strip.min(full.len())..];
            let name = key.rsplit('/').next().unwrap_or(key);
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
                continue;
            }
            out.push(self.event(key, &m));
        }
        out.sort_by(|a, b| (a.event_time, &a.key).cmp(&(b.event_time, &b.key)));
        Ok(out)
    }

    /// The object at `key` (relative to the root) as it is now; `None` if there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectEvent>, object_store::Error> {
        match self.store.head(&join(&self.prefix, key)).await {
            Ok(m) => Ok(Some(self.event(key, &m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The event for the object `key` whose metadata is `m`.
    fn event(&self, key: &str, m: &ObjectMeta) -> ObjectEvent {
        // S3 quotes its ETags; events name them without quotes.
        let version = m
            .e_tag
            .as_deref()
            .map(|e| e.trim_matches('"').to_string())
            .unwrap_or_else(|| format!("{}-{}", m.size, m.last_modified.timestamp_micros()));
        ObjectEvent {
            url: format!("{}/{key}", self.root),
            key: key.to_string(),
            version,
            size: m.size,
            event_time: Some(m.last_modified.timestamp_millis() as Millis),
        }
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
