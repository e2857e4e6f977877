//! The local service (`glueless run`): watch the landing prefix, register new objects, and
//! process what is ready, dataset by dataset, in micro-batches.
//!
//! The watcher lists the landing prefix once at start (so files that arrived while nothing ran
//! are picked up), then whenever the folder of a local lake reports a change (file-system
//! notifications, [`super::lake::LandingWatch`]) and at the latest every `poll_interval_ms` (a bucket is only
//! listed, every `poll_interval_ms`); each new URL and version becomes RECEIVED in the state
//! store. Work is whatever the state store says is claimable: RECEIVED, FAILED past its
//! `retry_at`, or RUNNING past its lease (its worker died). A dataset's ready files wait up to
//! `batch_max_wait_ms` for company, then go, oldest first, in batches of at most
//! `batch_max_files`, `max_concurrent_batches` of them at once (others are transformed while one
//! is in the warehouse); files above `inline_max_bytes` go through the launcher instead. With
//! `--once` nothing waits for company and the run ends when the lake is quiet: nothing RECEIVED,
//! FAILED with attempts left, or RUNNING.
//!
//! A local file is taken once it looks finished: it was seen unchanged for `settle_ms` — its
//! modification time is that old, or (a clock in the future) it was the same on two looks
//! `settle_ms` apart. A file still being written keeps changing, and every change starts the
//! wait again. The watcher remembers the versions it registered only while they are still in the
//! landing folder, and at most [`SEEN_MAX`] of them; past that the state store, which knows
//! them, answers (a registration of a known version changes nothing).

use super::catalog::{Entry, Route};
use super::{Accepted, FileOutcome, Pipeline, unroutable_reason};
use crate::ports::{FileKey, FileRecord, FileState, Filter, Millis, now_ms};
use crate::telemetry::events as logs;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Passes whose listing of the landing prefix failed as a whole.
    pub list_errors: u64,
    /// Landing entries that could not be named or read (each logged once).
    pub unreadable: u64,
}

impl RunSummary {
    /// Outcomes in `state` this run recorded (a file retried twice counts twice as FAILED).
    pub fn count(&self, state: FileState) -> usize {
        self.files.iter().filter(|f| f.state == state).count()
    }

    /// The last outcome of each file version this run finished (a file FAILED then LOADED
    /// counts as LOADED).
    pub fn finals(&self) -> impl Iterator<Item = &FileOutcome> {
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, f) in self.files.iter().enumerate() {
            last.insert((f.url.as_str(), f.version.as_str()), i);
        }
        self.files
            .iter()
            .enumerate()
            .filter(move |(i, f)| last.get(&(f.url.as_str(), f.version.as_str())) == Some(i))
            .map(|(_, f)| f)
    }

    /// How the run went, judged by the last state of each file it finished: `Failed` when a
    /// file ended FAILED or DEAD or the landing prefix could not be listed, else `Rejected`
    /// when rows or files were rejected (or a landing entry could not be read), else `Clean`.
    pub fn verdict(&self) -> RunVerdict {
        let (mut failed, mut rejected) = (self.list_errors > 0, self.unreadable > 0);
        for f in self.finals() {
            match f.state {
                FileState::Failed | FileState::Dead => failed = true,
                FileState::Rejected => rejected = true,
                _ if f.rows_rejected > 0 => rejected = true,
                _ => {}
            }
        }
        if failed {
            RunVerdict::Failed
        } else if rejected {
            RunVerdict::Rejected
        } else {
            RunVerdict::Clean
        }
    }
}

/// How a run went ([`RunSummary::verdict`]); the command line maps it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunVerdict {
    /// Every file finished LOADED with no rejected row (or there was nothing to do).
    Clean,
    /// Rows or files were rejected, or a landing entry skipped for its name, and nothing worse.
    Rejected,
    /// A file ended FAILED or DEAD, or the landing prefix could not be listed.
    Failed,
}

/// After a change is reported, the service waits this long for the changes that come with it
/// before it looks, so a burst costs one look, not one per change.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(50);

/// At most this many registered versions are remembered by the watcher between passes.
pub const SEEN_MAX: usize = 100_000;

/// The versions the watcher registered (or found known) that are still in the landing prefix.
#[derive(Debug)]
struct Seen {
    ids: HashSet<(String, String)>,
    max: usize,
}

impl Seen {
    fn new(max: usize) -> Seen {
        Seen { ids: HashSet::new(), max }
    }

    fn contains(&self, id: &(String, String)) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id` unless full: a forgotten version is registered again next pass, which the
    /// state store answers as known.
    fn insert(&mut self, id: (String, String)) {
        if self.ids.len() < self.max {
            self.ids.insert(id);
        }
    }

    /// Forgets the versions no longer listed (deleted or replaced).
    fn retain_listed(&mut self, listed: &HashSet<(&str, &str)>) {
        self.ids.retain(|(u, v)| listed.contains(&(u.as_str(), v.as_str())));
    }
}

/// Local files not yet taken because they may still be written: the version seen first and when.
#[derive(Debug, Default)]
struct Settling {
    first_seen: HashMap<String, (String, std::time::Instant)>,
}

impl Settling {
    /// Whether `ev` looks finished. `settle` 0 takes everything at once.
    fn settled(&mut self, ev: &crate::ports::ObjectEvent, now: Millis, settle: Duration) -> bool {
        let settle_ms = settle.as_millis() as Millis;
        if settle_ms == 0 {
            return true;
        }
        // Old enough by its own clock (and not in the future): the common case, no second look.
        if let Some(t) = ev.event_time
            && t <= now
            && now - t >= settle_ms
        {
            self.first_seen.remove(&ev.url);
            return true;
        }
        match self.first_seen.get(&ev.url) {
            Some((v, since)) if *v == ev.version && since.elapsed() >= settle => {
                self.first_seen.remove(&ev.url);
                true
            }
            Some((v, _)) if *v == ev.version => false,
            _ => {
                self.first_seen.insert(ev.url.clone(), (ev.version.clone(), std::time::Instant::now()));
                false
            }
        }
    }

    /// When to look at `ev` again: once its modification time is `settle` old, or `settle` from
    /// now when that time is in the future.
    fn next_look(ev: &crate::ports::ObjectEvent, now: Millis, settle: Duration) -> Millis {
        let settle_ms = settle.as_millis() as Millis;
        match ev.event_time {
            Some(t) if t <= now => t.saturating_add(settle_ms),
            _ => now.saturating_add(settle_ms),
        }
    }

    fn retain_listed(&mut self, listed: &HashSet<(&str, &str)>) {
        self.first_seen.retain(|u, (v, _)| listed.contains(&(u.as_str(), v.as_str())));
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
                logs::emit(logs::Stopping { now: false });
                shutdown.request();
            } else {
                logs::emit(logs::Stopping { now: true });
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
    let mut seen = Seen::new(SEEN_MAX);
    let mut settling = Settling::default();
    let mut warned: HashSet<String> = HashSet::new();
    let poll = Duration::from_millis(p.settings.run.poll_interval_ms);
    let settle = Duration::from_millis(p.settings.run.settle_ms);
    // `--once` looks until the lake is quiet anyway; a service sleeps until something changes.
    let mut watch = match p.lake.watch_landing().filter(|_| !opts.once) {
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            p.emit(logs::WatchUnavailable { error: &e, poll });
            None
        }
        None => None,
    };
    loop {
        summary.passes += 1;
        if let Some(w) = watch.as_mut() {
            w.mark_seen(); // this pass's listing sees them
        }
        let mut busy = false;
        let mut next_wake: Option<Millis> = None;
        let mut wake_at = |t: Millis| next_wake = Some(next_wake.map_or(t, |n: Millis| n.min(t)));
        let catalog = p.refresh_catalog();

        // 1. Watch: register objects not seen before.
        let now = now_ms();
        match p.lake.scan_landing().await {
            Ok(listing) => {
                // One warning per unreadable entry, not one per pass.
                let problems: HashSet<String> = listing.problems.into_iter().collect();
                for line in problems.difference(&warned) {
                    p.emit(logs::LandingEntrySkipped { problem: line });
                    summary.unreadable += 1;
                }
                warned = problems;
                let listed: HashSet<(&str, &str)> =
                    listing.events.iter().map(|e| (e.url.as_str(), e.version.as_str())).collect();
                seen.retain_listed(&listed);
                settling.retain_listed(&listed);
                let (mut fresh, mut ids) = (Vec::new(), Vec::new());
                for ev in &listing.events {
                    let id = (ev.url.clone(), ev.version.clone());
                    if seen.contains(&id) {
                        continue;
                    }
                    if p.lake.is_local && !settling.settled(ev, now, settle) {
                        busy = true; // still being written, perhaps: look again once it may have settled
                        wake_at(Settling::next_look(ev, now, settle));
                        continue;
                    }
                    fresh.push(ev);
                    ids.push(id);
                }
                // Registered together: one state-store call per chunk, not one per file.
                for ((ev, id), accepted) in fresh.iter().zip(ids).zip(p.accept_all(&fresh).await) {
                    match accepted {
                        Ok(Accepted::New { .. }) => summary.received += 1,
                        // Counted once per run: a version forgotten past SEEN_MAX comes back here.
                        Ok(Accepted::Duplicate) if summary.passes == 1 => summary.duplicates += 1,
                        Ok(Accepted::Duplicate) => {}
                        Ok(Accepted::Unroutable { outcome, .. }) => {
                            summary.received += 1;
                            summary.files.extend(outcome.map(|o| *o));
                        }
                        Err(e) => {
                            p.emit(logs::RegisterFailed { url: &ev.url, error: &e });
                            continue;
                        }
                    }
                    seen.insert(id);
                }
            }
            Err(e) => {
                summary.list_errors += 1;
                let location = format!("{}/{}", p.lake.root, p.lake.landing);
                p.emit(logs::ListFailed { location: &location, error: &e, retry_in: poll })
            }
        }

        // 2. What is ready, per dataset.
        let filter =
            Filter { states: vec![FileState::Received, FileState::Failed, FileState::Running], ..Filter::default() };
        let pending = match p.state.list(&filter).await {
            Ok(v) => v,
            Err(e) => {
                p.emit(logs::StateUnreadable { error: &e, retry_in: poll });
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
                    Err(err) => p.emit(logs::LaunchFailed { url: &r.key.url, error: &err }),
                },
                Route::Dataset(e) => ready.entry(e.dataset.contract.name.clone()).or_default().push(r),
                _ => {
                    let reason = unroutable_reason(&route, key, &catalog).unwrap_or_default();
                    match p.reject_unroutable(&r.key, &reason).await {
                        Ok(outcome) => summary.files.extend(outcome),
                        Err(e) => p.emit(logs::UnroutableNotRecorded { url: &r.key.url, error: &e }),
                    }
                }
            }
        }

        // 3. Micro-batches: a dataset's files go together once the batch is full or its oldest
        // file has waited `batch_max_wait_ms`; `max_concurrent_batches` batches at once.
        let wait = p.settings.run.batch_max_wait_ms as Millis;
        let mut batches: Vec<(&Entry, Vec<FileKey>)> = Vec::new();
        for (name, mut files) in ready {
            let Some(entry) = catalog.get(&name) else { continue };
            let oldest = files.iter().map(|f| f.received_at).min().unwrap_or(now);
            if !opts.once && files.len() < p.settings.run.batch_max_files && now - oldest < wait {
                busy = true;
                wake_at(oldest + wait);
                continue;
            }
            files.sort_by_key(|f| f.received_at);
            for chunk in files.chunks(p.settings.run.batch_max_files) {
                batches.push((entry, chunk.iter().map(|f| f.key.clone()).collect()));
            }
        }
        busy |= !batches.is_empty();
        let mut processed = futures::stream::iter(batches)
            .map(|(entry, keys)| async move {
                if shutdown.is_requested() {
                    return Vec::new(); // still RECEIVED: the next run takes them
                }
                p.process(entry, &keys, "inline").await
            })
            // Unordered: a batch that finished early makes room for the next at once.
            .buffer_unordered(p.settings.run.max_concurrent_batches.max(1));
        while let Some(outcomes) = processed.next().await {
            summary.files.extend(outcomes);
        }

        // 4. Large files, one at a time, through the in-process launcher's queue.
        for key in p.launcher.take_queued() {
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
        match watch.as_mut() {
            Some(w) => tokio::select! {
                _ = shutdown.sleep(delay) => {}
                // A burst of changes (a copy of many files, a large file being written) is
                // looked at once, not once per change.
                _ = w.changed() => shutdown.sleep(WATCH_DEBOUNCE).await,
            },
            None => shutdown.sleep(delay).await,
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ObjectEvent;

    fn id(u: &str, v: &str) -> (String, String) {
        (u.to_string(), v.to_string())
    }

    #[test]
    fn the_watchers_memory_is_bounded_by_the_listing_and_a_cap() {
        let mut seen = Seen::new(3);
        for i in 0..5 {
            seen.insert(id(&format!("u{i}"), "v"));
        }
        assert_eq!(seen.ids.len(), 3, "never more than the cap");
        assert!(seen.contains(&id("u0", "v")) && !seen.contains(&id("u4", "v")));
        // u0 was deleted from the landing folder, u1 replaced by a new version: both forgotten.
        let listed: HashSet<(&str, &str)> = [("u1", "v2"), ("u2", "v")].into_iter().collect();
        seen.retain_listed(&listed);
        assert_eq!(seen.ids, [id("u2", "v")].into_iter().collect());
    }

    fn ev(version: &str, event_time: Millis) -> ObjectEvent {
        ObjectEvent {
            url: "/lake/landing/a.csv".into(),
            key: "landing/a.csv".into(),
            version: version.into(),
            size: 1,
            event_time: Some(event_time),
        }
    }

    #[test]
    fn a_file_settles_by_two_looks_whatever_its_clock() {
        let mut s = Settling::default();
        let now = now_ms();
        let settle = Duration::from_millis(30);
        assert!(s.settled(&ev("v1", now - 1000), now, settle), "old enough by its own clock");
        let future = now + 86_400_000;
        assert!(!s.settled(&ev("v1", future), now, settle), "first look");
        std::thread::sleep(Duration::from_millis(40));
        assert!(!s.settled(&ev("v2", future), now, settle), "changed since: a new first look");
        assert!(!s.settled(&ev("v2", future), now, settle), "too soon");
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.settled(&ev("v2", future), now, settle), "unchanged across two looks 30 ms apart");
        assert!(Settling::default().settled(&ev("v", future), now, Duration::ZERO), "settle_ms = 0 waits for nothing");
    }

    fn outcome(url: &str, state: FileState, rows_rejected: u64) -> FileOutcome {
        FileOutcome {
            url: url.into(),
            version: "v".into(),
            dataset: "d".into(),
            state,
            route: "inline".into(),
            attempts: 1,
            rows_read: 1,
            rows_loaded: 0,
            rows_rejected,
            load_id: None,
            quarantine: None,
            reason: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_verdict_follows_the_last_state_of_each_file() {
        use RunVerdict::{Clean, Failed, Rejected};
        let mut s = RunSummary::default();
        assert_eq!(s.verdict(), Clean);
        s.files.push(outcome("a", FileState::Failed, 0));
        assert_eq!(s.verdict(), Failed);
        s.files.push(outcome("a", FileState::Loaded, 0));
        assert_eq!(s.verdict(), Clean, "FAILED, then LOADED on retry");
        s.files.push(outcome("b", FileState::Loaded, 2));
        assert_eq!(s.verdict(), Rejected);
        s.unreadable = 1;
        s.files.truncate(2);
        assert_eq!(s.verdict(), Rejected);
        s.files.push(outcome("c", FileState::Dead, 0));
        assert_eq!(s.verdict(), Failed);
        let mut s = RunSummary { list_errors: 1, ..RunSummary::default() };
        assert_eq!(s.verdict(), Failed);
        s.list_errors = 0;
        s.files.push(outcome("d", FileState::Rejected, 0));
        assert_eq!(s.verdict(), Rejected);
    }
}
