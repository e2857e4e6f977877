//! The file job shared by every runtime: claim → transform → stage → load → record.
//!
//! Files of one dataset that are ready together go through [`Pipeline::process`] as one batch:
//! each is claimed and transformed on its own (its own staging Parquet and quarantine), and
//! the staged ones are loaded in one warehouse transaction, each with its own ledger row. The
//! claims are renewed while the batch works; a file whose claim was lost (its lease ran out and
//! another worker took it) is left to that worker. The ledger makes the load exactly-once even
//! when this process dies between the warehouse commit and the state update.

use super::catalog::Entry;
use super::{Pipeline, faults};
use crate::ports::{
    Alert, Claim, FileKey, FileLoad, FileRecord, FileState, Launched, LoadRequest, Millis, Outcome, StagedFile, now_ms,
};
use crate::telemetry::events::{self as logs, Event};
use futures::StreamExt;
use glueless_engine::job::ReportError;
use glueless_engine::text::{MAX_MESSAGE_BYTES, MAX_QUOTED_BYTES, bounded};
use glueless_engine::{FileJob, JobError, Report};
use object_store::ObjectStoreExt;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// What happened to one file in this run (the per-file line, and the `run --format json` report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileOutcome {
    pub url: String,
    /// The file version (ETag or fingerprint) this outcome is for.
    pub version: String,
    pub dataset: String,
    pub state: FileState,
    pub route: String,
    pub attempts: u32,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub load_id: Option<String>,
    /// Where the rejected rows are.
    pub quarantine: Option<String>,
    /// Why it was not loaded, or a note (`already loaded by …`).
    pub reason: Option<String>,
    pub seconds: f64,
}

/// How a failure is handled.
#[derive(Clone)]
enum Failure {
    /// The file itself is wrong: REJECTED until replayed.
    Reject(String),
    /// May work later: FAILED with backoff, DEAD after `max_attempts`.
    Retry(String),
    /// Cannot work: DEAD now.
    Dead(String),
}

fn classify(e: &JobError) -> Failure {
    use glueless_engine::decode::DecodeError;
    match e {
        JobError::Input(DecodeError::NotFound { .. }) => Failure::Dead(format!(
            "{e}; if it is uploaded again it is picked up as a new version, or `glueless replay` it once it is back"
        )),
        JobError::Input(DecodeError::Changed { .. }) => {
            Failure::Dead(format!("{e}; not loaded as this version: the new version is received as a file of its own"))
        }
        JobError::Input(DecodeError::Refused { .. }) => Failure::Reject(e.to_string()),
        JobError::Input(DecodeError::Corrupt { .. }) => {
            Failure::Reject(format!("{e}; upload a complete copy (a new version is picked up by itself)"))
        }
        JobError::Transform { .. } => {
            Failure::Reject(format!("{e}; fix load.transform or the rows that break it, then `glueless replay`"))
        }
        e if e.is_retryable() => Failure::Retry(e.to_string()),
        e => Failure::Dead(e.to_string()),
    }
}

/// One claimed file while the batch works on it.
struct Work {
    rec: FileRecord,
    key_in_lake: String,
    started: std::time::Instant,
    result: Option<Result<Report, JobError>>,
    /// The file's span ([`logs::file_span`]): its events carry dataset, URL and version.
    span: tracing::Span,
}

impl Work {
    fn new(dataset: &str, rec: FileRecord, key_in_lake: String) -> Work {
        let span = logs::file_span(dataset, &rec.key.url, &rec.key.version);
        Work { rec, key_in_lake, started: std::time::Instant::now(), result: None, span }
    }
}

impl Pipeline {
    /// Logs and counts `e` ([`crate::telemetry`]: redacted and inert, text or JSON); a quiet
    /// pipeline only counts.
    pub fn emit(&self, e: impl Event) {
        if !self.quiet {
            e.log();
        }
        e.count();
    }

    /// Logs `e` in the span of the file `w`.
    fn emit_for(&self, w: &Work, e: impl Event) {
        w.span.in_scope(|| self.emit(e));
    }

    fn retry_at(&self, attempts: u32, now: Millis) -> Millis {
        let r = &self.settings.run;
        let exp = r.retry_base_secs * 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
        let secs = exp.min(r.retry_max_secs) * rand::random_range(0.5..=1.0);
        now + (secs * 1000.0) as Millis
    }

    /// Claims, transforms, stages and loads `keys` (files of the dataset `entry`) in one warehouse
    /// transaction; records each file's outcome. Files that cannot be claimed are skipped.
    pub async fn process(&self, entry: &Entry, keys: &[FileKey], route: &str) -> Vec<FileOutcome> {
        let lease_ms = self.settings.lease_ms();
        let mut claimed = Vec::new();
        for key in keys {
            let claim = Claim { owner: &self.owner, now: now_ms(), lease_ms, route };
            match self.state.claim(key, &claim).await {
                Ok(Some(rec)) => claimed.push(rec),
                Ok(None) => {}
                Err(e) => {
                    self.emit(logs::ClaimFailed { url: &key.url, dataset: &entry.dataset.contract.name, error: &e })
                }
            }
        }
        if !claimed.is_empty() {
            faults::point("after-claim");
        }
        self.process_claimed(entry, claimed).await
    }

    /// [`Pipeline::process`] for files this worker (`self.owner`) already holds RUNNING: a
    /// launched task takes over the claim its launcher made.
    pub async fn process_claimed(&self, entry: &Entry, claimed: Vec<FileRecord>) -> Vec<FileOutcome> {
        let work: Vec<Work> = claimed
            .into_iter()
            .map(|rec| {
                let key_in_lake = self.lake.key_of(&rec.key.url).unwrap_or(&rec.key.url).to_string();
                Work::new(&entry.dataset.contract.name, rec, key_in_lake)
            })
            .collect();
        if work.is_empty() {
            return Vec::new();
        }
        let lost = Arc::new(Mutex::new(HashSet::<FileKey>::new()));
        let (stop, renewing) = self.renew_leases(work.iter().map(|w| w.rec.key.clone()).collect(), lost.clone());
        let mut out = Vec::new();

        // A worker that died while holding a file counts as a failed attempt.
        let max = self.settings.run.max_attempts;
        let mut alive = Vec::new();
        for w in work {
            if w.rec.attempts > max {
                let error = format!(
                    "gave up after {} attempts: each time the worker stopped before finishing (killed, out of memory, or its lease of {} s ran out); last error: {}",
                    w.rec.attempts - 1,
                    self.settings.run.lease_secs,
                    w.rec.last_error.as_deref().unwrap_or("none recorded")
                );
                out.push(self.record_failure(&entry.dataset.contract.name, &w, Failure::Dead(error), None).await);
            } else {
                alive.push(w);
            }
        }
        let mut work = alive;

        // Transform each file into its own staging Parquet and quarantine.
        let concurrency = self.settings.run.max_concurrent_files;
        // Unordered: a slow file does not hold back the start of the next one.
        let results: Vec<(usize, _)> = futures::stream::iter(work.iter().enumerate().map(|(i, w)| {
            let job = tracing::Instrument::instrument(self.transform(entry, w), w.span.clone());
            async move { (i, job.await) }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
        for (i, r) in results {
            work[i].result = Some(r);
        }

        // Stage: rejected and failed files are recorded now; the rest go to the warehouse together.
        let mut staged: Vec<(Work, StagedFile)> = Vec::new();
        for w in work {
            let name = entry.dataset.contract.name.clone();
            if let Some(Ok(r)) = &w.result
                && r.outputs.iter().any(|o| o.kind == "quarantine" && o.rows > 0)
            {
                faults::point("after-quarantine");
            }
            match w.result.as_ref().expect("transformed") {
                Err(e) => {
                    let f = classify(e);
                    out.push(self.record_failure(&name, &w, f, None).await);
                }
                Ok(report) if report.file_problem.is_some() => {
                    let p = report.file_problem.as_ref().expect("checked");
                    let reason = format!("{} ({})", p.message, p.rule);
                    out.push(self.record_failure(&name, &w, Failure::Reject(reason), Some(report)).await);
                }
                Ok(report) => match self.staged_file(&w, report) {
                    Ok(s) => {
                        faults::point("after-staging");
                        staged.push((w, s))
                    }
                    Err(e) => out.push(self.record_failure(&name, &w, Failure::Retry(e), Some(report)).await),
                },
            }
        }
        let lost_now = lost.lock().expect("lock").clone();
        staged.retain(|(w, _)| {
            let keep = !lost_now.contains(&w.rec.key);
            if !keep {
                self.emit_for(w, logs::ClaimLost { url: &w.rec.key.url });
            }
            keep
        });
        if !staged.is_empty() {
            out.extend(self.load(entry, staged).await);
        }
        let _ = stop.send(());
        let _ = renewing.await;
        out
    }

    /// Renews the claims on `keys` every third of the lease until told to stop; a claim that
    /// could not be renewed goes into `lost`.
    fn renew_leases(
        &self,
        keys: Vec<FileKey>,
        lost: Arc<Mutex<HashSet<FileKey>>>,
    ) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let owner = self.owner.clone();
        let lease_ms = self.settings.lease_ms();
        let every = std::time::Duration::from_millis((lease_ms / 3).max(100));
        let handle = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => return,
                    _ = tokio::time::sleep(every) => {}
                }
                for k in &keys {
                    if lost.lock().expect("lock").contains(k) {
                        continue;
                    }
                    match state.renew(k, &owner, now_ms(), lease_ms).await {
                        Ok(true) => faults::point("during-renewal"),
                        Ok(false) => {
                            lost.lock().expect("lock").insert(k.clone());
                        }
                        // A store hiccup: the lease still has two thirds to run; try again next time.
                        Err(e) => logs::emit(logs::RenewFailed { url: &k.url, error: &e }),
                    }
                }
            }
        });
        (tx, handle)
    }

    async fn transform(&self, entry: &Entry, w: &Work) -> Result<Report, JobError> {
        let name = &entry.dataset.contract.name;
        if let Err(reason) = self.lake.check_key(&w.key_in_lake) {
            return Err(JobError::Input(glueless_engine::decode::DecodeError::Refused {
                url: w.rec.key.url.clone(),
                reason,
            }));
        }
        let input = self.lake.location(&w.key_in_lake);
        let output = self.lake.staging_for(name, &w.key_in_lake, &w.rec.key.version);
        let rejects = self.lake.quarantine_for(name, &w.key_in_lake, &w.rec.key.version);
        // Files of 64 MB and more report every tenth of the way on stderr.
        let (url, quiet, big) = (w.rec.key.url.clone(), self.quiet, w.rec.size >= 64 << 20);
        let span = w.span.clone();
        let step = std::sync::atomic::AtomicU64::new(0);
        let progress: glueless_engine::job::ProgressFn = Arc::new(move |bytes, total, rows| {
            faults::point("during-transform");
            if big && !quiet && total > 0 {
                let tenth = bytes * 10 / total;
                if tenth > step.fetch_max(tenth, std::sync::atomic::Ordering::Relaxed) {
                    span.in_scope(|| logs::emit(logs::ReadProgress { url: &url, percent: tenth * 10, rows }));
                }
            }
        });
        let report = FileJob::new(&entry.dataset, input)
            .output(output)
            .rejects(rejects)
            .threads(self.threads)
            // Staging in a local lake is read back by the load on this machine: zstd would
            // only cost time. On S3 it is compressed (transfer, and Redshift's COPY).
            .compressed(!self.lake.is_local)
            .limits(self.settings.limits.engine())
            .max_errors(5)
            .warehouse_limits(self.warehouse.limits())
            .progress(progress)
            .if_match(self.lake.if_match(&w.rec.key.version))
            .run()
            .await?;
        // A local file can be rewritten in place while it is read (S3 serves a GET from one
        // version): if it is not the registered version now, what was read may be a mix.
        if self.lake.is_local
            && let Ok(Some(now)) = self.lake.head(&w.key_in_lake).await
            && now.version != w.rec.key.version
        {
            for o in &report.outputs {
                if let Ok(l) = self.stores.resolve(&o.url) {
                    let _ = l.store.delete(&l.path).await;
                }
            }
            return Err(JobError::Input(glueless_engine::decode::DecodeError::Changed {
                url: w.rec.key.url.clone(),
                expected: w.rec.key.version.clone(),
            }));
        }
        Ok(report)
    }

    fn staged_file(&self, w: &Work, report: &Report) -> Result<StagedFile, String> {
        let mut parts = Vec::new();
        for o in report.outputs.iter().filter(|o| o.kind == "parquet") {
            parts.push(self.stores.resolve(&o.url).map_err(|e| e.to_string())?);
        }
        Ok(StagedFile {
            key: w.rec.key.clone(),
            fingerprint: report.fingerprint.clone(),
            parts,
            rows: report.rows_valid,
        })
    }

    async fn ensure_table(&self, entry: &Entry) -> Result<(), crate::ports::WarehouseError> {
        if self.ready_tables.lock().expect("lock").contains(&entry.table.table) {
            return Ok(());
        }
        self.warehouse.ensure_table(&entry.table).await?;
        self.ready_tables.lock().expect("lock").insert(entry.table.table.clone());
        Ok(())
    }

    /// Loads the staged files in one transaction. When the warehouse refuses rows of it (a
    /// constraint, a trigger, a value it cannot hold: [`WarehouseError::is_refusal`]), the
    /// batch is split in two and each half loaded on its own, halves in arrival order, down to
    /// the single files that are refused: those end REJECTED with the warehouse's message, all
    /// the others load. A transient error leaves the files FAILED, to be retried with backoff.
    /// Anything else is the table's or the setup's problem, not a file's (a column missing
    /// from an existing table, a missing grant): the files are FAILED with the warehouse's
    /// message, which says what to change, retried with the same backoff, and DEAD (with an
    /// alert) after `max_attempts`; `glueless replay` re-drives them once it is fixed.
    async fn load(&self, entry: &Entry, staged: Vec<(Work, StagedFile)>) -> Vec<FileOutcome> {
        let name = entry.dataset.contract.name.clone();
        let mut out = Vec::new();
        if let Err(e) = self.ensure_table(entry).await {
            let f = self.load_failure(&e);
            for (w, _) in &staged {
                let report = w.result.as_ref().and_then(|r| r.as_ref().ok());
                out.push(self.record_failure(&name, w, f.clone(), report).await);
            }
            return out;
        }
        // Ranges of `staged` still to load, in arrival order.
        let mut pending = std::collections::VecDeque::from([std::ops::Range { start: 0, end: staged.len() }]);
        while let Some(range) = pending.pop_front() {
            let part = &staged[range.clone()];
            match self.load_once(entry, part).await {
                Ok(loaded) => out.extend(loaded),
                Err(e) if e.is_refusal() && part.len() > 1 => {
                    self.emit(logs::BatchRefused { dataset: &name, files: part.len(), error: &e });
                    let mid = range.start + part.len() / 2;
                    pending.push_front(mid..range.end);
                    pending.push_front(range.start..mid);
                }
                Err(e) => {
                    if !e.is_refusal() {
                        self.ready_tables.lock().expect("lock").remove(&entry.table.table);
                    }
                    let f = self.load_failure(&e);
                    for (w, _) in part {
                        let report = w.result.as_ref().and_then(|r| r.as_ref().ok());
                        out.push(self.record_failure(&name, w, f.clone(), report).await);
                    }
                }
            }
        }
        out
    }

    /// What a failed load (or `ensure_table`) means for its files; see [`Pipeline::load`].
    fn load_failure(&self, e: &crate::ports::WarehouseError) -> Failure {
        let msg = format!("warehouse {}: {e}", self.warehouse.describe());
        if e.is_refusal() {
            Failure::Reject(format!(
                "{msg}; the warehouse refuses this file's rows, so none of them was loaded (the other files of its batch are not held back): fix them in the file, or the table's constraint or trigger that refuses them, then `glueless replay` it"
            ))
        } else {
            // Transient, or a table or setup problem that someone has to fix: no file's fault,
            // so retried with backoff (DEAD and alerted after max_attempts).
            Failure::Retry(msg)
        }
    }

    /// One warehouse transaction for `staged`; records each file LOADED when it commits.
    async fn load_once(
        &self,
        entry: &Entry,
        staged: &[(Work, StagedFile)],
    ) -> Result<Vec<FileOutcome>, crate::ports::WarehouseError> {
        let name = entry.dataset.contract.name.clone();
        let load_id = format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let files: Vec<StagedFile> = staged.iter().map(|(_, s)| s.clone()).collect();
        let req = LoadRequest { table: &entry.table, load_id: &load_id, files: &files, now: now_ms() };
        let res = self.warehouse.load(&req).await?;
        faults::point("after-commit");
        let mut out = Vec::new();
        for (i, ((w, s), fl)) in staged.iter().zip(res.files).enumerate() {
            if i > 0 {
                faults::point("between-state-updates");
            }
            let report = w.result.as_ref().and_then(|r| r.as_ref().ok()).expect("staged files have a report");
            let (id, note) = match fl {
                FileLoad::Loaded { .. } => (load_id.clone(), None),
                FileLoad::AlreadyLoaded { load_id } => {
                    let note = format!("already in the warehouse ledger (load {load_id}); not loaded again");
                    (load_id, Some(note))
                }
            };
            let outcome = Outcome::Loaded {
                load_id: id.clone(),
                rows_loaded: if note.is_some() { 0 } else { s.rows },
                rows_rejected: report.rows_rejected,
            };
            let o = self.record(&name, w, outcome, Some(report), note).await;
            if !self.settings.run.keep_staging {
                for p in &s.parts {
                    let _ = p.store.delete(&p.path).await;
                }
            }
            out.push(o);
        }
        Ok(out)
    }

    /// Records a failure as REJECTED, FAILED or DEAD (after `max_attempts`), and alerts.
    async fn record_failure(&self, dataset: &str, w: &Work, f: Failure, report: Option<&Report>) -> FileOutcome {
        let now = now_ms();
        let outcome = match f {
            Failure::Reject(reason) => {
                Outcome::Rejected { reason, rows_rejected: report.map(|r| r.rows_rejected).unwrap_or(0) }
            }
            Failure::Dead(error) => Outcome::Dead { error },
            Failure::Retry(error) if w.rec.attempts >= self.settings.run.max_attempts => {
                Outcome::Dead { error: format!("{error} (gave up after {} attempts)", w.rec.attempts) }
            }
            Failure::Retry(error) => Outcome::Failed { error, retry_at: self.retry_at(w.rec.attempts, now) },
        };
        self.record(dataset, w, outcome, report, None).await
    }

    /// Records the outcome in the state store (if the claim is still ours), logs the per-file
    /// line and alerts on REJECTED and DEAD.
    async fn record(
        &self,
        dataset: &str,
        w: &Work,
        outcome: Outcome,
        report: Option<&Report>,
        note: Option<String>,
    ) -> FileOutcome {
        let key = &w.rec.key;
        // What is stored, reported and alerted stays small and holds no secret, whatever the
        // input or the warehouse said.
        let outcome = shown_outcome(outcome);
        let (state, reason, load_id, rows_loaded) = match &outcome {
            Outcome::Loaded { load_id, rows_loaded, .. } => {
                (FileState::Loaded, note, Some(load_id.clone()), *rows_loaded)
            }
            Outcome::Rejected { reason, .. } => (FileState::Rejected, Some(reason.clone()), None, 0),
            Outcome::Failed { error, .. } => (FileState::Failed, Some(error.clone()), None, 0),
            Outcome::Dead { error } => (FileState::Dead, Some(error.clone()), None, 0),
            Outcome::Released => (FileState::Received, None, None, 0),
        };
        let mut recorded = false;
        for attempt in 0..3 {
            match self.state.finish(key, &self.owner, &outcome, now_ms()).await {
                Ok(ok) => {
                    recorded = ok;
                    if !ok {
                        self.emit_for(w, logs::OutcomeTaken { url: &key.url });
                    }
                    break;
                }
                Err(e) if e.retryable && attempt < 2 => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                Err(e) => {
                    // The lease runs out and the file is claimed again; the ledger keeps a
                    // committed load from happening twice.
                    self.emit_for(w, logs::RecordFailed { url: &key.url, state, error: &e });
                    break;
                }
            }
        }
        let quarantine =
            report.and_then(|r| r.outputs.iter().find(|o| o.kind == "quarantine" && o.rows > 0)).map(|o| o.url.clone());
        let o = FileOutcome {
            url: key.url.clone(),
            version: key.version.clone(),
            dataset: dataset.to_string(),
            state,
            route: w.rec.route.clone().unwrap_or_default(),
            attempts: w.rec.attempts,
            rows_read: report.map(|r| r.rows_read).unwrap_or(0),
            rows_loaded,
            rows_rejected: report.map(|r| r.rows_rejected).unwrap_or(0),
            load_id,
            quarantine,
            reason,
            seconds: w.started.elapsed().as_secs_f64(),
        };
        let metrics =
            self.metrics_runtime.filter(|_| recorded).map(|r| self.file_metrics(&o, r, report, w.rec.event_time));
        self.emit_for(w, logs::FileFinished { outcome: &o, metrics });
        if recorded && matches!(state, FileState::Rejected | FileState::Dead) {
            let with_values = self.settings.alerts.include_values;
            let errors: Vec<ReportError> = report
                .map(|r| r.errors.iter().take(5).map(|e| alert_row_error(e, with_values)).collect())
                .unwrap_or_default();
            let alert = Alert {
                dataset: dataset.to_string(),
                object: key.url.clone(),
                state,
                reason: o.reason.clone().unwrap_or_default(),
                attempts: w.rec.attempts,
                rows_read: report.map(|r| r.rows_read),
                rows_rejected: report.map(|r| r.rows_rejected),
                row_errors: errors,
                quarantine: o.quarantine.clone(),
            };
            if let Err(e) = self.alerts.send(&alert).await {
                self.emit_for(w, logs::AlertFailed { error: &e });
            }
        }
        o
    }

    fn file_metrics(
        &self,
        o: &FileOutcome,
        runtime: &'static str,
        report: Option<&Report>,
        event_time: Option<Millis>,
    ) -> crate::metrics::FileMetrics {
        let lag_seconds = match (o.state, event_time) {
            (FileState::Loaded, Some(t)) => Some((now_ms() - t).max(0) as f64 / 1000.0),
            _ => None,
        };
        crate::metrics::FileMetrics {
            // CloudWatch refuses an empty dimension value; a file no contract matched has no dataset.
            dataset: if o.dataset.is_empty() { crate::metrics::NO_DATASET.into() } else { o.dataset.clone() },
            state: o.state.as_str(),
            runtime,
            object: o.url.clone(),
            rows_read: o.rows_read,
            rows_loaded: o.rows_loaded,
            rows_rejected: o.rows_rejected,
            bytes_read: report.map(|r| r.bytes_read).unwrap_or(0),
            seconds: o.seconds,
            lag_seconds,
        }
    }

    /// Hands a large file to the launcher. The in-process launcher queues it (this process
    /// claims it when it runs it). A remote one (ECS) gets it claimed for its task first (owner
    /// `<launcher>-launch:<id>`, lease `ecs.start_lease_secs`, the launcher's route); the task
    /// takes the claim over. `Ok(None)` when another worker has the file; when the launch
    /// fails, the claim is handed back (RECEIVED again, the attempt not counted).
    pub async fn launch(&self, file: &FileRecord) -> Result<Option<Launched>, String> {
        if !self.launcher.is_remote() {
            return self.launcher.launch(file).await.map(Some).map_err(|e| e.to_string());
        }
        self.launch_task(&file.key).await
    }

    /// The remote part of [`Pipeline::launch`]: claim `key` for a task, start it.
    pub async fn launch_task(&self, key: &FileKey) -> Result<Option<Launched>, String> {
        let route = self.launcher.name();
        let owner = format!("{route}-launch:{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let lease_ms = self.settings.ecs.start_lease_secs.max(1) * 1000;
        let claim = Claim { owner: &owner, now: now_ms(), lease_ms, route };
        let rec = match self.state.claim(key, &claim).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("cannot claim {} for a task: {e}", key.url)),
        };
        match self.launcher.launch(&rec).await {
            Ok(l) => {
                if let Launched::Remote { id } = &l {
                    let metrics = self.metrics_runtime.map(|runtime| crate::metrics::TaskLaunchMetrics {
                        dataset: rec.dataset.clone(),
                        runtime,
                        route: route.to_string(),
                        object: key.url.clone(),
                        task: id.clone(),
                    });
                    self.emit(logs::TaskLaunched { url: &key.url, route, task: id, bytes: rec.size, metrics });
                }
                Ok(Some(l))
            }
            Err(e) => {
                if let Err(r) = self.state.finish(key, &owner, &Outcome::Released, now_ms()).await {
                    self.emit(logs::HandBackFailed { url: &key.url, error: &r });
                }
                Err(e.to_string())
            }
        }
    }

    /// Claims an unroutable file just to record it REJECTED with `reason` (and alert).
    pub(super) async fn reject_unroutable(
        &self,
        key: &FileKey,
        reason: &str,
    ) -> Result<Option<FileOutcome>, crate::ports::StateError> {
        let claim = Claim { owner: &self.owner, now: now_ms(), lease_ms: self.settings.lease_ms(), route: "none" };
        Ok(match self.state.claim(key, &claim).await? {
            Some(rec) => {
                let w = Work::new("", rec, String::new());
                Some(self.record_failure("", &w, Failure::Reject(reason.to_string()), None).await)
            }
            None => None,
        })
    }
}

/// `outcome` with its reason or error bounded to [`MAX_MESSAGE_BYTES`] and redacted.
fn shown_outcome(outcome: Outcome) -> Outcome {
    let shown = |s: String| bounded(&crate::redact::text(&s), MAX_MESSAGE_BYTES).into_owned();
    match outcome {
        Outcome::Rejected { reason, rows_rejected } => Outcome::Rejected { reason: shown(reason), rows_rejected },
        Outcome::Failed { error, retry_at } => Outcome::Failed { error: shown(error), retry_at },
        Outcome::Dead { error } => Outcome::Dead { error: shown(error) },
        o => o,
    }
}

/// A row error as an alert shows it: the cell value, and the message that may quote it, only
/// with `[alerts] include_values`; every text bounded.
fn alert_row_error(e: &ReportError, with_values: bool) -> ReportError {
    let cut = |s: &str| bounded(s, MAX_QUOTED_BYTES * 4).into_owned();
    ReportError {
        line: e.line,
        row: e.row,
        field: e.field.as_deref().map(cut),
        rule: e.rule,
        value: if with_values { e.value.as_deref().map(cut) } else { None },
        message: if with_values { cut(&e.message) } else { String::new() },
    }
}
