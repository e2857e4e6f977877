//! `glueless worker`: the dispatcher as a long-running SQS consumer, for teams that run a
//! Fargate service (or any box) instead of the Lambda function. Same decisions as the Lambda
//! ([`super::dispatch`]); the differences are the queue handling:
//!
//! - it long-polls `[queue] url` for up to `queue.max_messages` messages, waiting
//!   `queue.wait_secs`;
//! - while a batch is in work, every third of `queue.visibility_secs` it extends the
//!   visibility of the batch's messages to `queue.visibility_secs`, so a long file is never
//!   handed to a second consumer;
//! - done messages are deleted in batches of ten; a retried message is made visible again when
//!   its retry is due, or, with no due time (an outage), after `queue.visibility_secs`;
//! - SIGINT/SIGTERM finish the batch in hand, then stop.

use super::dispatch::{Dispatcher, Handled, Message, Verdict};
use crate::pipeline::service::Shutdown;
use crate::pipeline::{FileOutcome, Pipeline};
use crate::ports::{Queue, QueueMessage};
use crate::telemetry::events as logs;
use serde::Serialize;
use std::time::Duration;

/// What a worker run did.
#[derive(Debug, Default, Serialize)]
pub struct WorkerSummary {
    pub messages: u64,
    pub deleted: u64,
    pub retried: u64,
    /// Messages that named nothing to load (other event types, other buckets).
    pub ignored: u64,
    pub duplicates: u64,
    pub launched: Vec<String>,
    pub files: Vec<FileOutcome>,
    pub seconds: f64,
    pub interrupted: bool,
}

/// Consumes `queue` until a shutdown is requested, or (`once`) until a receive comes back empty.
pub async fn run(p: &Pipeline, queue: &dyn Queue, once: bool, shutdown: &Shutdown) -> WorkerSummary {
    let started = std::time::Instant::now();
    let q = &p.settings.queue;
    let dispatcher = Dispatcher::default();
    let mut summary = WorkerSummary::default();
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_requested() {
        let batch = tokio::select! {
            r = queue.receive(q.max_messages, q.wait_secs, q.visibility_secs) => r,
            _ = shutdown.wait() => break,
        };
        let batch = match batch {
            Ok(b) => {
                backoff = Duration::from_secs(1);
                b
            }
            Err(e) => {
                p.emit(logs::ReceiveFailed { error: &e, retry_in: backoff });
                shutdown.sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        if batch.is_empty() {
            if once {
                break;
            }
            continue;
        }
        let handled = in_work(p, queue, &batch, &dispatcher).await;
        settle(p, queue, &batch, &handled, &mut summary).await;
    }
    summary.launched.extend(dispatcher.sweep(p).await);
    summary.interrupted = shutdown.is_requested();
    summary.seconds = started.elapsed().as_secs_f64();
    summary
}

/// Handles the batch while keeping its messages hidden.
async fn in_work(p: &Pipeline, queue: &dyn Queue, batch: &[QueueMessage], d: &Dispatcher) -> Vec<Handled> {
    let visibility = p.settings.queue.visibility_secs;
    let every = Duration::from_secs((visibility as u64 / 3).max(1));
    let messages: Vec<Message> = batch.iter().map(|m| Message { id: m.id.clone(), body: m.body.clone() }).collect();
    let work = d.handle(p, &messages, "worker", None);
    tokio::pin!(work);
    loop {
        tokio::select! {
            handled = &mut work => return handled,
            _ = tokio::time::sleep(every) => {
                if let Err(e) = queue.set_visibility(batch, visibility).await {
                    p.emit(logs::VisibilityNotExtended { messages: batch.len(), error: &e });
                }
            }
        }
    }
}

/// Deletes the done messages and times the retried ones.
async fn settle(p: &Pipeline, queue: &dyn Queue, batch: &[QueueMessage], handled: &[Handled], s: &mut WorkerSummary) {
    let mut done = Vec::new();
    let mut retry: std::collections::BTreeMap<u32, Vec<QueueMessage>> = Default::default();
    for (m, h) in batch.iter().zip(handled) {
        s.messages += 1;
        s.duplicates += h.duplicates;
        s.ignored += u64::from(h.ignored.is_some());
        s.launched.extend(h.launched.iter().cloned());
        s.files.extend(h.files.iter().cloned());
        match &h.verdict {
            Verdict::Done => done.push(m.clone()),
            Verdict::Retry { reason, after_secs } => {
                p.emit(logs::MessageRetried { message_id: &m.id, reason, receive_count: Some(m.receive_count) });
                s.retried += 1;
                // No due time (the state store or S3 did not answer, another worker has the
                // file): the message comes back when its visibility runs out, not at once, so
                // an outage does not burn its receives into the dead-letter queue.
                if let Some(a) = after_secs {
                    retry.entry((*a).min(43_200) as u32).or_default().push(m.clone());
                }
            }
        }
    }
    match queue.delete(&done).await {
        Ok(failed) => {
            s.deleted += (done.len() - failed.len()) as u64;
            for id in failed {
                p.emit(logs::DeleteFailed { message_id: &id });
            }
        }
        Err(e) => p.emit(logs::BatchDeleteFailed { error: &e }),
    }
    for (secs, msgs) in retry {
        if let Err(e) = queue.set_visibility(&msgs, secs).await {
            p.emit(logs::RetryNotTimed { error: &e });
        }
    }
}
