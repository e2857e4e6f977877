//! The per-file state store port: the state machine of docs/pipeline.md as conditional writes.
//!
//! ```text
//! RECEIVED ──claim──▶ RUNNING(owner, lease) ──▶ LOADED
//!    ▲                   │  │  └──────────────▶ REJECTED   (file-level validation; replayable)
//!    │                   │  └─────────────────▶ FAILED ──(retry_at passed)──▶ claimable again
//!    │                   │                        └──(attempts ≥ max_attempts)──▶ DEAD
//!    └──── replay ◀──────┴── (lease expired: another worker may claim) ◀─────────┘
//! ```
//!
//! A file is identified by its URL plus its version (ETag or content fingerprint): the same
//! content delivered twice is one file, new content under the same key is a new file. Every
//! transition out of RUNNING is conditional on the caller still owning the claim, so two
//! workers never both record an outcome for one file. Policy (how many attempts, which backoff)
//! lives in the core, not here: an adapter only stores and compares.

use super::Millis;
use serde::Serialize;

/// A file's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FileKey {
    pub url: String,
    /// ETag or content fingerprint.
    pub version: String,
}

/// Where a file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileState {
    Received,
    Running,
    Loaded,
    Rejected,
    Failed,
    Dead,
}

impl FileState {
    pub const ALL: [FileState; 6] = [
        FileState::Received,
        FileState::Running,
        FileState::Loaded,
        FileState::Rejected,
        FileState::Failed,
        FileState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Received => "RECEIVED",
            FileState::Running => "RUNNING",
            FileState::Loaded => "LOADED",
            FileState::Rejected => "REJECTED",
            FileState::Failed => "FAILED",
            FileState::Dead => "DEAD",
        }
    }

    /// Parses the upper- or lower-case name.
    pub fn parse(s: &str) -> Option<FileState> {
        FileState::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s))
    }

    /// States a person (or `glueless replay`) has to act on.
    pub fn is_replayable(self) -> bool {
        matches!(self, FileState::Rejected | FileState::Failed | FileState::Dead)
    }
}

impl std::fmt::Display for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file seen for the first time.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub key: FileKey,
    /// The dataset whose contract matched (empty when none did).
    pub dataset: String,
    pub size: u64,
    pub event_time: Option<Millis>,
}

/// Everything the store keeps about one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileRecord {
    pub key: FileKey,
    pub dataset: String,
    pub size: u64,
    pub state: FileState,
    /// The worker holding (or last holding) the claim.
    pub owner: Option<String>,
    /// RUNNING: the claim is void after this instant.
    pub lease_until: Option<Millis>,
    /// Claims so far (a claim counts as an attempt; a clean release gives it back).
    pub attempts: u32,
    /// FAILED: not to be claimed before this instant.
    pub retry_at: Option<Millis>,
    /// How the last claim ran the job: `inline`, `in-process`, `ecs`, …
    pub route: Option<String>,
    /// REJECTED / FAILED / DEAD: why, in words a person can act on.
    pub last_error: Option<String>,
    pub event_time: Option<Millis>,
    pub received_at: Millis,
    pub updated_at: Millis,
    /// LOADED: the warehouse load that carried it.
    pub load_id: Option<String>,
    pub rows_loaded: Option<u64>,
    pub rows_rejected: Option<u64>,
}

/// A request to take a file for work.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub owner: &'a str,
    pub now: Millis,
    pub lease_ms: u64,
    pub route: &'a str,
}

/// How a claimed run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Loaded {
        load_id: String,
        rows_loaded: u64,
        rows_rejected: u64,
    },
    /// File-level validation failed; nothing was loaded. Stays until replayed.
    Rejected {
        reason: String,
        rows_rejected: u64,
    },
    /// Worth another try at `retry_at`.
    Failed {
        error: String,
        retry_at: Millis,
    },
    /// Given up on; stays until replayed.
    Dead {
        error: String,
    },
    /// Handed back untouched (shutdown, or a launcher took it): RECEIVED again, and the
    /// attempt of this claim is not counted.
    Released,
}

/// Which records [`StateStore::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Empty means every state.
    pub states: Vec<FileState>,
    pub dataset: Option<String>,
    pub url_prefix: Option<String>,
    pub limit: Option<usize>,
}

/// A state store that could not answer.
#[derive(Debug, thiserror::Error)]
#[error("state store {store}: {message}")]
pub struct StateError {
    /// Where the store is (never with secrets).
    pub store: String,
    pub message: String,
    /// Whether asking again later can help (busy, throttled, unreachable).
    pub retryable: bool,
    /// The driver's or SDK's error, when there is one (its words are in `message` too).
    #[source]
    pub source: Option<super::ErrorSource>,
}

/// The per-file state machine, stored with conditional writes.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// Where the store is, for messages (never with secrets).
    fn describe(&self) -> String;

    /// Records a file as RECEIVED. `Ok(false)` when this URL and version are already known
    /// (whatever their state): the duplicate delivery changes nothing.
    async fn register(&self, file: &NewFile, now: Millis) -> Result<bool, StateError>;

    /// [`StateStore::register`] for many files, an answer per file in order. A store may write
    /// them together (SQLite: one transaction); then an error means none was registered. By
    /// default one by one, stopping at the first error (those before it stay registered, and
    /// are known when registered again).
    async fn register_many(&self, files: &[NewFile], now: Millis) -> Result<Vec<bool>, StateError> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            out.push(self.register(f, now).await?);
        }
        Ok(out)
    }

    /// Takes the file if nobody may be working on it: it is RECEIVED, or FAILED with
    /// `retry_at <= now`, or RUNNING with `lease_until <= now` (its worker died). The record
    /// becomes RUNNING with the claimer as owner, `lease_until = now + lease_ms`, `attempts + 1`
    /// and the route. Returns the record after the claim, or `None` when the file is unknown or
    /// not claimable. Two concurrent claims never both succeed.
    async fn claim(&self, key: &FileKey, claim: &Claim<'_>) -> Result<Option<FileRecord>, StateError>;

    /// Extends the lease to `now + lease_ms` if `owner` still holds the file RUNNING; `false`
    /// when the claim was lost (stop working on the file).
    async fn renew(&self, key: &FileKey, owner: &str, now: Millis, lease_ms: u64) -> Result<bool, StateError>;

    /// Records the outcome if `owner` still holds the file RUNNING (even past its lease, as long
    /// as nobody took it over); `false` otherwise, and nothing changes. LOADED clears
    /// `last_error`; REJECTED, FAILED and DEAD set it; FAILED sets `retry_at`; every outcome
    /// clears `lease_until`; `Released` also gives back the attempt.
    async fn finish(&self, key: &FileKey, owner: &str, outcome: &Outcome, now: Millis) -> Result<bool, StateError>;

    async fn get(&self, key: &FileKey) -> Result<Option<FileRecord>, StateError>;

    /// Records matching the filter, most recently updated first.
    async fn list(&self, filter: &Filter) -> Result<Vec<FileRecord>, StateError>;

    /// Number of files per state (states with none are left out), optionally for one dataset.
    async fn count_by_state(&self, dataset: Option<&str>) -> Result<Vec<(FileState, u64)>, StateError>;

    /// Puts a REJECTED, FAILED or DEAD file back to RECEIVED with `attempts = 0` and no
    /// `retry_at`, keeping `last_error` for the record. `false` for any other state or an
    /// unknown file, so replaying twice is harmless.
    async fn replay(&self, key: &FileKey, now: Millis) -> Result<bool, StateError>;
}
