//! The `Launcher` port of the embedded default: a large file is queued to run in this process
//! (on its own, not in a micro-batch), and its route is recorded as `in-process`.

use crate::ports::{FileKey, FileRecord, LaunchError, Launched, Launcher};
use std::sync::Mutex;

#[derive(Default)]
pub struct InProcessLauncher {
    queue: Mutex<Vec<FileKey>>,
}

impl InProcessLauncher {
    /// Takes the queued files.
    pub fn drain(&self) -> Vec<FileKey> {
        std::mem::take(&mut *self.queue.lock().expect("lock"))
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().expect("lock").is_empty()
    }
}

#[async_trait::async_trait]
impl Launcher for InProcessLauncher {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn is_remote(&self) -> bool {
        false
    }

    async fn launch(&self, file: &FileRecord) -> Result<Launched, LaunchError> {
        let mut q = self.queue.lock().expect("lock");
        if !q.contains(&file.key) {
            q.push(file.key.clone());
        }
        Ok(Launched::InProcess)
    }

    fn take_queued(&self) -> Vec<FileKey> {
        self.drain()
    }
}
