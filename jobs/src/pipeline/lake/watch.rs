//! File-system notifications for a local landing folder (inotify on Linux, through `notify`):
//! they wake `glueless run` as soon as a file is created, written, renamed or removed, instead
//! of at its next listing. They only wake: what is there, and whether it looks finished, is
//! still decided by listing the folder, so a lost or coalesced notification (an overflowing
//! queue, a folder created and filled between two reads) costs at most one `poll_interval_ms`.

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use std::path::Path;
use tokio::sync::watch;

/// A watch on one folder and its subfolders; dropping it stops the watch.
pub struct LandingWatch {
    _watcher: notify::RecommendedWatcher,
    /// Counts the notifications that matter; the service waits for it to change.
    changes: watch::Receiver<u64>,
}

/// Whether a notification can mean that a file appeared, changed or went away. Reads (glueless's
/// own, of the files it loads) are not changes.
fn is_change(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)))
}

impl LandingWatch {
    /// Watches `dir` (which must exist) and everything below it.
    pub fn start(dir: &Path) -> Result<LandingWatch, notify::Error> {
        let (tx, changes) = watch::channel(0u64);
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // An error (the kernel queue overflowed) may hide changes: look again too.
            let matters = match &res {
                Ok(e) => is_change(&e.kind),
                Err(_) => true,
            };
            if matters {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        })?;
        watcher.watch(dir, RecursiveMode::Recursive)?;
        Ok(LandingWatch { _watcher: watcher, changes })
    }

    /// Returns at the first change not yet waited for (at once if one came since the last call).
    pub async fn changed(&mut self) {
        // The sender lives in the watcher, which lives as long as `self`.
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Forgets the changes that came so far: the look about to be taken sees them.
    pub fn mark_seen(&mut self) {
        self.changes.mark_unchanged();
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
