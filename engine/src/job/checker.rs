//! Validation on its own thread, one chunk behind the reader.
//!
//! With more than one thread, the file job's task reads and tokenizes chunk `k + 1` while a
//! thread of its own validates chunk `k` and hands its typed batches to the Parquet writer:
//! reading, validating and encoding overlap, so a second core is used. With one thread the
//! chunks are validated in place, on the job's task, and the job keeps to one core. Either way
//! the order of rows is kept (one validator, chunks in file order), and so is what a row's
//! verdict depends on: the key indexes see the rows in file order.
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] chunks are queued or being validated, and their
//! buffers come back with the verdict to be reused for the next chunks.

use crate::decode::tokenizer::Records;
use crate::validate::keys::KeyIndexError;
use crate::validate::{Counts, RejectedRow, Validator};
use arrow::array::RecordBatch;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// Chunks sent to the validator and not yet answered: one being validated while the next is
/// read.
pub const IN_FLIGHT: usize = 2;

/// Complete records and the bytes they span (the spans index into `buf`).
#[derive(Default)]
pub struct Chunk {
    pub buf: Vec<u8>,
    pub recs: Records,
}

/// A chunk's verdict: its rejected rows, and the validator's counts after it.
pub struct Checked {
    /// The chunk, handed back for its buffers to be reused.
    pub chunk: Chunk,
    pub rejects: Vec<RejectedRow>,
    pub counts: Counts,
    /// A key index that could not spill to disk: the file cannot be checked within its memory.
    pub key_error: Option<KeyIndexError>,
}

/// Validates `chunk` (unless `validate` is false: the file was rejected meanwhile), its full
/// batches into `ready`; the same in place and on the validator's thread.
fn check(v: &mut Validator, chunk: Chunk, validate: bool, ready: &mut Vec<RecordBatch>) -> Checked {
    let mut rejects = Vec::new();
    if validate {
        v.push_records(&chunk.buf, &chunk.recs, ready, &mut rejects);
    }
    Checked { chunk, rejects, counts: v.counts(), key_error: v.take_key_error() }
}

pub struct Checker {
    mode: Mode,
    in_flight: usize,
}

enum Mode {
    Thread {
        to: Option<mpsc::Sender<Chunk>>,
        from: mpsc::Receiver<Checked>,
        worker: tokio::task::JoinHandle<Validator>,
        /// Set once the file is rejected: the chunks still queued are handed back unread, so
        /// that no row past the verdict is counted.
        stop: Arc<AtomicBool>,
    },
    Inline {
        v: Box<Validator>,
        batches: Option<mpsc::Sender<RecordBatch>>,
        done: VecDeque<Checked>,
        ready: Vec<RecordBatch>,
    },
}

impl Checker {
    /// Starts validating with `v` (bound to its header) on a thread of its own when `threads`
    /// is more than one, in place otherwise; valid rows go to `batches` (none in a dry run).
    pub fn start(v: Validator, batches: Option<mpsc::Sender<RecordBatch>>, threads: usize) -> Checker {
        let mode = if threads > 1 {
            Self::thread(v, batches)
        } else {
            Mode::Inline { v: Box::new(v), batches, done: VecDeque::new(), ready: Vec::new() }
        };
        Checker { mode, in_flight: 0 }
    }

    fn thread(mut v: Validator, batches: Option<mpsc::Sender<RecordBatch>>) -> Mode {
        let (to, mut chunks) = mpsc::channel::<Chunk>(IN_FLIGHT);
        let (back, from) = mpsc::channel::<Checked>(IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let mut ready = Vec::new();
            while let Some(chunk) = chunks.blocking_recv() {
                let checked = check(&mut v, chunk, !stopped.load(Ordering::Relaxed), &mut ready);
                for b in ready.drain(..) {
                    // A send fails only if the writer stopped; the job collects its error.
                    if let Some(tx) = &batches {
                        let _ = tx.blocking_send(b);
                    }
                }
                if back.blocking_send(checked).is_err() {
                    break;
                }
            }
            v
        });
        Mode::Thread { to: Some(to), from, worker, stop }
    }

    /// Queues a chunk (validates it, in place); waits only while [`IN_FLIGHT`] chunks are queued.
    pub async fn send(&mut self, chunk: Chunk) {
        match &mut self.mode {
            Mode::Thread { to, .. } => {
                if let Some(to) = to
                    && to.send(chunk).await.is_ok()
                {
                    self.in_flight += 1;
                }
            }
            Mode::Inline { v, batches, done, ready } => {
                let checked = check(v, chunk, true, ready);
                for b in ready.drain(..) {
                    if let Some(tx) = batches {
                        let _ = tx.send(b).await;
                    }
                }
                done.push_back(checked);
                self.in_flight += 1;
            }
        }
    }

    /// Chunks sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next verdict, in the order the chunks were sent; `None` once every chunk is answered.
    pub async fn next(&mut self) -> Option<Checked> {
        if self.in_flight == 0 {
            return None;
        }
        let checked = match &mut self.mode {
            Mode::Thread { from, .. } => from.recv().await,
            Mode::Inline { done, .. } => done.pop_front(),
        };
        self.in_flight -= 1;
        checked
    }

    /// Validates nothing more: chunks still queued come back with no verdict.
    pub fn stop(&self) {
        if let Mode::Thread { stop, .. } = &self.mode {
            stop.store(true, Ordering::Relaxed);
        }
    }

    /// Closes the queue and gives the validator back. Every verdict must have been taken with
    /// [`Checker::next`] first: a verdict left behind would be rows counted and never reported.
    pub async fn finish(self) -> Validator {
        debug_assert_eq!(self.in_flight, 0, "verdicts left behind");
        match self.mode {
            Mode::Thread { to, worker, .. } => {
                drop(to);
                worker.await.expect("the validator does not panic")
            }
            Mode::Inline { v, .. } => *v,
        }
    }
}
