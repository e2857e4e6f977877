//! Validation on its own thread, one chunk behind the reader.
//!
//! The file job's task reads and tokenizes chunk `k + 1` while this thread validates chunk `k`
//! and hands its typed batches to the Parquet writer: reading, validating and encoding overlap,
//! so a second core is used. The order of rows is kept (one validator, chunks in file order),
//! and so is what a row's verdict depends on: the key indexes see the rows in file order.
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] chunks are queued or being validated, and their
//! buffers come back with the verdict to be reused for the next chunks.

use crate::decode::tokenizer::Records;
use crate::validate::{Counts, RejectedRow, Validator};
use arrow::array::RecordBatch;
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
}

pub struct Checker {
    to: Option<mpsc::Sender<Chunk>>,
    from: mpsc::Receiver<Checked>,
    worker: tokio::task::JoinHandle<Validator>,
    in_flight: usize,
    /// Set once the file is rejected: the chunks still queued are handed back unread, so that
    /// no row past the verdict is counted.
    stop: Arc<AtomicBool>,
}

impl Checker {
    /// Starts validating with `v` (bound to its header); valid rows go to `batches` (none in a
    /// dry run).
    pub fn start(mut v: Validator, batches: Option<mpsc::Sender<RecordBatch>>) -> Checker {
        let (to, mut chunks) = mpsc::channel::<Chunk>(IN_FLIGHT);
        let (back, from) = mpsc::channel::<Checked>(IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let mut ready = Vec::new();
            while let Some(chunk) = chunks.blocking_recv() {
                let mut rejects = Vec::new();
                if !stopped.load(Ordering::Relaxed) {
                    v.push_records(&chunk.buf, &chunk.recs, &mut ready, &mut rejects);
                    for b in ready.drain(..) {
                        // A send fails only if the writer stopped; the job collects its error.
                        if let Some(tx) = &batches {
                            let _ = tx.blocking_send(b);
                        }
                    }
                }
                if back.blocking_send(Checked { chunk, rejects, counts: v.counts() }).is_err() {
                    break;
                }
            }
            v
        });
        Checker { to: Some(to), from, worker, in_flight: 0, stop }
    }

    /// Queues a chunk; waits only while [`IN_FLIGHT`] chunks are queued.
    pub async fn send(&mut self, chunk: Chunk) {
        if let Some(to) = &self.to
            && to.send(chunk).await.is_ok()
        {
            self.in_flight += 1;
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
        let checked = self.from.recv().await;
        self.in_flight -= 1;
        checked
    }

    /// Validates nothing more: chunks still queued come back with no verdict.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Closes the queue and gives the validator back. Every verdict must have been taken with
    /// [`Checker::next`] first: a verdict left behind would be rows counted and never reported.
    pub async fn finish(mut self) -> Validator {
        debug_assert_eq!(self.in_flight, 0, "verdicts left behind");
        self.to = None;
        self.worker.await.expect("the validator does not panic")
    }
}
