//! The local service (`glueless run`): watch the landing prefix, register new objects, and
//! process what is ready, dataset by dataset, in micro-batches.
//!
//! The watcher lists the landing prefix every `poll_interval_ms` (and once at start, so files
//! that arrived while nothing ran are picked up); each new URL and version becomes RECEIVED in
//! the state store. Work is whatever the state store says is claimable: RECEIVED, FAILED past
//! its `retry_at`, or RUNNING past its lease (its worker died). A dataset's ready files wait up
//! to `batch_max_wait_ms` for company, then go as one batch of at most `batch_max_files`;
//! files above `inline_max_bytes` go through the launcher instead. With `--once` nothing waits
//! for company and the run ends when the lake is quiet: nothing RECEIVED, FAILED with attempts
//! left, or RUNNING.

use super::catalog::Route;
use super::{Accepted, FileOutcome, Pipeline, unroutable_reason};
use crate::ports::{FileKey, FileRecord, FileState, Filter, Millis, now_ms};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How `run` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Process what is pending and stop when the lake is quiet.
    pub once: bool,
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    /// Every file this run finished, in order.
    pub files: Vec<FileOutcome>,
    /// New objects registered.
    pub received: u64,
    /// Deliveries of an already known URL and version.
    pub duplicates: u64,
    pub passes: u64,
    pub seconds: f64,
    /// Set when the run stopped on a signal.
    pub interrupted: bool,
}

impl RunSummary {
    pub fn count(&self, state: FileState) -> usize {
        self.files.iter().filter(|f| f.state == state).count()
    }
}

/// A shutdown request (SIGINT/SIGTERM): finish the batch in hand, start nothing new.
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Shutdown {
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Returns when a shutdown is requested.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }

    /// Sleeps for `d`, or less if a shutdown is requested.
    pub async fn sleep(&self, d: Duration) {
        let notified = self.notify.notified();
        if self.is_requested() {
            return;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(d) => {}
        }
    }
}

/// Requests `shutdown` on the first SIGINT or SIGTERM; a second one exits at once (claims
/// then lapse with their lease and the files are taken up again).
pub fn on_signals(shutdown: std::sync::Arc<Shutdown>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        for n in 0..2 {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                eprintln!("glueless: stopping after the files in hand (signal again to stop at once)");
                shutdown.request();
            } else {
                eprintln!("glueless: stopping now; claimed files are taken up again when their lease ends");
                std::process::exit(130);
            }
        }
    });
}

fn claimable(r: &FileRecord, now: Millis) -> bool {
    match r.state {
        FileState::Received => true,
        FileState::Failed => r.retry_at.is_none_or(|t| t <= now),
        FileState::Running => r.lease_until.is_none_or(|t| t <= now),
        _ => false,
    }
}

/// Runs the service until the lake is quiet (`once`) or a shutdown is requested.
pub async fn run(p: &Pipeline, opts: RunOptions, shutdown: &Shutdown) -> RunSummary {
    let started = std::time::Instant::now();
    let mut summary = RunSummary::default();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let poll = Duration::from_millis(p.settings.run.poll_interval_ms);
    loop {
        summary.passes += 1;
        let mut busy = false;
        let mut next_wake: Option<Millis> = None;
        let mut wake_at = |t: Millis| next_wake = Some(next_wake.map_or(t, |n: Millis| n.min(t)));
        let catalog = p.refresh_catalog();

        // 1. Watch: register objects not seen before.
        let now = now_ms();
        match p.lake.list_landing().await {
            Ok(events) => {
                for ev in events {
                    let id = (ev.url.clone(), ev.version.clone());
                    if seen.contains(&id) {
                        continue;
                    }
                    let settle = p.settings.run.settle_ms as Millis;
                    if p.lake.is_local
                        && let Some(t) = ev.event_time
                        && now - t < settle
                    {
                        busy = true; // still being written, perhaps: look again soon
                        wake_at(t + settle);
                        continue;
                    }
                    match p.accept(&ev).await {
                        Ok(Accepted::New { .. }) => summary.received += 1,
                        Ok(Accepted::Duplicate) => summary.duplicates += 1,
                        Ok(Accepted::Unroutable { outcome, .. }) => {
                            summary.received += 1;
                            summary.files.extend(outcome.map(|o| *o));
                        }
                        Err(e) => {
                            p.log(&format!("cannot register {}: {e}; trying again next pass", ev.url));
                            continue;
                        }
                    }
                    seen.insert(id);
                }
            }
            Err(e) => p.log(&format!("cannot list {}{}: {e}; trying again in {poll:?}", p.lake.root, p.lake.landing)),
        }

        // 2. What is ready, per dataset.
        let filter =
            Filter { states: vec![FileState::Received, FileState::Failed, FileState::Running], ..Filter::default() };
        let pending = match p.state.list(&filter).await {
            Ok(v) => v,
            Err(e) => {
                p.log(&format!("cannot read the state store: {e}; trying again in {poll:?}"));
                shutdown.sleep(poll).await;
                if shutdown.is_requested() {
                    break;
                }
                continue;
            }
        };
        let now = now_ms();
        let mut ready: BTreeMap<String, Vec<FileRecord>> = BTreeMap::new();
        for r in pending {
            if !claimable(&r, now) {
                busy = true;
                if let Some(t) = if r.state == FileState::Failed { r.retry_at } else { r.lease_until } {
                    wake_at(t);
                }
                continue;
            }
            let Some(key) = p.lake.key_of(&r.key.url) else {
                continue; // a file of another lake sharing this state store
            };
            let route = catalog.route(key);
            match &route {
                Route::Dataset(_) if r.size > p.settings.run.inline_max_bytes => match p.launch(&r).await {
                    Ok(_) => busy = true,
                    Err(err) => p.log(&format!("{err}; it stays RECEIVED and is launched again next pass")),
                },
                Route::Dataset(e) => ready.entry(e.dataset.contract.name.clone()).or_default().push(r),
                _ => {
                    let reason = unroutable_reason(&route, key, &catalog).unwrap_or_default();
                    match p.reject_unroutable(&r.key, &reason).await {
                        Ok(outcome) => summary.files.extend(outcome),
                        Err(e) => p.log(&format!("cannot record {}: {e}", r.key.url)),
                    }
                }
            }
        }

        // 3. Micro-batches: a dataset's files go together once the batch is full or its oldest
        // file has waited `batch_max_wait_ms`.
        let wait = p.settings.run.batch_max_wait_ms as Millis;
        for (name, files) in ready {
            let Some(entry) = catalog.get(&name) else { continue };
            let oldest = files.iter().map(|f| f.received_at).min().unwrap_or(now);
            if !opts.once && files.len() < p.settings.run.batch_max_files && now - oldest < wait {
                busy = true;
                wake_at(oldest + wait);
                continue;
            }
            for chunk in files.chunks(p.settings.run.batch_max_files) {
                if shutdown.is_requested() {
                    break;
                }
                let keys: Vec<FileKey> = chunk.iter().map(|f| f.key.clone()).collect();
                summary.files.extend(p.process(entry, &keys, "inline").await);
                busy = true;
            }
        }

        // 4. Large files, one at a time, through the in-process launcher's queue.
        for key in p.in_process.drain() {
            if shutdown.is_requested() {
                continue; // still RECEIVED: the next run takes it
            }
            let Some(k) = p.lake.key_of(&key.url) else { continue };
            if let Route::Dataset(entry) = catalog.route(k) {
                summary.files.extend(p.process(entry, std::slice::from_ref(&key), p.launcher.name()).await);
                busy = true;
            }
        }

        if shutdown.is_requested() {
            summary.interrupted = true;
            break;
        }
        if opts.once && !busy {
            break;
        }
        let delay = match next_wake {
            Some(t) => Duration::from_millis((t - now_ms()).clamp(10, poll.as_millis() as i64) as u64),
            None if opts.once => Duration::from_millis(10),
            None => poll,
        };
        shutdown.sleep(delay).await;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary
}
