//! The fault matrix's fourth backend (issue 12, item 1): the Lambda function with DynamoDB
//! state on the emulator and a PostgreSQL warehouse, crashed at every step boundary.
//!
//! One copy of the SAM stack serves every fault point; each point has its own prefix in the
//! bucket (`landing/sales/<point>/`) and its own PostgreSQL database. The files of
//! `fault_matrix::inputs` (two good ones, one with a bad row, one whose rows are mostly bad, and
//! for the points that need a job that takes a while, a big one) are put into S3; their events
//! reach the stack's queue (EventBridge → SQS), and each point's messages, as the queue hands
//! them out, go as one batch to the real `glueless-lambda` binary, a child process behind a
//! stand-in for the Lambda Runtime API, with the point armed. It must die by SIGKILL, having
//! reached the point (its marker file). Right after, the fact rows must be those of the files
//! in the ledger. Then, once the visibility timeout and the dead function's claims (2-second
//! lease) have run out, the queue hands the same messages out again, as Lambda's event source
//! would redeliver them, and a fresh process without the point handles each point's batch. The
//! end must be the one a run that never crashed leaves: no batch item failure, every file
//! LOADED or REJECTED in DynamoDB as its content calls for (nothing RUNNING), the fact table
//! exactly the good rows (computed here from the inputs), one ledger row per loaded file and
//! per content.
//!
//! Every point of `faults::POINTS` is run: the Lambda passes all of them. It deletes no message
//! itself (Lambda does, for the records its response does not list), so `before-sqs-delete` is
//! the function dying with its files decided and its response not yet sent. Cases run in
//! parallel threads.

use super::fault_matrix::postgres::pg_query;
use super::fault_matrix::{Input, big_rows, committed_together, in_parallel, inputs, loaded_exactly_once};
use crate::aws_runtime::lambda::event;
use crate::aws_runtime::runtime_api::invoke;
use crate::aws_runtime::{Stack, contracts, receive, rt};
use glueless_jobs::ports::FileState;
use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// The queue hides what it handed out this long (seconds): longer than the crashes take, so
/// the messages come back once they are all over. The function's claims last `LEASE_SECS`.
const VISIBILITY_SECS: i32 = 6;
const LEASE_SECS: u64 = 2;

/// One fault point's files, warehouse and marker.
struct Case {
    point: &'static str,
    files: Vec<Input>,
    versions: Vec<String>,
    env: Vec<(String, String)>,
    warehouse: String,
    dir: tempfile::TempDir,
}

impl Case {
    fn key(&self, f: &Input) -> String {
        format!("landing/sales/{}/{}", self.point, f.name)
    }
}

/// What the queue hands out, all `n` messages of every case (each once), as each case's message
/// ids and the JSON of Lambda's SQS event for them.
fn batches(stack: &Stack, cases: &[Case]) -> HashMap<&'static str, (Vec<String>, String)> {
    let n: usize = cases.iter().map(|c| c.files.len()).sum();
    let started = Instant::now();
    let mut seen = HashSet::new();
    let mut received = Vec::new();
    while seen.len() < n && started.elapsed() < Duration::from_secs(30) {
        let got = rt().block_on(receive(&stack.queue_url, Duration::from_secs(2), VISIBILITY_SECS));
        received.extend(got.into_iter().filter(|m| seen.insert(m.message_id().unwrap_or_default().to_string())));
    }
    assert_eq!(received.len(), n, "one message per file");
    cases
        .iter()
        .map(|c| {
            let prefix = format!("landing/sales/{}/", c.point);
            let mine: Vec<_> =
                received.iter().filter(|m| m.body().unwrap_or_default().contains(&prefix)).cloned().collect();
            assert_eq!(mine.len(), c.files.len(), "{}: one message per file", c.point);
            let mut ids: Vec<String> = mine.iter().map(|m| m.message_id().unwrap_or_default().to_string()).collect();
            ids.sort();
            (c.point, (ids, serde_json::to_string(&event(stack, &mine, &[])).unwrap()))
        })
        .collect()
}

/// The function, with the case's point armed, dies there.
fn crash(c: &Case, batch: &str) {
    let point = c.point;
    let marker = c.dir.path().join("fault-reached");
    let mut armed = c.env.clone();
    armed.push(("GLUELESS_FAULT".into(), point.into()));
    armed.push(("GLUELESS_FAULT_MARKER".into(), crate::support::path_str(&marker).into()));
    let killed = invoke(batch, &armed);
    assert_eq!(killed.response, None, "{point}: answered instead of dying: {}", killed.stderr);
    assert_eq!(killed.died.and_then(|s| s.signal()), Some(9), "{point}: killed by SIGKILL: {}", killed.stderr);
    assert_eq!(std::fs::read_to_string(&marker).ok().as_deref(), Some(point), "{point}: reached: {}", killed.stderr);
    assert!(killed.stderr.contains(&format!("GLUELESS_FAULT={point}: killing")), "{point}: {}", killed.stderr);
    committed_together(point, &c.files, &|sql| pg_query(&c.warehouse, sql));
}

/// A fresh function handles the batch again, to the end a run without the crash leaves.
fn recover(c: &Case, batch: &str, stack: &Stack) {
    let point = c.point;
    let inv = invoke(batch, &c.env);
    let response = inv.json();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{point}: {response}\n{}", inv.stderr);
    let rt = rt();
    for (f, version) in c.files.iter().zip(&c.versions) {
        let rec = rt.block_on(stack.record(&c.key(f), version));
        let want = if f.rejected() { FileState::Rejected } else { FileState::Loaded };
        assert_eq!(rec.state, want, "{point}: {}: {rec:?}", f.name);
    }
    let prefix = stack.url(&format!("landing/sales/{point}/"));
    let records: Vec<_> = rt.block_on(stack.records()).into_iter().filter(|r| r.key.url.starts_with(&prefix)).collect();
    assert_eq!(records.len(), c.files.len(), "{point}: one record per file, none RUNNING: {records:?}");
    loaded_exactly_once(point, &c.files, &|sql| pg_query(&c.warehouse, sql));
}

#[test]
fn a_lambda_killed_at_every_step_then_handed_the_batch_again_loads_exactly_once() {
    let rt = rt();
    let stack = Stack::deploy("lambda-faults", &[("DatasetPrefixes", "landing/sales/")]);
    let contracts = contracts();
    let cases: Vec<Case> = glueless_jobs::pipeline::faults::POINTS
        .iter()
        .map(|&point| {
            let warehouse = rt.block_on(crate::support::postgres_database(&format!("lambda_fault_{point}")));
            let mut env = stack.env(contracts.path(), &warehouse);
            env.push(("GLUELESS__RUN__LEASE_SECS".into(), LEASE_SECS.to_string()));
            let mut c = Case {
                point,
                files: inputs(big_rows(point)),
                versions: Vec::new(),
                env,
                warehouse,
                dir: tempfile::tempdir().unwrap(),
            };
            c.versions = c.files.iter().map(|f| rt.block_on(stack.put(&c.key(f), &f.text()))).collect();
            c
        })
        .collect();

    let first = batches(&stack, &cases);
    in_parallel(cases.iter().map(|c| (c.point, c)).collect(), |p, c| crash(c, &first[p].1));
    // Lambda's event source hands each batch out again after the visibility timeout; by then the
    // dead processes' claims have lapsed too.
    let crashed = Instant::now();
    let again = batches(&stack, &cases);
    std::thread::sleep(Duration::from_millis(LEASE_SECS * 1000 + 500).saturating_sub(crashed.elapsed()));
    for c in &cases {
        assert_eq!(again[c.point].0, first[c.point].0, "{}: the same messages come back (none was deleted)", c.point);
    }
    in_parallel(cases.iter().map(|c| (c.point, c)).collect(), |p, c| recover(c, &again[p].1, &stack));
}
