//! `glueless task`: the one file an ECS task was started for (or any one object, run by hand).
//!
//! The launcher names the file in the container's environment (`GLUELESS_TASK_URL`,
//! `GLUELESS_TASK_VERSION`, `GLUELESS_TASK_OWNER`; see [`crate::adapters::aws::ecs_launcher`]). The
//! task takes over the launcher's claim by renewing it as that owner; if the claim lapsed
//! meanwhile (the task started late), it claims the file like any worker. Without a version
//! (by hand), the object's current ETag is read and the object registered first.
//!
//! The exit codes are the command line's (`cli::exit`): 0 loaded (or already decided: nothing
//! to do), 3 loaded with some rows rejected, 4 file rejected, 1 failed or dead (the state store
//! has why; a failed file is launched again by a dispatcher's sweep when its retry is due) or a
//! store that did not answer, 2 the arguments or the configuration are wrong.

use crate::pipeline::catalog::Route;
use crate::pipeline::{FileOutcome, Pipeline};
use crate::ports::{FileKey, FileRecord, FileState, StateError, now_ms};
use crate::telemetry::events as logs;

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

/// A task that cannot run its file.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{url} is not in the lake {lake} (set [lake] url / GLUELESS__LAKE__URL to its bucket or folder)")]
    NotInLake { url: String, lake: String },
    #[error("{url} does not exist")]
    Missing { url: String },
    #[error(
        "{url} version {version} is not in the state store {store}; run it without a version to register its current one"
    )]
    UnknownVersion { url: String, version: String, store: String },
    #[error("cannot read the metadata of {url}: {source}")]
    Head {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl TaskError {
    /// The arguments name no file to run: running the same command again fails the same way.
    pub fn is_usage(&self) -> bool {
        matches!(self, TaskError::NotInLake { .. } | TaskError::Missing { .. } | TaskError::UnknownVersion { .. })
    }

    /// Whether the same task can succeed later: the store or the lake did not answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            TaskError::Head { .. } => true,
            TaskError::State(e) => e.retryable,
            _ => false,
        }
    }
}

/// Runs the file `url` (at `version`). With `take_over`, the file was claimed for this task
/// under the pipeline's owner name ([`crate::pipeline::Options::owner`]), and the task renews
/// that claim instead of making its own.
pub async fn run(p: &Pipeline, url: &str, version: Option<&str>, take_over: bool) -> Result<TaskEnd, TaskError> {
    let Some(key_in_lake) = p.lake.key_of(url).map(str::to_string) else {
        return Err(TaskError::NotInLake { url: url.to_string(), lake: p.lake.root.clone() });
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
    if take_over {
        let owner = &p.owner;
        let held = p.state.renew(&key, owner, now_ms(), p.settings.lease_ms()).await?;
        if held {
            let rec = get(p, &key).await?;
            p.emit(logs::ClaimTakenOver { url, owner, attempts: rec.attempts });
            let outcomes = p.process_claimed(entry, vec![rec]).await;
            return finish(p, &key, outcomes).await;
        }
        p.emit(logs::ClaimLapsed { url, owner });
    }
    let outcomes = p.process(entry, std::slice::from_ref(&key), "ecs").await;
    finish(p, &key, outcomes).await
}

async fn get(p: &Pipeline, key: &FileKey) -> Result<FileRecord, TaskError> {
    match p.state.get(key).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(TaskError::UnknownVersion {
            url: key.url.clone(),
            version: key.version.clone(),
            store: p.state.describe(),
        }),
        Err(e) => Err(e.into()),
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
        Ok(None) => return Err(TaskError::Missing { url: url.to_string() }),
        Err(source) => return Err(TaskError::Head { url: url.to_string(), source }),
    };
    p.accept(&ev).await?;
    Ok(ev.version)
}
