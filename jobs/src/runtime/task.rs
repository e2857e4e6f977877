//! `glueless task`: the one file an ECS task was started for (or any one object, run by hand).
//!
//! The launcher names the file in the container's environment (`GLUELESS_TASK_URL`,
//! `GLUELESS_TASK_VERSION`, `GLUELESS_TASK_OWNER`; see [`crate::adapters::ecs_launcher`]). The
//! task takes over the launcher's claim by renewing it as that owner; if the claim lapsed
//! meanwhile (the task started late), it claims the file like any worker. Without a version
//! (by hand), the object's current ETag is read and the object registered first.
//!
//! Exit codes follow the command line's: 0 loaded (or already decided: nothing to do), 3
//! loaded with some rows rejected, 4 file rejected, 1 failed or dead (the state store has why;
//! a failed file is launched again by a dispatcher's sweep when its retry is due), 2 the
//! arguments or the configuration are wrong.

use crate::pipeline::catalog::Route;
use crate::pipeline::{FileOutcome, Pipeline};
use crate::ports::{FileKey, FileRecord, FileState, now_ms};

/// What a task run ended with.
#[derive(Debug)]
pub enum TaskEnd {
    /// This run decided the file.
    Processed(FileOutcome),
    /// Nothing to do: the file is already in this state (or another worker has it).
    AlreadyDecided(FileRecord),
    /// Another worker holds it now.
    Taken(FileRecord),
}

impl TaskEnd {
    pub fn exit_code(&self) -> i32 {
        match self {
            TaskEnd::Processed(o) => match o.state {
                FileState::Loaded if o.rows_rejected > 0 => 3,
                FileState::Loaded => 0,
                FileState::Rejected => 4,
                _ => 1,
            },
            TaskEnd::AlreadyDecided(r) => match r.state {
                FileState::Rejected => 4,
                FileState::Dead | FileState::Failed => 1,
                _ => 0,
            },
            TaskEnd::Taken(_) => 0,
        }
    }
}

/// A task that cannot start: exit 2 (configuration, arguments) or 1 (the store said no).
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs the file `url` (at `version`, claimed by `owner` if given).
pub async fn run(
    p: &mut Pipeline,
    url: &str,
    version: Option<&str>,
    owner: Option<&str>,
) -> Result<TaskEnd, TaskError> {
    let Some(key_in_lake) = p.lake.key_of(url).map(str::to_string) else {
        return Err(TaskError::Usage(format!(
            "{url} is not in the lake {} (set [lake] url / GLUELESS__LAKE__URL to its bucket)",
            p.lake.root
        )));
    };
    let version = match version.filter(|v| !v.is_empty()) {
        Some(v) => v.to_string(),
        None => register(p, url, &key_in_lake).await?,
    };
    let key = FileKey { url: url.to_string(), version };
    let catalog = p.refresh_catalog();
    let entry = match catalog.route(&key_in_lake) {
        Route::Dataset(e) => e,
        _ => {
            // Unroutable files were recorded REJECTED when they were registered.
            let rec = get(p, &key).await?;
            return Ok(TaskEnd::AlreadyDecided(rec));
        }
    };
    if let Some(owner) = owner.filter(|o| !o.is_empty()) {
        p.owner = owner.to_string();
        let held = p
            .state
            .renew(&key, owner, now_ms(), p.settings.lease_ms())
            .await
            .map_err(|e| TaskError::Failed(e.to_string()))?;
        if held {
            let rec = get(p, &key).await?;
            p.log(&format!("{url}: took over the claim of {owner} (attempt {})", rec.attempts));
            let outcomes = p.process_claimed(entry, vec![rec]).await;
            return finish(p, &key, outcomes).await;
        }
        p.log(&format!("{url}: the claim of {owner} has lapsed; claiming the file anew"));
    }
    let outcomes = p.process(entry, std::slice::from_ref(&key), "ecs").await;
    finish(p, &key, outcomes).await
}

async fn get(p: &Pipeline, key: &FileKey) -> Result<FileRecord, TaskError> {
    match p.state.get(key).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(TaskError::Usage(format!(
            "{} version {} is not in the state store {}; run it without a version to register its current one",
            key.url,
            key.version,
            p.state.describe()
        ))),
        Err(e) => Err(TaskError::Failed(e.to_string())),
    }
}

async fn finish(p: &Pipeline, key: &FileKey, mut outcomes: Vec<FileOutcome>) -> Result<TaskEnd, TaskError> {
    if let Some(o) = outcomes.pop() {
        return Ok(TaskEnd::Processed(o));
    }
    let rec = get(p, key).await?;
    Ok(match rec.state {
        FileState::Running | FileState::Received | FileState::Failed => TaskEnd::Taken(rec),
        _ => TaskEnd::AlreadyDecided(rec),
    })
}

/// Reads the object's current ETag and size and registers it; returns the version.
async fn register(p: &Pipeline, url: &str, key: &str) -> Result<String, TaskError> {
    let ev = match p.lake.head(key).await {
        Ok(Some(ev)) => ev,
        Ok(None) => return Err(TaskError::Usage(format!("{url} does not exist"))),
        Err(e) => return Err(TaskError::Failed(format!("cannot read the metadata of {url}: {e}"))),
    };
    p.accept(&ev).await.map_err(|e| TaskError::Failed(e.to_string()))?;
    Ok(ev.version)
}
