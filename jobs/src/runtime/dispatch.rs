//! The dispatcher of the AWS runtime, shared by the Lambda function and `glueless worker`: a
//! batch of SQS messages in, one verdict per message out.
//!
//! For each message: read its body ([`crate::events`]); register each object it names
//! ([`Pipeline::accept`]: a known URL and ETag is a duplicate); then look at the file's state:
//!
//! | state | what happens | message |
//! | --- | --- | --- |
//! | LOADED, REJECTED, DEAD | nothing: already decided | done |
//! | RECEIVED, FAILED (retry due), RUNNING (lease expired) | up to `inline_max_bytes`: processed here, a dataset's files in one warehouse transaction; larger: claimed for and launched on ECS | done when the file ends LOADED, REJECTED or DEAD, or its task is launched; else retried |
//! | FAILED (retry not due) | nothing | retried when the retry is due |
//! | RUNNING on ECS | nothing: the task has it | done |
//! | RUNNING here or in another dispatcher | nothing | retried when the lease ends |
//!
//! A message that is retried stays on the queue: SQS hands it out again after its visibility
//! timeout (shortened or lengthened to when the retry is due, where the runtime can), and moves
//! it to the dead-letter queue after `maxReceiveCount` receives. A message is never failed for
//! its shape: bodies that name no created object are done and counted.
//!
//! Deadline: no file is started with less than `run.deadline_reserve_secs` left; files still in
//! work when that point comes are handed back (`Released`: RECEIVED again, the attempt not
//! counted) and their messages retried.
//!
//! Sweep: a file on ECS has no message any more once its task is launched. If the task dies,
//! the file is RUNNING with a lapsed lease; if the task failed retryably, it is FAILED with a
//! retry time. Every `ecs.sweep_secs` a dispatcher looks for such files and launches them again
//! (attempts count: a file that keeps killing its task ends DEAD, with an alert).

use crate::events::{Parsed, S3Object, parse_body};
use crate::pipeline::catalog::{Entry, Route};
use crate::pipeline::{Accepted, FileOutcome, Pipeline};
use crate::ports::{FileKey, FileRecord, FileState, Filter, Launched, Millis, ObjectEvent, Outcome, now_ms};
use crate::telemetry::events as logs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One message of the batch.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Delete it: every object it names is decided or handed to a task.
    Done,
    /// Leave it on the queue to be delivered again, after `after_secs` if known.
    Retry { reason: String, after_secs: Option<u64> },
}

/// One message's verdict, with what happened to its files.
#[derive(Debug, Clone, Serialize)]
pub struct Handled {
    pub id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Files finished while handling it.
    pub files: Vec<FileOutcome>,
    /// Objects it named that were already known (a duplicate delivery).
    pub duplicates: u64,
    /// ECS tasks started for it.
    pub launched: Vec<String>,
    /// Why nothing was done, for a message that names no object of this lake.
    pub ignored: Option<String>,
}

impl Handled {
    fn new(id: &str) -> Handled {
        Handled {
            id: id.to_string(),
            verdict: Verdict::Done,
            files: Vec::new(),
            duplicates: 0,
            launched: Vec::new(),
            ignored: None,
        }
    }

    fn retry(&mut self, reason: String, after: Option<Millis>) {
        let after_secs = after.map(|ms| (ms.max(0) as u64).div_ceil(1000));
        self.verdict = match std::mem::replace(&mut self.verdict, Verdict::Done) {
            // The earliest due time wins: the message comes back when the first file is due.
            Verdict::Retry { reason: r, after_secs: a } => {
                Verdict::Retry { reason: r, after_secs: a.zip(after_secs).map(|(x, y)| x.min(y)).or(a).or(after_secs) }
            }
            Verdict::Done => Verdict::Retry { reason, after_secs },
        };
    }
}

/// A file to decide, and the message it came from.
struct Todo {
    msg: usize,
    key: FileKey,
    size: u64,
    /// Registered by this delivery: RECEIVED, no need to read its state back.
    new: bool,
}

/// The dispatcher's memory between batches (kept by a warm Lambda container or the worker).
#[derive(Debug, Default)]
pub struct Dispatcher {
    last_sweep: Mutex<Option<Instant>>,
}

impl Dispatcher {
    /// Handles one batch. `route` names this runtime in the state store (`lambda`, `worker`);
    /// `deadline` is when the work must be over (a Lambda invocation's end).
    pub async fn handle(
        &self,
        p: &Pipeline,
        messages: &[Message],
        route: &str,
        deadline: Option<Instant>,
    ) -> Vec<Handled> {
        let mut out: Vec<Handled> = messages.iter().map(|m| Handled::new(&m.id)).collect();
        p.refresh_catalog();
        let mut todo = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match parse_body(&m.body) {
                Parsed::Ignored { reason } => {
                    p.emit(logs::MessageIgnored { message_id: &m.id, reason: &reason });
                    out[i].ignored = Some(reason);
                }
                Parsed::Objects(objects) => {
                    for o in objects {
                        self.register(p, i, &o, &mut out[i], &mut todo).await;
                    }
                }
            }
        }
        self.decide(p, todo, &mut out, route, deadline).await;
        self.sweep(p).await;
        out
    }

    /// Registers one object named by message `msg`; what is left to decide goes to `todo`.
    async fn register(&self, p: &Pipeline, msg: usize, o: &S3Object, h: &mut Handled, todo: &mut Vec<Todo>) {
        let url = o.url();
        let Some(key) = p.lake.key_of(&url).map(str::to_string) else {
            let reason = format!("{url} is not in this lake ({}); check the EventBridge rule's bucket", p.lake.root);
            p.emit(logs::MessageIgnored { message_id: &h.id, reason: &reason });
            h.ignored = Some(reason);
            return;
        };
        let ev = match (&o.etag, o.size) {
            (Some(version), Some(size)) => {
                ObjectEvent { url: url.clone(), key, version: version.clone(), size, event_time: o.event_time }
            }
            // Not in the event: ask S3.
            _ => match p.lake.head(&key).await {
                Ok(Some(now)) => ObjectEvent {
                    version: o.etag.clone().unwrap_or(now.version),
                    event_time: o.event_time.or(now.event_time),
                    ..now
                },
                Ok(None) => {
                    p.emit(logs::ObjectGone { message_id: &h.id, url: &url });
                    h.ignored = Some(logs::object_gone(&url));
                    return;
                }
                Err(e) => {
                    h.retry(format!("cannot read the metadata of {url}: {e}"), None);
                    return;
                }
            },
        };
        let new = match p.accept(&ev).await {
            Ok(Accepted::New { .. }) => true,
            Ok(Accepted::Duplicate) => {
                h.duplicates += 1;
                false
            }
            Ok(Accepted::Unroutable { outcome, .. }) => {
                h.files.extend(outcome.map(|o| *o));
                return;
            }
            Err(e) => {
                h.retry(format!("cannot register {url}: {e}"), None);
                return;
            }
        };
        todo.push(Todo { msg, key: FileKey { url, version: ev.version }, size: ev.size, new });
    }

    async fn decide(&self, p: &Pipeline, todo: Vec<Todo>, out: &mut [Handled], route: &str, deadline: Option<Instant>) {
        let catalog = p.catalog();
        let now = now_ms();
        // Small files per dataset, to share a warehouse transaction; large ones alone, or on a task.
        let mut inline: BTreeMap<&str, (&Entry, Vec<&Todo>)> = BTreeMap::new();
        let mut alone: Vec<(&Entry, Vec<&Todo>)> = Vec::new();
        for t in &todo {
            if !t.new && !self.claimable(p, t, now, &mut out[t.msg]).await {
                continue;
            }
            let Some(Route::Dataset(entry)) = p.lake.key_of(&t.key.url).map(|k| catalog.route(k)) else {
                continue; // recorded REJECTED by accept()
            };
            if t.size <= p.settings.run.inline_max_bytes {
                inline.entry(&entry.dataset.contract.name).or_insert_with(|| (entry, Vec::new())).1.push(t);
            } else if p.launcher.is_remote() {
                self.launch(p, &t.key, &mut out[t.msg]).await;
            } else {
                alone.push((entry, vec![t]));
            }
        }
        let mut groups = Vec::new();
        for (entry, files) in inline.into_values() {
            groups.extend(files.chunks(p.settings.run.batch_max_files).map(|c| (entry, c.to_vec())));
        }
        groups.extend(alone);
        let reserve = Duration::from_secs(p.settings.run.deadline_reserve_secs);
        let stop_at = deadline.map(|d| d.checked_sub(reserve).unwrap_or(d));
        for (entry, files) in groups {
            if stop_at.is_some_and(|s| Instant::now() >= s) {
                for t in &files {
                    out[t.msg]
                        .retry(format!("{}: not started, the invocation's time is nearly up", t.key.url), Some(0));
                }
                continue;
            }
            let keys: Vec<FileKey> = files.iter().map(|t| t.key.clone()).collect();
            let work = p.process(entry, &keys, route);
            let outcomes = match stop_at {
                None => work.await,
                Some(s) => match tokio::time::timeout_at(s.into(), work).await {
                    Ok(o) => o,
                    Err(_) => {
                        self.release(p, &keys).await;
                        for t in &files {
                            out[t.msg].retry(
                                format!("{}: handed back unfinished, the invocation's time was nearly up", t.key.url),
                                Some(0),
                            );
                        }
                        continue;
                    }
                },
            };
            for t in &files {
                let Some(o) = outcomes.iter().find(|o| o.url == t.key.url && o.version == t.key.version) else {
                    out[t.msg].retry(format!("{}: another worker took it first", t.key.url), None);
                    continue;
                };
                if o.state == FileState::Failed {
                    let at = p.state.get(&t.key).await.ok().flatten().and_then(|r| r.retry_at);
                    let reason = format!("{}: {}", t.key.url, o.reason.clone().unwrap_or_default());
                    out[t.msg].retry(reason, at.map(|a| a - now_ms()));
                }
            }
            // Each outcome once, with the first message that named its file.
            for o in outcomes {
                if let Some(t) = files.iter().find(|t| t.key.url == o.url && t.key.version == o.version) {
                    out[t.msg].files.push(o);
                }
            }
            crate::pipeline::faults::point("before-sqs-delete");
        }
    }

    /// Whether a file seen before may be worked on now (RECEIVED, FAILED with its retry due,
    /// RUNNING past its lease); if not, records on `h` whether and when to look again.
    async fn claimable(&self, p: &Pipeline, t: &Todo, now: Millis, h: &mut Handled) -> bool {
        let rec = match p.state.get(&t.key).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                h.retry(format!("{} is not in the state store yet", t.key.url), None);
                return false;
            }
            Err(e) => {
                h.retry(format!("cannot read the state of {}: {e}", t.key.url), None);
                return false;
            }
        };
        match rec.state {
            FileState::Loaded | FileState::Rejected | FileState::Dead => false,
            FileState::Failed if rec.retry_at.is_some_and(|r| r > now) => {
                let at = rec.retry_at.unwrap_or(now);
                h.retry(format!("{} failed; its next try is due later", t.key.url), Some(at - now));
                false
            }
            // A task has it: its lease, and the sweep, look after it.
            FileState::Running if rec.lease_until.is_none_or(|l| l > now) && rec.route.as_deref() == Some("ecs") => {
                false
            }
            FileState::Running if rec.lease_until.is_none_or(|l| l > now) => {
                h.retry(format!("{} is in work elsewhere", t.key.url), rec.lease_until.map(|l| l - now));
                false
            }
            _ => true,
        }
    }

    /// Hands back files this dispatcher holds (RECEIVED again, the attempt not counted).
    async fn release(&self, p: &Pipeline, keys: &[FileKey]) {
        for k in keys {
            match p.state.finish(k, &p.owner, &Outcome::Released, now_ms()).await {
                Ok(_) => p.emit(logs::HandedBack { url: &k.url }),
                Err(e) => p.emit(logs::HandBackFailed { url: &k.url, error: &e }),
            }
        }
    }

    async fn launch(&self, p: &Pipeline, key: &FileKey, h: &mut Handled) {
        match p.launch_task(key).await {
            Ok(Some(Launched::Remote { id })) => h.launched.push(id),
            Ok(_) => {} // another dispatcher launched it first
            Err(e) => {
                p.emit(logs::LaunchRetried { url: &key.url, error: &e });
                h.retry(e, None);
            }
        }
    }

    /// Launches again the ECS files whose task died (RUNNING, lease lapsed) or failed (FAILED,
    /// retry due), at most once per `ecs.sweep_secs` in this process; returns the task ids.
    pub async fn sweep(&self, p: &Pipeline) -> Vec<String> {
        if !p.launcher.is_remote() {
            return Vec::new();
        }
        {
            let mut last = self.last_sweep.lock().expect("lock");
            if last.is_some_and(|l| l.elapsed() < Duration::from_secs(p.settings.ecs.sweep_secs)) {
                return Vec::new();
            }
            *last = Some(Instant::now());
        }
        let filter = Filter { states: vec![FileState::Running, FileState::Failed], ..Filter::default() };
        let running = match p.state.list(&filter).await {
            Ok(r) => r,
            Err(e) => {
                p.emit(logs::SweepListFailed { error: &e });
                return Vec::new();
            }
        };
        let now = now_ms();
        let lapsed: Vec<FileRecord> = running
            .into_iter()
            .filter(|r| r.route.as_deref() == Some(p.launcher.name()))
            .filter(|r| match r.state {
                FileState::Running => r.lease_until.is_some_and(|l| l <= now),
                _ => r.retry_at.is_none_or(|t| t <= now),
            })
            .filter(|r| p.lake.key_of(&r.key.url).is_some())
            .collect();
        let mut launched = Vec::new();
        for r in lapsed {
            p.emit(logs::SweepRelaunch {
                url: &r.key.url,
                state: r.state,
                launcher: p.launcher.name(),
                owner: r.owner.as_deref(),
            });
            let mut h = Handled::new("sweep");
            self.launch(p, &r.key, &mut h).await;
            launched.extend(h.launched);
        }
        launched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(h: &Handled) -> Option<u64> {
        match &h.verdict {
            Verdict::Retry { after_secs, .. } => *after_secs,
            Verdict::Done => panic!("retried"),
        }
    }

    #[test]
    fn a_message_comes_back_when_its_first_file_is_due() {
        let mut h = Handled::new("m");
        assert_eq!(h.verdict, Verdict::Done);
        h.retry("a".into(), Some(5_000));
        h.retry("b".into(), Some(1_500));
        assert_eq!(after(&h), Some(2), "the earliest, in whole seconds rounded up");
        h.retry("c".into(), None);
        assert_eq!(after(&h), Some(2), "a file with no due time does not hold the message back");
        let mut h = Handled::new("m");
        h.retry("a".into(), None);
        h.retry("b".into(), Some(-30));
        assert_eq!(after(&h), Some(0), "a retry already due: visible at once");
        assert!(matches!(&h.verdict, Verdict::Retry { reason, .. } if reason == "a"), "the first reason is kept");
    }
}
