//! Cut connections between glueless and PostgreSQL ([`PgProxy`]): during the `COPY`, during the
//! `MERGE`, and after the `COMMIT` was sent but before its answer arrived. A lost connection
//! is transient: the file is FAILED, retried (after 50–200 ms here) and LOADED in the same
//! `run --once`. The commit case is the one the ledger settles: the first load did commit, so
//! the retry finds both files in the ledger and loads nothing again.
//!
//! And between glueless and the AWS emulator (module `emulator`): DynamoDB, S3 and SQS.

use super::atomicity::postgres::{facts, ledger};
use super::proxy::{Cut, PgProxy, host_port};
use crate::pipeline::{HEADER, Lake, count};

/// `n` rows with ids from `first`.
fn rows(first: u64, n: u64) -> String {
    let mut s = HEADER.to_string();
    for id in first..first + n {
        s.push_str(&format!("{id},2026-11-20T10:00:00Z,{},{}.50\n", 1 + id % 20, id % 1000));
    }
    s
}

fn cut_then_loaded_once(test: &str, cut: Cut) {
    let url = tokio::runtime::Runtime::new().unwrap().block_on(crate::support::postgres_database(test));
    let proxy = PgProxy::start(&host_port(&url), cut);
    let through = proxy.url(&url);
    let lake = Lake::new("max_attempts = 5\n");
    // New keys are COPYed straight into the table, without a MERGE: for the MERGE, the table
    // gets the first row of a.csv first (id 0), loaded without the proxy, so that a.csv is
    // refused straight in and takes the staging steps.
    let before: Vec<&str> = if cut == Cut::DuringMerge {
        lake.drop_file("sales/0.csv", &rows(0, 1));
        lake.run_once(&[("GLUELESS__WAREHOUSE__URL", url.as_str())]);
        vec!["0.csv"]
    } else {
        vec![]
    };
    lake.drop_file("sales/a.csv", &rows(0, 300));
    lake.drop_file("sales/b.csv", &rows(300, 200));
    let report = lake.run_once(&[("GLUELESS__WAREHOUSE__URL", through.as_str())]);
    assert!(proxy.fired(), "the connection was cut at {cut:?}: {report}");
    let files = report["files"].as_array().unwrap();
    // The cut failed the load that was under way: both files (one transaction) were retried.
    let failed: Vec<_> = files.iter().filter(|f| f["state"] == "FAILED").collect();
    assert_eq!(failed.len(), 2, "{report}");
    for f in &failed {
        let reason = f["reason"].as_str().unwrap();
        assert!(reason.to_lowercase().contains("connection") || reason.contains("closed"), "{reason}");
    }
    // The retry's outcome: for a cut before the commit, a load; after it, the ledger's word
    // that the first attempt did commit, and nothing loaded again.
    for name in ["a.csv", "b.csv"] {
        let f = files.iter().rev().find(|f| f["url"].as_str().unwrap().ends_with(name)).unwrap();
        assert_eq!(f["state"], "LOADED", "{f}");
        let settled = f["reason"].as_str().is_some_and(|r| r.contains("already in the warehouse ledger"));
        assert_eq!(settled, cut == Cut::AfterCommitSent, "{f}");
    }
    let st = lake.status();
    assert_eq!(
        (count(&st, "LOADED"), count(&st, "DEAD"), count(&st, "RUNNING")),
        (2 + before.len() as u64, 0, 0),
        "{st}"
    );
    let facts = facts(&url);
    assert_eq!(facts.len(), 500, "every row once");
    assert_eq!(facts[7], "7|8|7.50");
    assert_eq!(facts[499], "499|20|499.50");
    assert_eq!(ledger(&url), [before, vec!["a.csv", "b.csv"]].concat(), "one ledger row per file");
}

#[test]
fn postgres_cut_during_copy_is_retried_and_loads_once() {
    cut_then_loaded_once("cut_copy", Cut::DuringCopy);
}

#[test]
fn postgres_cut_during_merge_is_retried_and_loads_once() {
    cut_then_loaded_once("cut_merge", Cut::DuringMerge);
}

#[test]
fn postgres_cut_after_commit_was_sent_is_settled_by_the_ledger() {
    cut_then_loaded_once("cut_commit", Cut::AfterCommitSent);
}

/// Cuts between glueless and the AWS emulator, through an HTTP proxy ([`HttpProxy`]) that the
/// process under test reaches as its service endpoint (`AWS_ENDPOINT_URL_<SERVICE>`): a
/// DynamoDB answer lost after the update was applied, an S3 download cut mid-body, and SQS
/// deletes whose answer or request is lost.
#[cfg(feature = "aws")]
mod emulator {
    use super::*;
    use crate::reliability::proxy::{HttpCut, HttpProxy};
    use crate::support::aws_endpoint;

    fn records_loaded(request: &str) -> bool {
        request.contains("DynamoDB_20120810.UpdateItem") && request.contains("\"LOADED\"")
    }

    /// The "did it commit?" case of the state store (DynamoDB on the emulator, SQLite
    /// warehouse): the `UpdateItem` that records a file LOADED reaches the emulator and is
    /// applied, and its answer is lost with the connection.
    #[test]
    fn dynamodb_answer_to_the_loaded_update_lost_ends_loaded_once() {
        let proxy = HttpProxy::start(&aws_endpoint(), records_loaded, HttpCut::AnswerLost, 1);
        let table = format!("glueless-cut-{}-{}", std::process::id(), proxy.endpoint.rsplit(':').next().unwrap());
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let client = aws_sdk_dynamodb::Client::new(&crate::support::local_sdk_config(&aws_endpoint()));
            glueless_jobs::adapters::DynamoDbStateStore::with_client(client, table.clone())
                .ensure_table()
                .await
                .expect("create the table");
        });
        let lake = Lake::new("max_attempts = 5\n");
        lake.drop_file("sales/a.csv", &rows(0, 30));
        let state = format!("dynamodb://{table}");
        let env = [("GLUELESS__STATE__URL", state.as_str()), ("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint.as_str())];
        let report = lake.run_once(&env);
        assert!(proxy.fired(), "the answer was dropped: {report}");
        // The SDK sends the update again; its condition (still RUNNING, ours) no longer holds,
        // because the first one was applied: the pipeline leaves the recorded outcome alone.
        assert_eq!(report["counts"]["LOADED"], 1, "{report}");
        let st = lake.glueless(&["status", "--format", "json"], &env).json();
        assert_eq!((count(&st, "LOADED"), count(&st, "DEAD"), count(&st, "RUNNING")), (1, 0, 0), "{st}");
        assert_eq!(lake.facts().len(), 30);
        let ledger = lake.query("SELECT load_id FROM glueless_loads");
        assert_eq!(ledger.len(), 1, "loaded once");
        assert_eq!(report["files"][0]["load_id"].as_str(), Some(ledger[0][0].as_str()), "{report}");
    }

    /// A GET of the object `landing/sales/cut.csv` (not the listing, not a staging write).
    fn gets_the_object(request: &str) -> bool {
        let line = request.lines().next().unwrap_or_default();
        line.starts_with("GET ") && line.contains("/landing/sales/cut.csv ")
    }

    /// The download of a file from S3 (an `s3://` lake on the emulator) cut halfway through its
    /// body: the file is read again and loaded once, every row exactly once.
    #[test]
    fn s3_get_cut_mid_body_is_read_again_and_loads_once() {
        const N: u64 = 2000;
        let proxy = HttpProxy::start(&aws_endpoint(), gets_the_object, HttpCut::MidBody, 1);
        let bucket = crate::support::make_bucket("cut-get");
        let store = crate::support::emulator_bucket(&aws_endpoint(), &bucket).unwrap();
        let csv = rows(0, N);
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use object_store::ObjectStoreExt;
            let path = object_store::path::Path::from("landing/sales/cut.csv");
            store.put(&path, csv.into_bytes().into()).await.expect("put the object");
        });
        let lake = Lake::new("max_attempts = 5\n");
        let url = format!("s3://{bucket}");
        let env = [("GLUELESS__LAKE__URL", url.as_str()), ("AWS_ENDPOINT_URL_S3", proxy.endpoint.as_str())];
        let report = lake.run_once(&env);
        assert!(proxy.fired(), "the download was cut: {report}");
        let gets = proxy.picked();
        assert!(gets.len() >= 2, "the object was read again after the cut: {gets:?}\n{report}");
        let st = lake.glueless(&["status", "--format", "json"], &env).json();
        let counts = ["LOADED", "FAILED", "DEAD", "RUNNING"].map(|s| count(&st, s));
        assert_eq!(counts, [1, 0, 0, 0], "{st}\n{report}");
        let want: Vec<String> = (0..N).map(|id| format!("{id}|{}|{}.50", 1 + id % 20, id % 1000)).collect();
        let facts = lake.facts();
        assert_eq!(facts.len(), want.len(), "every row once: {report}");
        assert!(facts == want, "every row as written: {report}");
        assert_eq!(lake.query("SELECT count(*) FROM glueless_loads"), [["1"]], "one ledger row");
    }

    /// SQS deletes of `glueless worker` cut (DynamoDB state, SQLite warehouse, on a copy of the
    /// SAM stack).
    #[cfg(feature = "lambda")]
    mod sqs {
        use super::*;
        use crate::aws_runtime::{Stack, queue_depth, rt, sales};

        /// How long the first worker's messages stay hidden (seconds): longer than it runs, so
        /// a message whose delete was lost does not come back to it.
        const HIDDEN_SECS: u64 = 5;

        /// The worker's deletes (it deletes in batches).
        fn deletes(request: &str) -> bool {
            request.contains("DeleteMessageBatch")
        }

        /// One file put into the stack's bucket (3 good rows, 1 bad), and `glueless worker
        /// --once` run on its queue with its SQS calls through a proxy that applies `cut` to
        /// its deletes (`times` of them).
        struct Deletes {
            stack: Stack,
            version: String,
            env: Vec<(String, String)>,
            dir: tempfile::TempDir,
            /// The first worker's report, and its stderr.
            first: serde_json::Value,
            stderr: String,
            /// How many deletes reached the proxy.
            deletes: usize,
        }

        impl Deletes {
            fn run(test: &str, cut: HttpCut, times: usize) -> Deletes {
                let stack = Stack::deploy(test, &[("DatasetPrefixes", "landing/sales/")]);
                let dir = tempfile::tempdir().unwrap();
                let contracts = dir.path().join("schemas");
                std::fs::create_dir(&contracts).unwrap();
                std::fs::write(contracts.join("sales.toml"), crate::pipeline::CONTRACT).unwrap();
                let warehouse = format!("sqlite://{}", crate::support::path_str(&dir.path().join("warehouse.db")));
                let mut env = stack.env(&contracts, &warehouse);
                env.retain(|(k, _)| k != "GLUELESS__QUEUE__WAIT_SECS" && k != "GLUELESS__QUEUE__VISIBILITY_SECS");
                // No long poll: the worker ends as soon as the queue shows nothing.
                env.push(("GLUELESS__QUEUE__WAIT_SECS".into(), "0".into()));
                env.push(("GLUELESS__QUEUE__VISIBILITY_SECS".into(), HIDDEN_SECS.to_string()));
                env.push(("GLUELESS__RUN__LEASE_SECS".into(), "2".into()));
                let version = rt().block_on(stack.put("landing/sales/good.csv", &sales(1, 3, 1)));
                let proxy = HttpProxy::start(&aws_endpoint(), deletes, cut, times);
                let mut through: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                through.push(("AWS_ENDPOINT_URL_SQS", proxy.endpoint.as_str()));
                let run =
                    crate::support::glueless_with_env(dir.path(), &["worker", "--once", "--format", "json"], &through);
                assert_eq!(run.code, 0, "{}", run.stderr);
                assert!(proxy.fired(), "a delete was cut: {}", run.stderr);
                Deletes {
                    stack,
                    version,
                    env,
                    dir,
                    first: run.json(),
                    stderr: run.stderr,
                    deletes: proxy.picked().len(),
                }
            }

            /// `glueless worker --once` straight to the emulator.
            fn again(&self) -> serde_json::Value {
                let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let run =
                    crate::support::glueless_with_env(self.dir.path(), &["worker", "--once", "--format", "json"], &env);
                assert_eq!(run.code, 0, "{}", run.stderr);
                run.json()
            }

            fn queued(&self) -> u64 {
                rt().block_on(queue_depth(&self.stack.queue_url))
            }

            /// The end: the file LOADED (one attempt), its 3 good rows once, one ledger row, the
            /// queue and the dead-letter queue empty.
            fn loaded_once(&self) {
                let rt = rt();
                let rec = rt.block_on(self.stack.record("landing/sales/good.csv", &self.version));
                assert_eq!((rec.state, rec.attempts), (glueless_jobs::ports::FileState::Loaded, 1), "{rec:?}");
                let db = self.dir.path().join("warehouse.db");
                let facts = crate::pipeline::query(&db, "SELECT id, qty, price FROM fact_sales ORDER BY id");
                assert_eq!(facts, [["1", "2", "9.99"], ["2", "2", "9.99"], ["3", "2", "9.99"]]);
                assert_eq!(
                    crate::pipeline::query(&db, "SELECT count(*) FROM glueless_loads"),
                    [["1"]],
                    "one ledger row"
                );
                assert_eq!(self.queued(), 0, "every message deleted in the end");
                assert_eq!(rt.block_on(queue_depth(&self.stack.dlq_url)), 0, "nothing in the dead-letter queue");
            }
        }

        /// The answer to the worker's delete is lost, the delete itself applied: the message
        /// does not come back, and the file is loaded once.
        #[test]
        fn answer_to_the_delete_lost_leaves_the_file_loaded_once_and_the_queue_empty() {
            let d = Deletes::run("cut-delete-answer", HttpCut::AnswerLost, 1);
            assert_eq!(d.first["messages"], 1, "{}\n{}", d.first, d.stderr);
            assert_eq!(d.first["files"][0]["state"], "LOADED", "{}", d.first);
            // The SDK sent the delete again, and the emulator took it.
            assert!(d.deletes >= 2, "{} delete(s): {}", d.deletes, d.stderr);
            assert_eq!(d.first["deleted"], 1, "{}", d.first);
            d.loaded_once();
        }

        /// Every delete of the first worker is lost before it reaches SQS: the message comes
        /// back once it is visible again, and the next worker sees the file LOADED, loads
        /// nothing, and deletes the message.
        #[test]
        fn delete_lost_the_message_comes_back_and_the_file_is_not_loaded_twice() {
            let d = Deletes::run("cut-delete-request", HttpCut::RequestLost, usize::MAX);
            let first = (d.first["messages"].as_u64(), d.first["deleted"].as_u64());
            assert_eq!(first, (Some(1), Some(0)), "{}\n{}", d.first, d.stderr);
            assert_eq!(d.first["files"][0]["state"], "LOADED", "{}", d.first);
            assert!(d.stderr.contains("DeleteMessageBatch failed"), "{}", d.stderr);
            assert_eq!(d.queued(), 1, "the message is still on the queue");
            std::thread::sleep(std::time::Duration::from_millis(HIDDEN_SECS * 1000 + 500));
            let second = d.again();
            let got = (second["messages"].as_u64(), second["deleted"].as_u64(), second["duplicates"].as_u64());
            assert_eq!(got, (Some(1), Some(1), Some(1)), "the message came back, as a duplicate: {second}");
            assert_eq!(second["files"], serde_json::json!([]), "nothing loaded again: {second}");
            d.loaded_once();
        }
    }
}
