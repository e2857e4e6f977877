//! The AWS runtime loading into Redshift (issue 12, item 5): `glueless worker` (a real process)
//! and the Lambda handler (in process) with `[warehouse] url = "redshift-data://…"`, on a stack
//! deployed into the emulator. The Data API is [`DataApiServer`], started here: it runs the
//! statements on a fresh test PostgreSQL database and its COPY reads the staged Parquet from the
//! stack's bucket on the emulator's S3.
//!
//! How each runtime reaches the server without this process's environment being changed:
//! - the worker gets `AWS_ENDPOINT_URL_REDSHIFT_DATA` (the AWS SDK's per-service endpoint
//!   variable) in its own environment; S3, SQS, DynamoDB and SNS keep the emulator's
//!   `AWS_ENDPOINT_URL`;
//! - the handler's pipeline is built from the settings as in Lambda (the Redshift adapter, from
//!   the URL), then its adapter is rebuilt with the same settings and an SDK client pointed at
//!   the server (`RedshiftDataWarehouse::with_client`).
//!
//! The crash tests arm the Redshift adapter's `before-ledger` point (the commit batch sent to
//! the Data API, its answer not awaited) and `after-commit`. A batch the Data API accepted runs
//! to its end without its client, as one transaction (the server: one PostgreSQL transaction;
//! Redshift: `BatchExecuteStatement`), so what the dead worker leaves is all of its commit batch
//! or none of it; the tests make each happen on purpose and check the next worker loads the file
//! exactly once either way.

use super::lambda::{event, failures, function};
use super::worker::{worker, worker_killed_at};
use super::*;
use crate::redshift::data_api_server::DataApiServer;
use crate::redshift::warehouse::{CLUSTER_URL, ROLE, fresh, pg, warehouse_with};
use glueless_jobs::ports::FileState;

/// A deployed stack and a Data API test server on a fresh database.
struct Redshift {
    stack: Stack,
    server: DataApiServer,
    /// The PostgreSQL database behind the server.
    pg: String,
    contracts: tempfile::TempDir,
}

/// The fact table (`id|qty|price`, by id) and the ledger (`(object_url, load_id)`, by URL), read
/// in one statement: one snapshot, in which a half-applied commit would show.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    facts: Vec<String>,
    ledger: Vec<(String, String)>,
}

const SNAPSHOT: &str = "SELECT \
     ARRAY(SELECT CAST(id AS TEXT) || '|' || CAST(qty AS TEXT) || '|' || CAST(price AS TEXT) FROM fact_sales ORDER BY id), \
     ARRAY(SELECT object_url FROM glueless_loads ORDER BY object_url), \
     ARRAY(SELECT load_id FROM glueless_loads ORDER BY object_url)";

/// The [`Snapshot`] as `client` sees it.
async fn snapshot_on(client: &tokio_postgres::Client) -> Snapshot {
    let row = client.query_one(SNAPSHOT, &[]).await.expect("fact table and ledger readable");
    let urls: Vec<String> = row.get(1);
    Snapshot { facts: row.get(0), ledger: urls.into_iter().zip(row.get::<_, Vec<String>>(2)).collect() }
}

/// The fact rows of [`sales`]`(first, good, _)`: its good rows (`qty` 2, `price` 9.99).
fn facts(first: u32, good: u32) -> Vec<String> {
    (first..first + good).map(|id| format!("{id}|2|9.99")).collect()
}

impl Redshift {
    async fn start(test: &str, params: &[(&str, &str)]) -> Redshift {
        let stack = Stack::deploy(test, params);
        let (_, server, pg) = fresh(&format!("aws_{test}")).await;
        Redshift { stack, server, pg, contracts: contracts() }
    }

    /// The runtime settings: the stack's, the warehouse `redshift-data://` with a COPY role and
    /// a bound on each statement (a test that holds a lock must not hang); with
    /// `short_lease`, a dead worker's messages and claims come back after 2 s.
    fn env(&self, short_lease: bool) -> Vec<(String, String)> {
        let mut env = if short_lease {
            self.stack.env_short_lease(self.contracts.path(), CLUSTER_URL)
        } else {
            self.stack.env(self.contracts.path(), CLUSTER_URL)
        };
        env.push(("GLUELESS__WAREHOUSE__IAM_ROLE".into(), ROLE.into()));
        env.push(("GLUELESS__WAREHOUSE__STATEMENT_TIMEOUT_SECS".into(), "20".into()));
        env
    }

    /// [`Self::env`] and, for the Redshift Data API only, the test server's endpoint.
    fn worker_env(&self, short_lease: bool) -> Vec<(String, String)> {
        let mut env = self.env(short_lease);
        env.push(("AWS_ENDPOINT_URL_REDSHIFT_DATA".into(), self.server.endpoint.clone()));
        env
    }

    async fn snapshot(&self) -> Snapshot {
        snapshot_on(&pg(&self.pg).await).await
    }

    /// Commit batches the server received (each starts by locking the ledger).
    fn commits(&self) -> usize {
        self.server.statements().iter().filter(|s| s.starts_with("LOCK TABLE")).count()
    }

    /// The COPY statements the server received.
    fn copies(&self) -> Vec<String> {
        self.server.statements().into_iter().filter(|s| s.starts_with("COPY")).collect()
    }

    /// The queue and its DLQ are empty, and no staging object is left (the staging Parquet is
    /// removed after the load, `keep_staging = false`, and COPY manifests after the COPY).
    async fn assert_drained_and_clean(&self) {
        assert_eq!(queue_depth(&self.stack.queue_url).await, 0, "every message deleted");
        assert_eq!(queue_depth(&self.stack.dlq_url).await, 0, "nothing in the DLQ");
        let staging = self.stack.keys("staging/").await;
        assert!(staging.is_empty(), "staging objects left: {staging:?}");
    }
}

/// About 7 s. The worker, S3 event → EventBridge → SQS → `glueless worker` → Redshift Data API.
#[test]
fn the_worker_loads_into_redshift_through_the_data_api_exactly_once() {
    rt().block_on(async {
        let rs = Redshift::start("rs-worker", &[("DatasetPrefixes", "landing/sales/")]).await;
        let env = rs.worker_env(false);
        let good = rs.stack.put("landing/sales/2026/good.csv", &sales(1, 3, 1)).await;
        let broken = rs.stack.put("landing/sales/2026/broken.csv", &sales(20, 0, 3)).await;

        let run = worker(&env, &[]);
        assert_eq!(run.code, 0, "worker: {}", run.stderr);
        let rec = rs.stack.record("landing/sales/2026/good.csv", &good).await;
        assert_eq!(
            (rec.state, rec.rows_loaded, rec.rows_rejected, rec.route.as_deref()),
            (FileState::Loaded, Some(3), Some(1), Some("worker")),
            "{rec:?}"
        );
        let load_id = rec.load_id.clone().expect("a LOADED file has its load id");
        let rec = rs.stack.record("landing/sales/2026/broken.csv", &broken).await;
        assert_eq!(rec.state, FileState::Rejected, "{rec:?}");

        // The load went through the server: one COPY of the staged part from the stack's bucket,
        // with the configured role, and one commit batch.
        let copies = rs.copies();
        assert_eq!(copies.len(), 1, "{copies:?}");
        let from = format!("COPY \"glueless_copy_0\" FROM 's3://{}/staging/", rs.stack.bucket);
        assert!(copies[0].starts_with(&from), "{}", copies[0]);
        assert!(copies[0].contains(&format!("IAM_ROLE '{ROLE}'")) && copies[0].contains("PARQUET"), "{}", copies[0]);
        assert_eq!(rs.commits(), 1);
        let url = rs.stack.url("landing/sales/2026/good.csv");
        let loaded = Snapshot { facts: facts(1, 3), ledger: vec![(url, load_id)] };
        assert_eq!(rs.snapshot().await, loaded, "the good rows once, one ledger row with the file's load id");
        rs.assert_drained_and_clean().await;

        // The same content uploaded again: a new event for a known version, not loaded again.
        assert_eq!(rs.stack.put("landing/sales/2026/good.csv", &sales(1, 3, 1)).await, good);
        let run = worker(&env, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        assert!(report["duplicates"].as_u64().unwrap() >= 1, "{report}");
        assert_eq!(report["files"].as_array().unwrap().len(), 0, "nothing processed again: {report}");
        assert_eq!(rs.commits(), 1, "no second commit batch");
        assert_eq!(rs.snapshot().await, loaded);
        rs.assert_drained_and_clean().await;
    });
}

/// About 3 s. The Lambda handler, with the batch the stack's queue handed out.
#[test]
fn the_handler_loads_into_redshift_through_the_data_api_exactly_once() {
    rt().block_on(async {
        let rs = Redshift::start("rs-lambda", &[("DatasetPrefixes", "landing/sales/")]).await;
        let mut f = function(rs.env(false)).await;
        assert_eq!(f.pipeline.warehouse.describe(), "redshift-data://cluster/test-cluster/dev", "built from the URL");
        f.pipeline.warehouse = std::sync::Arc::new(warehouse_with(&rs.server, &f.pipeline.settings.warehouse));

        let a = rs.stack.put("landing/sales/a.csv", &sales(1, 4, 0)).await;
        let b = rs.stack.put("landing/sales/day 2.csv", &sales(10, 2, 2)).await;
        let received = receive(&rs.stack.queue_url, Duration::from_secs(10), 60).await;
        assert!(received.len() >= 2, "both objects' events reached the queue: {received:?}");
        let ev = event(&rs.stack, &received, &[]);
        let deadline = Instant::now() + Duration::from_secs(120);
        assert_eq!(failures(&f.handle(ev.clone(), Some(deadline)).await), Vec::<String>::new());

        let ra = rs.stack.record("landing/sales/a.csv", &a).await;
        let rb = rs.stack.record("landing/sales/day 2.csv", &b).await;
        assert_eq!((ra.state, ra.rows_loaded, ra.route.as_deref()), (FileState::Loaded, Some(4), Some("lambda")));
        assert_eq!((rb.state, rb.rows_loaded, rb.rows_rejected), (FileState::Loaded, Some(2), Some(2)));
        assert_eq!(ra.load_id, rb.load_id, "the dataset's files of the batch in one commit batch");
        let load_id = ra.load_id.clone().expect("a load id");
        assert_eq!(rs.commits(), 1);
        assert_eq!(rs.copies().len(), 2, "one COPY per file");
        let mut want = facts(1, 4);
        want.extend(facts(10, 2));
        let loaded = Snapshot {
            facts: want,
            ledger: vec![
                (rs.stack.url("landing/sales/a.csv"), load_id.clone()),
                (rs.stack.url("landing/sales/day 2.csv"), load_id),
            ],
        };
        assert_eq!(rs.snapshot().await, loaded);
        let staging = rs.stack.keys("staging/").await;
        assert!(staging.is_empty(), "staging objects left: {staging:?}");

        // The same batch delivered again (SQS is at-least-once): nothing is loaded twice.
        assert_eq!(failures(&f.handle(ev, Some(deadline)).await), Vec::<String>::new());
        assert_eq!(rs.commits(), 1, "no second commit batch");
        assert_eq!(rs.snapshot().await, loaded);
        assert_eq!(rs.stack.record("landing/sales/a.csv", &a).await.attempts, 1, "not claimed again");
    });
}

/// What becomes of the commit batch the killed worker had sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Orphan {
    /// Held at its `LOCK TABLE` by the test while the worker dies, then let through: it commits.
    Commits,
    /// Refused by a trigger on the ledger insert: it fails, and rolls back.
    Fails,
    /// The worker died after the commit had been answered (`after-commit`).
    Answered,
}

/// A worker killed at `point` while loading `good.csv` (a `seed.csv` loaded before), then, after
/// the visibility timeout and the lease, a new worker. 12 to 16 s.
fn killed_in_the_commit(point: &str, orphan: Orphan) {
    rt().block_on(async {
        let name = format!("rs-{orphan:?}").to_lowercase();
        let rs =
            Redshift::start(&name, &[("DatasetPrefixes", "landing/sales/"), ("QueueVisibilityTimeoutSeconds", "2")])
                .await;
        let env = rs.worker_env(true);
        // A first file makes the tables: the lock and the trigger below are on the ledger.
        rs.stack.put("landing/sales/seed.csv", &sales(100, 2, 0)).await;
        let run = worker(&env, &[]);
        assert_eq!(run.code, 0, "seed: {}", run.stderr);
        let seeded = rs.snapshot().await;
        assert_eq!((seeded.facts.clone(), seeded.ledger.len()), (facts(100, 2), 1));

        let db = pg(&rs.pg).await;
        match orphan {
            Orphan::Commits => db.batch_execute("BEGIN; LOCK TABLE glueless_loads IN SHARE MODE").await.unwrap(),
            Orphan::Fails => db
                .batch_execute(
                    "CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'no ledger row today'; END $$;
                     CREATE TRIGGER no_ledger BEFORE INSERT ON glueless_loads \
                     FOR EACH ROW EXECUTE FUNCTION refuse_ledger();",
                )
                .await
                .unwrap(),
            Orphan::Answered => {}
        }
        let version = rs.stack.put("landing/sales/good.csv", &sales(1, 3, 1)).await;
        worker_killed_at(&env, point);
        let url = rs.stack.url("landing/sales/good.csv");
        if orphan == Orphan::Commits {
            // The commit batch was sent and waits at its lock: nothing of the file is in. (Read
            // by the lock holder: another reader would queue behind the batch's lock request.)
            let in_flight = rs.server.in_flight();
            assert!(in_flight.len() == 1 && in_flight[0].starts_with("LOCK TABLE"), "{in_flight:?}");
            assert_eq!(snapshot_on(&db).await, seeded, "nothing of the file before its batch commits");
            db.batch_execute("COMMIT").await.unwrap();
        }
        rs.server.wait_idle(Duration::from_secs(20)).await;
        let mut all = facts(1, 3);
        all.extend(facts(100, 2));
        let after = rs.snapshot().await;
        let dead_load = if orphan == Orphan::Fails {
            assert_eq!(after, seeded, "the failed batch rolled back the fact rows with the ledger row");
            db.batch_execute("DROP TRIGGER no_ledger ON glueless_loads").await.unwrap();
            None
        } else {
            assert_eq!(after.facts, all, "the whole batch committed: the file's rows");
            let (_, id) = after.ledger.iter().find(|(u, _)| *u == url).expect("and its ledger row");
            Some(id.clone())
        };
        assert_eq!(rs.stack.record("landing/sales/good.csv", &version).await.state, FileState::Running, "{point}");
        let commits = rs.commits();

        // The message comes back after its visibility timeout, the dead worker's claim lapses.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let run = worker(&env, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        let files = report["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{report}");
        assert_eq!(
            (files[0]["url"].as_str(), files[0]["state"].as_str()),
            (Some(url.as_str()), Some("LOADED")),
            "{report}"
        );
        let rec = rs.stack.record("landing/sales/good.csv", &version).await;
        assert_eq!(rec.state, FileState::Loaded, "{rec:?}");
        let load_id = rec.load_id.clone().expect("a load id");
        let note = files[0]["reason"].as_str().unwrap_or("");
        match &dead_load {
            Some(dead) => {
                assert_eq!(&load_id, dead, "recorded with the dead worker's load: {rec:?}");
                assert!(note.contains("already in the warehouse ledger"), "{report}");
                assert_eq!(rs.commits(), commits, "found in the ledger before staging: no commit batch");
            }
            None => {
                assert!(!note.contains("already"), "{report}");
                assert_eq!(rs.commits(), commits + 1, "loaded by the new worker");
            }
        }
        let seed_row = seeded.ledger[0].clone();
        let want = Snapshot { facts: all, ledger: vec![(url, load_id), seed_row] };
        assert_eq!(rs.snapshot().await, want, "the good rows once, one ledger row per file");
        assert_eq!(rs.stack.records().await.len(), 2);
        rs.assert_drained_and_clean().await;
    });
}

#[test]
fn a_worker_killed_before_the_commit_answer_whose_batch_commits_loads_exactly_once() {
    killed_in_the_commit("before-ledger", Orphan::Commits);
}

#[test]
fn a_worker_killed_before_the_commit_answer_whose_batch_fails_loads_exactly_once() {
    killed_in_the_commit("before-ledger", Orphan::Fails);
}

#[test]
fn a_worker_killed_after_the_redshift_commit_loads_exactly_once() {
    killed_in_the_commit("after-commit", Orphan::Answered);
}
