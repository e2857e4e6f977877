//! The ports: small traits the pipeline core needs and the adapters implement.
//!
//! | port | embedded default | AWS and servers |
//! | --- | --- | --- |
//! | [`StateStore`] per-file state machine | `SqliteStateStore` | DynamoDB |
//! | [`Warehouse`] COPY + MERGE + ledger ([`load_plan`]: one algorithm, a dialect each) | `SqliteWarehouse` | PostgreSQL, Redshift Data API |
//! | [`Alerts`] REJECTED / DEAD notices | webhook or log | SNS |
//! | [`Launcher`] large files | in-process | ECS RunTask |
//! | [`Queue`] object events | folder watcher (no queue) | SQS (`glueless worker`) |
//!
//! Time is passed in as [`Millis`] (milliseconds since the Unix epoch) rather than read from
//! the clock inside an adapter, so that the state machine is the same everywhere and the
//! acceptance suites can test lease expiry without sleeping.

pub mod alerts;
pub mod load_plan;
pub mod queue;
pub mod state;
pub mod warehouse;

pub use alerts::{Alert, AlertError, Alerts};
pub use queue::{Queue, QueueError, QueueMessage};
pub use state::{Claim, FileKey, FileRecord, FileState, Filter, NewFile, Outcome, StateError, StateStore};
pub use warehouse::{
    FileLoad, LedgerRow, LoadCause, LoadRequest, LoadResult, SqlType, StagedFile, TableSpec, Warehouse, WarehouseError,
    WarehouseLimits,
};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The wall clock, in [`Millis`].
pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// An object that appeared in the landing area, from a folder scan, an S3 event or a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    /// The object's URL (`file:///…/landing/orders/a.csv`, `s3://bucket/key`).
    pub url: String,
    /// Its key relative to the lake root (`landing/orders/a.csv`): what contracts' `match` globs see.
    pub key: String,
    /// ETag, or another token that changes when the content changes.
    pub version: String,
    pub size: u64,
    /// When the object was created, if the source says.
    pub event_time: Option<Millis>,
}

/// Where a large file was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launched {
    /// Queued to run in this process (the embedded default).
    InProcess,
    /// Started elsewhere; `id` names the task (e.g. an ECS task ARN).
    Remote { id: String },
}

/// A failure to hand a file to the launcher.
#[derive(Debug, thiserror::Error)]
#[error("cannot launch a job for {url} through {launcher}: {message}")]
pub struct LaunchError {
    pub launcher: &'static str,
    pub url: String,
    pub message: String,
    /// The SDK's error, when there is one (its words are in `message` too).
    #[source]
    pub source: Option<ErrorSource>,
}

/// The error an adapter got from its driver or SDK, kept as the `source()` of a port error
/// ([`StateError`], [`QueueError`], [`LaunchError`]) so that `{e:#}` and error reporters can
/// walk the chain.
pub type ErrorSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs the file job for files above `inline_max_bytes` somewhere else than the dispatcher.
#[async_trait::async_trait]
pub trait Launcher: Send + Sync {
    /// Recorded as the file's route, e.g. `in-process` or `ecs`.
    fn name(&self) -> &'static str;
    /// Whether the job runs elsewhere (a task that takes over a claim made for it), rather
    /// than queued to run in this process, which claims the file itself.
    fn is_remote(&self) -> bool {
        true
    }
    async fn launch(&self, file: &FileRecord) -> Result<Launched, LaunchError>;
    /// Takes the files queued to run in this process ([`Launched::InProcess`]), for the
    /// service to run them; a launcher that runs them elsewhere has none.
    fn take_queued(&self) -> Vec<FileKey> {
        Vec::new()
    }
}
