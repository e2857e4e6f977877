//! File-system notifications for a local landing folder (inotify, Linux): they wake
//! `glueless run` as soon as a file is created, written, renamed or removed, instead of at its
//! next listing. They only wake: what is there, and whether it looks finished, is still decided
//! by listing the folder, so a lost or coalesced notification (an overflowing queue, a folder
//! created and filled between two reads) costs at most one `poll_interval_ms`.
//!
//! Straight on the system calls (`libc`) rather than through the `notify` crate: that crate
//! turns on features of `mio` that rebuild tokio and everything above it, a quarter of an hour
//! on two cores, for the sixty lines below. Elsewhere than Linux there is no watch and the
//! service polls.

use std::path::Path;
use tokio::sync::watch;

/// A watch on one folder and its subfolders; dropping it stops the watch (within
/// [`POLL_MS`]).
pub struct LandingWatch {
    /// Counts the notifications that matter; the service waits for it to change.
    changes: watch::Receiver<u64>,
}

/// How often the reading thread looks whether the watch was dropped.
const POLL_MS: i32 = 250;

/// At most this many folders are watched (each costs the kernel about 1 KiB); past it, new
/// subfolders are found by the listing only.
const MAX_FOLDERS: usize = 8192;

impl LandingWatch {
    /// Watches `dir` (which must exist) and everything below it.
    pub fn start(dir: &Path) -> std::io::Result<LandingWatch> {
        let (tx, changes) = watch::channel(0u64);
        imp::start(dir, tx)?;
        Ok(LandingWatch { changes })
    }

    /// Returns at the first change not yet waited for (at once if one came since the last call).
    pub async fn changed(&mut self) {
        // The sender lives in the reading thread, which lives as long as `self`.
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Forgets the changes that came so far: the look about to be taken sees them.
    pub fn mark_seen(&mut self) {
        self.changes.mark_unchanged();
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{MAX_FOLDERS, POLL_MS};
    use std::collections::HashMap;
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use tokio::sync::watch;

    /// What counts as a change: files and folders created, written, renamed, removed. Not the
    /// reads (glueless's own, of the files it loads).
    const MASK: u32 = libc::IN_CREATE
        | libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_MOVED_TO
        | libc::IN_MOVED_FROM
        | libc::IN_DELETE
        | libc::IN_ATTRIB;

    struct Folders {
        fd: OwnedFd,
        paths: HashMap<i32, PathBuf>,
    }

    impl Folders {
        /// Watches `dir` and the folders below it (symbolic links are not followed).
        fn add_tree(&mut self, dir: &Path) -> std::io::Result<()> {
            let mut todo = vec![dir.to_path_buf()];
            while let Some(d) = todo.pop() {
                if self.paths.len() >= MAX_FOLDERS {
                    break;
                }
                let c = CString::new(d.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
                // SAFETY: a valid descriptor and a NUL-terminated path.
                let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), MASK | libc::IN_ONLYDIR) };
                if wd < 0 {
                    let e = std::io::Error::last_os_error();
                    // The root must be watched; a subfolder may be gone already.
                    if d == dir {
                        return Err(e);
                    }
                    continue;
                }
                self.paths.insert(wd, d.clone());
                if let Ok(entries) = std::fs::read_dir(&d) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            todo.push(e.path());
                        }
                    }
                }
            }
            Ok(())
        }

        /// Reads the events waiting; returns whether one of them is a change.
        fn read(&mut self, buf: &mut [u8]) -> bool {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return false;
            }
            let header = std::mem::size_of::<libc::inotify_event>();
            let (mut at, mut changed, mut new_folders) = (0usize, false, Vec::new());
            while at + header <= n as usize {
                // SAFETY: the kernel writes whole events; `read_unaligned` copies the header out.
                let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name = &buf[at + header..(at + header + ev.len as usize).min(n as usize)];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if ev.mask & libc::IN_Q_OVERFLOW != 0 || ev.mask & MASK != 0 {
                    changed = true;
                }
                if ev.mask & libc::IN_ISDIR != 0
                    && ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0
                    && let Some(parent) = self.paths.get(&ev.wd)
                {
                    new_folders.push(parent.join(std::ffi::OsStr::from_bytes(name)));
                }
                if ev.mask & libc::IN_IGNORED != 0 {
                    self.paths.remove(&ev.wd);
                }
                at += header + ev.len as usize;
            }
            for d in new_folders {
                let _ = self.add_tree(&d);
            }
            changed
        }
    }

    pub fn start(dir: &Path, tx: watch::Sender<u64>) -> std::io::Result<()> {
        // SAFETY: no pointers; the result is checked.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nothing else.
        let mut folders = Folders { fd: unsafe { OwnedFd::from_raw_fd(raw) }, paths: HashMap::new() };
        folders.add_tree(dir)?;
        std::thread::Builder::new().name("landing-watch".into()).spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            // Ends once the watch is dropped (no receiver left); the descriptor closes with it.
            while !tx.is_closed() {
                let mut p = libc::pollfd { fd: folders.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd.
                let ready = unsafe { libc::poll(&mut p, 1, POLL_MS) };
                if ready > 0 && folders.read(&mut buf) {
                    tx.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        })?;
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn start(_dir: &std::path::Path, _tx: tokio::sync::watch::Sender<u64>) -> std::io::Result<()> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no folder notifications on this system"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn woke(w: &mut LandingWatch, within: Duration) -> bool {
        tokio::time::timeout(within, w.changed()).await.is_ok()
    }

    #[tokio::test]
    async fn a_new_file_in_a_new_subfolder_wakes_and_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LandingWatch::start(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("orders")).unwrap();
        assert!(woke(&mut w, Duration::from_secs(5)).await, "a new folder");
        // Give the watch time to add the new folder, then write into it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        w.mark_seen();
        std::fs::write(dir.path().join("orders/a.csv"), "id\n1\n").unwrap();
        assert!(woke(&mut w, Duration::from_secs(5)).await, "a file written in the new folder");
        tokio::time::sleep(Duration::from_millis(50)).await;
        w.mark_seen();
        assert_eq!(std::fs::read(dir.path().join("orders/a.csv")).unwrap(), b"id\n1\n");
        assert!(!woke(&mut w, Duration::from_millis(300)).await, "reading a file is not a change");
    }
}
