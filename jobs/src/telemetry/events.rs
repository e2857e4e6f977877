//! Every log event of the file job, the local service and the Lambda function, one struct each:
//! the struct names its fields once, writes the line (the words a person reads, the same as
//! before the fields existed) and, for a finished file, counts it (the EMF line on stdout).
//!
//! The events of a file run inside its span ([`file_span`]), so JSON lines carry `dataset`,
//! `url` and `version` without each event repeating them; events that may happen outside it
//! name the URL themselves.

use crate::metrics::{FileMetrics, TaskLaunchMetrics};
use crate::pipeline::FileOutcome;
use crate::ports::{FileState, now_ms};
use std::fmt::Display;
use tracing::{error, info, warn};

/// A log event: [`Event::log`] writes its line, [`Event::count`] its metrics (a `--quiet`
/// pipeline counts without logging).
pub trait Event {
    fn log(&self);
    fn count(&self) {}
}

/// Logs and counts `e`.
pub fn emit(e: impl Event) {
    e.log();
    e.count();
}

/// The span of one file job. ERROR level, so that it is kept at every filter that shows any
/// line: a warning about the file still names it.
pub fn file_span(dataset: &str, url: &str, version: &str) -> tracing::Span {
    let dataset = (!dataset.is_empty()).then_some(dataset);
    tracing::error_span!("file", dataset, url, version)
}

/// A file is done for this attempt: LOADED, REJECTED, FAILED or DEAD.
pub struct FileFinished<'a> {
    pub outcome: &'a FileOutcome,
    /// The EMF line's content, when this runtime prints metrics and the outcome was recorded.
    pub metrics: Option<FileMetrics>,
}

impl Event for FileFinished<'_> {
    fn log(&self) {
        let o = self.outcome;
        let dataset = (!o.dataset.is_empty()).then_some(o.dataset.as_str());
        macro_rules! at {
            ($level:ident) => {
                $level!(
                    dataset,
                    url = o.url,
                    version = o.version,
                    state = o.state.as_str(),
                    load_id = o.load_id.as_deref(),
                    route = o.route,
                    attempts = o.attempts,
                    rows_read = o.rows_read,
                    rows_loaded = o.rows_loaded,
                    rows_rejected = o.rows_rejected,
                    quarantine = o.quarantine.as_deref(),
                    reason = o.reason.as_deref(),
                    seconds = o.seconds,
                    "{}",
                    file_line(o)
                )
            };
        }
        match o.state {
            FileState::Loaded if o.rows_rejected == 0 => at!(info),
            FileState::Dead => at!(error),
            _ => at!(warn),
        }
    }

    fn count(&self) {
        if let Some(m) = &self.metrics {
            println!("{}", m.emf(now_ms()));
        }
    }
}

/// The per-file line a person reads.
fn file_line(o: &FileOutcome) -> String {
    let mut s = format!("{} {}", o.state, o.url);
    if !o.dataset.is_empty() {
        s.push_str(&format!(" [{}]", o.dataset));
    }
    match o.state {
        FileState::Loaded => {
            s.push_str(&format!(
                ": {} rows loaded, {} rejected, load {} ({:.2} s, {})",
                o.rows_loaded,
                o.rows_rejected,
                o.load_id.as_deref().unwrap_or("-"),
                o.seconds,
                o.route
            ));
        }
        _ => s.push_str(&format!(" (attempt {})", o.attempts)),
    }
    if let Some(q) = &o.quarantine {
        s.push_str(&format!("; rejected rows in {q}"));
    }
    if let Some(r) = &o.reason {
        s.push_str(&format!(": {r}"));
    }
    s
}

/// A file of 64 MB or more passed another tenth.
pub struct ReadProgress<'a> {
    pub url: &'a str,
    pub percent: u64,
    pub rows: u64,
}

impl Event for ReadProgress<'_> {
    fn log(&self) {
        let Self { url, percent, rows } = *self;
        info!(url, percent, rows, "{url}: {percent}% read, {rows} rows");
    }
}

/// A file could not be claimed because the state store failed.
pub struct ClaimFailed<'a> {
    pub url: &'a str,
    pub dataset: &'a str,
    pub error: &'a dyn Display,
}

impl Event for ClaimFailed<'_> {
    fn log(&self) {
        let Self { url, dataset, error } = *self;
        warn!(url, dataset, %error, "cannot claim {url}: {error}; it stays for the next pass");
    }
}

/// The lease on a file ran out while it was worked on; its new owner finishes it.
pub struct ClaimLost<'a> {
    pub url: &'a str,
}

impl Event for ClaimLost<'_> {
    fn log(&self) {
        let url = self.url;
        warn!(url, "lost the claim on {url} (lease expired); leaving it to its new owner");
    }
}

/// A lease could not be renewed this time (it is tried again a third of a lease later).
pub struct RenewFailed<'a> {
    pub url: &'a str,
    pub error: &'a dyn Display,
}

impl Event for RenewFailed<'_> {
    fn log(&self) {
        let Self { url, error } = *self;
        warn!(url, %error, "cannot renew the lease on {url}: {error}");
    }
}

/// The warehouse refused rows of a batch: it is split in two to find the file(s) at fault.
pub struct BatchRefused<'a> {
    pub dataset: &'a str,
    pub files: usize,
    pub error: &'a dyn Display,
}

impl Event for BatchRefused<'_> {
    fn log(&self) {
        let Self { dataset, files, error } = *self;
        warn!(
            dataset,
            files,
            %error,
            "the warehouse refused rows of a batch of {files} files of `{dataset}`; loading them in two halves to find the file(s) at fault: {error}"
        );
    }
}

/// The state store holds another outcome for the file than the one this worker reached.
pub struct OutcomeTaken<'a> {
    pub url: &'a str,
}

impl Event for OutcomeTaken<'_> {
    fn log(&self) {
        let url = self.url;
        warn!(
            url,
            "{url}: the state store already holds another outcome (another worker took the claim over, or a resent write of this one was applied); that outcome stands"
        );
    }
}

/// A file's outcome could not be written to the state store.
pub struct RecordFailed<'a> {
    pub url: &'a str,
    pub state: FileState,
    pub error: &'a dyn Display,
}

impl Event for RecordFailed<'_> {
    fn log(&self) {
        let Self { url, state, error } = *self;
        error!(
            url,
            state = state.as_str(),
            %error,
            "cannot record {state} for {url}: {error}; it will be retried after its lease"
        );
    }
}

/// An alert could not be delivered.
pub struct AlertFailed<'a> {
    pub error: &'a dyn Display,
}

impl Event for AlertFailed<'_> {
    fn log(&self) {
        let error = self.error;
        error!(%error, "{error} (the file's state is recorded; `glueless status` shows it)");
    }
}

/// A large file went to a remote task.
pub struct TaskLaunched<'a> {
    pub url: &'a str,
    pub route: &'a str,
    pub task: &'a str,
    pub bytes: u64,
    /// The EMF line's content, when this runtime prints metrics.
    pub metrics: Option<TaskLaunchMetrics>,
}

impl Event for TaskLaunched<'_> {
    fn log(&self) {
        let Self { url, route, task, bytes, .. } = *self;
        info!(url, route, task, bytes, "{url}: launched {route} task {task} ({bytes} bytes)");
    }

    fn count(&self) {
        if let Some(m) = &self.metrics {
            println!("{}", m.emf(now_ms()));
        }
    }
}

/// A claim could not be handed back after a failed launch.
pub struct HandBackFailed<'a> {
    pub url: &'a str,
    pub error: &'a dyn Display,
}

impl Event for HandBackFailed<'_> {
    fn log(&self) {
        let Self { url, error } = *self;
        warn!(url, %error, "cannot hand back {url}: {error}; it is taken up again after its lease");
    }
}

/// A launch failed; the file stays RECEIVED.
pub struct LaunchFailed<'a> {
    pub url: &'a str,
    pub error: &'a dyn Display,
}

impl Event for LaunchFailed<'_> {
    fn log(&self) {
        let Self { url, error } = *self;
        warn!(url, %error, "{error}; it stays RECEIVED and is launched again next pass");
    }
}

/// An entry of the landing prefix could not be named or read (logged once per run).
pub struct LandingEntrySkipped<'a> {
    pub problem: &'a str,
}

impl Event for LandingEntrySkipped<'_> {
    fn log(&self) {
        let problem = self.problem;
        warn!(problem, "skipped a landing entry: {problem}");
    }
}

/// A new object could not be registered in the state store.
pub struct RegisterFailed<'a> {
    pub url: &'a str,
    pub error: &'a dyn Display,
}

impl Event for RegisterFailed<'_> {
    fn log(&self) {
        let Self { url, error } = *self;
        warn!(url, %error, "cannot register {url}: {error}; trying again next pass");
    }
}

/// The landing prefix could not be listed.
pub struct ListFailed<'a> {
    pub location: &'a str,
    pub error: &'a dyn Display,
    pub retry_in: std::time::Duration,
}

impl Event for ListFailed<'_> {
    fn log(&self) {
        let Self { location, error, retry_in } = *self;
        error!(location, %error, "cannot list {location}: {error}; trying again in {retry_in:?}");
    }
}

/// The landing folder cannot be watched (no inotify, its limit reached): new files are found by
/// listing it every `poll_interval_ms`.
pub struct WatchUnavailable<'a> {
    pub error: &'a dyn Display,
    pub poll: std::time::Duration,
}

impl Event for WatchUnavailable<'_> {
    fn log(&self) {
        let Self { error, poll } = *self;
        warn!(%error, "cannot watch the landing folder: {error}; listing it every {poll:?} instead");
    }
}

/// The state store could not be read for the files that are ready.
pub struct StateUnreadable<'a> {
    pub error: &'a dyn Display,
    pub retry_in: std::time::Duration,
}

impl Event for StateUnreadable<'_> {
    fn log(&self) {
        let Self { error, retry_in } = *self;
        error!(%error, "cannot read the state store: {error}; trying again in {retry_in:?}");
    }
}

/// An unroutable file could not be recorded REJECTED.
pub struct UnroutableNotRecorded<'a> {
    pub url: &'a str,
    pub error: &'a dyn Display,
}

impl Event for UnroutableNotRecorded<'_> {
    fn log(&self) {
        let Self { url, error } = *self;
        error!(url, %error, "cannot record {url}: {error}");
    }
}

/// A signal asked the service to stop: after the files in hand, or (a second one) at once.
pub struct Stopping {
    pub now: bool,
}

impl Event for Stopping {
    fn log(&self) {
        if self.now {
            warn!("stopping now; claimed files are taken up again when their lease ends");
        } else {
            info!("stopping after the files in hand (signal again to stop at once)");
        }
    }
}

/// An SQS record of a Lambda batch had no message id.
pub struct RecordWithoutId;

impl Event for RecordWithoutId {
    fn log(&self) {
        warn!("a record without a messageId: nothing to report it by; skipped");
    }
}

/// An SQS message goes back to the queue (in `batchItemFailures` for the Lambda; made visible
/// again by the worker, which knows how often it was received).
pub struct MessageRetried<'a> {
    pub message_id: &'a str,
    pub reason: &'a str,
    pub receive_count: Option<u32>,
}

impl Event for MessageRetried<'_> {
    fn log(&self) {
        let Self { message_id, reason, receive_count } = *self;
        match receive_count {
            Some(n) => {
                info!(message_id, reason, receive_count = n, "message {message_id} (receive {n}) is retried: {reason}")
            }
            None => info!(message_id, reason, "message {message_id} is retried: {reason}"),
        }
    }
}

/// A message names nothing to load (another event type, another bucket).
pub struct MessageIgnored<'a> {
    pub message_id: &'a str,
    pub reason: &'a str,
}

impl Event for MessageIgnored<'_> {
    fn log(&self) {
        let Self { message_id, reason } = *self;
        info!(message_id, reason, "message {message_id}: ignored: {reason}");
    }
}

/// The object a message names was deleted after the event: nothing to load.
pub struct ObjectGone<'a> {
    pub message_id: &'a str,
    pub url: &'a str,
}

impl Event for ObjectGone<'_> {
    fn log(&self) {
        let Self { message_id, url } = *self;
        info!(message_id, url, "message {message_id}: {}", object_gone(url));
    }
}

/// Why a message whose object is gone is done ([`ObjectGone`]'s words, and the message's
/// `ignored` reason).
pub fn object_gone(url: &str) -> String {
    format!("{url} is gone (deleted after the event); nothing to load")
}

/// A claim was handed back (RECEIVED again, the attempt not counted) before the deadline.
pub struct HandedBack<'a> {
    pub url: &'a str,
}

impl Event for HandedBack<'_> {
    fn log(&self) {
        let url = self.url;
        info!(url, "{url}: handed back before the deadline");
    }
}

/// A large file could not be launched for a message; the message is retried.
pub struct LaunchRetried<'a> {
    pub url: &'a str,
    pub error: &'a dyn Display,
}

impl Event for LaunchRetried<'_> {
    fn log(&self) {
        let Self { url, error } = *self;
        warn!(url, %error, "{error}; the message is retried");
    }
}

/// The sweep for lapsed remote tasks could not read the state store.
pub struct SweepListFailed<'a> {
    pub error: &'a dyn Display,
}

impl Event for SweepListFailed<'_> {
    fn log(&self) {
        let error = self.error;
        warn!(%error, "sweep: cannot list RUNNING files: {error}");
    }
}

/// The sweep launches again a file whose remote task died (lease lapsed) or failed (retry due).
pub struct SweepRelaunch<'a> {
    pub url: &'a str,
    pub state: FileState,
    pub launcher: &'a str,
    pub owner: Option<&'a str>,
}

impl Event for SweepRelaunch<'_> {
    fn log(&self) {
        let Self { url, state, launcher, owner } = *self;
        info!(
            url,
            state = state.as_str(),
            launcher,
            owner,
            "sweep: {url} ({state} on {launcher}, owner {owner:?}) is due again; launching it"
        );
    }
}

/// The worker's receive from the queue failed; it tries again after `retry_in`.
pub struct ReceiveFailed<'a> {
    pub error: &'a dyn Display,
    pub retry_in: std::time::Duration,
}

impl Event for ReceiveFailed<'_> {
    fn log(&self) {
        let Self { error, retry_in } = *self;
        warn!(%error, "{error}; trying again in {retry_in:?}");
    }
}

/// The visibility of a batch in work could not be extended (tried again a third of it later).
pub struct VisibilityNotExtended<'a> {
    pub messages: usize,
    pub error: &'a dyn Display,
}

impl Event for VisibilityNotExtended<'_> {
    fn log(&self) {
        let Self { messages, error } = *self;
        warn!(messages, %error, "cannot extend the visibility of {messages} message(s): {error}");
    }
}

/// A done message could not be deleted: it comes back and is seen as a duplicate.
pub struct DeleteFailed<'a> {
    pub message_id: &'a str,
}

impl Event for DeleteFailed<'_> {
    fn log(&self) {
        let message_id = self.message_id;
        warn!(message_id, "message {message_id} could not be deleted; it comes back and is seen as a duplicate");
    }
}

/// The delete of a batch of done messages failed as a whole.
pub struct BatchDeleteFailed<'a> {
    pub error: &'a dyn Display,
}

impl Event for BatchDeleteFailed<'_> {
    fn log(&self) {
        let error = self.error;
        warn!(%error, "{error}; the messages come back and are seen as duplicates");
    }
}

/// The worker could not time retried messages: they come back after the visibility timeout
/// (the Lambda's counterpart is [`DelayFailed`]).
pub struct RetryNotTimed<'a> {
    pub error: &'a dyn Display,
}

impl Event for RetryNotTimed<'_> {
    fn log(&self) {
        let error = self.error;
        warn!(%error, "{error}; the message(s) come back after the queue's visibility timeout");
    }
}

/// An ECS task took over the claim its launcher made for it.
pub struct ClaimTakenOver<'a> {
    pub url: &'a str,
    pub owner: &'a str,
    pub attempts: u32,
}

impl Event for ClaimTakenOver<'_> {
    fn log(&self) {
        let Self { url, owner, attempts } = *self;
        info!(url, owner, attempts, "{url}: took over the claim of {owner} (attempt {attempts})");
    }
}

/// The claim an ECS task was launched under lapsed before it started: it claims the file anew.
pub struct ClaimLapsed<'a> {
    pub url: &'a str,
    pub owner: &'a str,
}

impl Event for ClaimLapsed<'_> {
    fn log(&self) {
        let Self { url, owner } = *self;
        warn!(url, owner, "{url}: the claim of {owner} has lapsed; claiming the file anew");
    }
}

/// A contract file was added, removed or changed: the contracts were loaded again.
pub struct ContractsReloaded<'a> {
    pub dir: &'a std::path::Path,
}

impl Event for ContractsReloaded<'_> {
    fn log(&self) {
        let dir = self.dir.display();
        info!(%dir, "contracts reloaded from {dir}");
    }
}

/// A contract file cannot be used.
pub struct ContractBroken<'a> {
    pub path: &'a std::path::Path,
    pub error: &'a str,
}

impl Event for ContractBroken<'_> {
    fn log(&self) {
        let Self { path, error } = *self;
        let path = path.display();
        warn!(%path, error, "contract error: {error}");
    }
}

/// The contracts could not be loaded again: the ones loaded before stay in use.
pub struct ContractsNotReloaded<'a> {
    pub error: &'a dyn Display,
}

impl Event for ContractsNotReloaded<'_> {
    fn log(&self) {
        let error = self.error;
        warn!(%error, "{error}; keeping the contracts loaded before");
    }
}

/// Retried messages could not be hidden until their retry is due.
pub struct DelayFailed<'a> {
    pub error: &'a dyn Display,
}

impl Event for DelayFailed<'_> {
    fn log(&self) {
        let error = self.error;
        warn!(%error, "{error}; retried messages come back after the queue's visibility timeout");
    }
}

/// The Lambda function is ready for its first invocation.
pub struct LambdaReady<'a> {
    pub millis: u128,
    pub lake: &'a str,
    pub state: &'a str,
    pub warehouse: &'a str,
    pub launcher: &'a str,
}

impl Event for LambdaReady<'_> {
    fn log(&self) {
        let Self { millis, lake, state, warehouse, launcher } = *self;
        let version = env!("CARGO_PKG_VERSION");
        // Not `version` and `state`: those name a file's version and state in every other line.
        info!(
            glueless_version = version,
            ready_ms = millis as u64,
            lake,
            state_store = state,
            warehouse,
            launcher,
            "ready in {millis} ms (version {version}): lake {lake}, state {state}, warehouse {warehouse}, large files via {launcher}"
        );
    }
}

/// The Lambda function cannot start or its runtime API failed: the process ends.
pub struct LambdaFailed<'a> {
    pub error: &'a dyn Display,
}

impl Event for LambdaFailed<'_> {
    fn log(&self) {
        let error = self.error;
        error!(%error, "{error}");
    }
}
