//! A lake on a local folder: the walk that lists its landing folder, and the object store that
//! reads it.
//!
//! An object key is the path relative to the lake root, in UTF-8, with `/` between folders. The
//! store's [`Path`] holds that string verbatim (as `Path::parse` makes it), which is also the
//! name `LocalFileSystem` gives the file on disk, so a key goes from listing to read unchanged
//! whatever its characters (`café.csv`, `a%41.csv`, `q"uote.csv`, `data.csv#1`).
//!
//! The walk never fails as a whole: an entry it cannot name (not UTF-8) or read is one
//! [`Walk::problems`] line, and the others go on. It does not follow symbolic links; it lists
//! every non-folder entry, and [`LakeFolder`] refuses at read time what is not a regular file
//! inside the lake (a symlink, a FIFO, a device, a socket), so a symlink swapped in after the
//! listing is refused too, and a FIFO never blocks the reader.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use glueless_engine::text::inert;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::fs::Metadata;
use std::path::PathBuf;

/// The local filesystem with paths relative to `/` (like `LocalFileSystem::new()`), whose
/// reads take only regular files inside `root` and never follow a symbolic link. Writes,
/// listings and deletes are `LocalFileSystem`'s.
#[derive(Debug)]
pub struct LakeFolder {
    inner: LocalFileSystem,
    /// The lake root, canonical (symlinks in the root's own path are resolved once, at start).
    root: PathBuf,
}

/// Why an entry of the lake folder is not read.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("it is a symbolic link; glueless reads only regular files inside the lake: put the file itself there")]
    Symlink,
    #[error(
        "it is not a regular file (a folder, FIFO, socket or device); glueless reads only regular files: remove it from the landing folder"
    )]
    NotRegular,
    #[error("its folder resolves outside the lake (a symbolic link on the way); put the file itself in the lake")]
    Outside,
}

impl LakeFolder {
    pub fn new(root: &std::path::Path) -> std::io::Result<LakeFolder> {
        Ok(LakeFolder { inner: LocalFileSystem::new(), root: std::fs::canonicalize(root)? })
    }
}

type Opened = std::result::Result<(std::fs::File, Metadata), Refused>;

/// Opens the regular file at `path` (inside `root`) for reading, refusing anything else.
fn open_regular(root: &std::path::Path, path: &std::path::Path) -> std::io::Result<Opened> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Err(Refused::NotRegular));
    };
    let parent = std::fs::canonicalize(parent)?;
    if !parent.starts_with(root) {
        return Ok(Err(Refused::Outside));
    }
    let file = match open_nofollow(&parent.join(name)) {
        Ok(f) => f,
        Err(e) if is_symlink_refusal(&e) => return Ok(Err(Refused::Symlink)),
        Err(e) => return Err(e),
    };
    let md = file.metadata()?;
    if !md.is_file() {
        return Ok(Err(Refused::NotRegular));
    }
    Ok(Ok((file, md)))
}

#[cfg(target_os = "linux")]
fn open_nofollow(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. It has
    // no effect on reads of a regular file.
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_nofollow(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    // Without O_NOFOLLOW the check and the open are two steps; the kernel flag closes that gap on
    // Linux, where glueless runs in production.
    let md = std::fs::symlink_metadata(path)?;
    if md.file_type().is_symlink() {
        return Err(std::io::Error::from_raw_os_error(40));
    }
    if !md.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    std::fs::File::open(path)
}

fn is_symlink_refusal(e: &std::io::Error) -> bool {
    // ELOOP on Linux (40); EMLINK (31) on the BSDs for O_NOFOLLOW on a symlink.
    matches!(e.raw_os_error(), Some(40) | Some(31))
}

/// The entity tag of a local file: `LocalFileSystem`'s own scheme (inode, mtime in µs, size, in
/// hex), so versions recorded by earlier releases stay the same.
pub fn etag(md: &Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let mtime =
        md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default().as_micros();
    format!("{:x}-{mtime:x}-{:x}", md.ino(), md.len())
}

/// The modification time of an entry.
pub fn modified(md: &Metadata) -> DateTime<Utc> {
    md.modified().map(DateTime::<Utc>::from).unwrap_or_default()
}

impl std::fmt::Display for LakeFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeFolder({})", self.root.display())
    }
}

#[async_trait::async_trait]
impl ObjectStore for LakeFolder {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let path = PathBuf::from("/").join(location.as_ref());
        let location = location.clone();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let not_found =
                |e: std::io::Error| object_store::Error::NotFound { path: location.to_string(), source: e.into() };
            let (file, md) = match open_regular(&root, &path) {
                Ok(Ok(opened)) => opened,
                Ok(Err(refused)) => return Err(object_store::Error::NotSupported { source: refused.into() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(e)),
                Err(e) => {
                    return Err(object_store::Error::Generic { store: "LakeFolder", source: e.into() });
                }
            };
            let meta = ObjectMeta {
                location,
                last_modified: modified(&md),
                size: md.len(),
                e_tag: Some(etag(&md)),
                version: None,
            };
            options.check_preconditions(&meta)?;
            let range = match &options.range {
                Some(r) => r
                    .as_range(meta.size)
                    .map_err(|e| object_store::Error::Generic { store: "LakeFolder", source: e.into() })?,
                None => 0..meta.size,
            };
            Ok(GetResult { payload: GetResultPayload::File(file, path), attributes: Default::default(), range, meta })
        })
        .await
        .map_err(|e| object_store::Error::JoinError { source: e })?
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// What a walk of the landing folder found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every entry that is not a folder, with its key (relative to the lake root) and its own
    /// metadata (a symlink's, not its target's).
    pub entries: Vec<(String, Metadata)>,
    /// One line per entry that could not be named or read, saying which and why.
    pub problems: Vec<String>,
}

/// The landing folder could not be listed at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot list the landing folder {path}: {source}")]
pub struct WalkError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Lists every entry below `root/landing` (a key prefix ending in `/`), without following
/// symbolic links. Only the landing folder itself failing to open fails the walk (a missing one
/// is empty).
pub fn walk(root: &std::path::Path, landing: &str) -> std::result::Result<Walk, WalkError> {
    let mut out = Walk::default();
    let start = root.join(landing.trim_matches('/'));
    let mut stack = vec![(start.clone(), landing.trim_end_matches('/').to_string())];
    while let Some((dir, key)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if dir == start && e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) if dir == start => return Err(WalkError { path: start.display().to_string(), source }),
            Err(e) => {
                out.problems.push(format!(
                    "cannot list the folder {}: {e}; its files are not received",
                    inert(&dir.to_string_lossy())
                ));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.problems.push(format!("cannot read an entry of {}: {e}", inert(&dir.to_string_lossy())));
                    continue;
                }
            };
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                out.problems.push(format!(
                    "{} has a name that is not UTF-8, which no object key can hold; rename it",
                    inert(&path.to_string_lossy())
                ));
                continue;
            };
            let md = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    out.problems.push(format!("cannot read {}: {e}", inert(&path.to_string_lossy())));
                    continue;
                }
            };
            let child = format!("{key}/{name}");
            if md.is_dir() {
                stack.push((path, child));
            } else {
                out.entries.push((child, md));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn path_of(p: &std::path::Path) -> Path {
        Path::parse(p.to_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn reads_regular_files_and_refuses_links_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        std::fs::create_dir_all(root.join("landing")).unwrap();
        std::fs::write(root.join("landing/good.csv"), "a\n1\n").unwrap();
        std::fs::write(dir.path().join("outside.csv"), "secret\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.csv"), root.join("landing/link.csv")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("landing/passwd.csv")).unwrap();
        let fifo = std::ffi::CString::new(root.join("landing/fifo.csv").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let store = LakeFolder::new(&root).unwrap();

        let got = store.get(&path_of(&root.join("landing/good.csv"))).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), b"a\n1\n");
        for bad in ["link.csv", "passwd.csv", "fifo.csv"] {
            let e = store.get(&path_of(&root.join("landing").join(bad))).await.unwrap_err();
            assert!(matches!(e, object_store::Error::NotSupported { .. }), "{bad}: {e}");
        }
        let w = walk(&root, "landing/").unwrap();
        let mut keys: Vec<_> = w.entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["landing/fifo.csv", "landing/good.csv", "landing/link.csv", "landing/passwd.csv"]);
    }

    #[tokio::test]
    async fn a_changed_file_fails_the_precondition() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "a\n1\n").unwrap();
        let store = LakeFolder::new(dir.path()).unwrap();
        let p = path_of(&dir.path().join("a.csv"));
        let tag = store.head(&p).await.unwrap().e_tag.unwrap();
        assert_eq!(tag, etag(&std::fs::metadata(dir.path().join("a.csv")).unwrap()));
        let pinned = GetOptions { if_match: Some(tag.clone()), ..Default::default() };
        store.get_opts(&p, pinned.clone()).await.unwrap();
        std::fs::write(dir.path().join("a.csv"), "a\n1\n2\n").unwrap();
        let e = store.get_opts(&p, pinned).await.unwrap_err();
        assert!(matches!(e, object_store::Error::Precondition { .. }), "{e}");
    }

    #[test]
    fn entries_without_a_name_are_problems_not_failures() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing/sales");
        std::fs::create_dir_all(&landing).unwrap();
        std::fs::write(landing.join(std::ffi::OsStr::from_bytes(b"bad\xff.csv")), "x").unwrap();
        std::fs::write(landing.join("new\nline.csv"), "x").unwrap();
        std::fs::write(landing.join("ok.csv"), "x").unwrap();
        std::os::unix::fs::symlink("loop", landing.join("loop")).unwrap();
        let w = walk(dir.path(), "landing/").unwrap();
        let mut keys: Vec<_> = w.entries.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        assert_eq!(keys, ["landing/sales/loop", "landing/sales/new\nline.csv", "landing/sales/ok.csv"]);
        assert_eq!(w.problems.len(), 1, "{:?}", w.problems);
        assert!(w.problems[0].contains("not UTF-8"), "{}", w.problems[0]);
    }
}
