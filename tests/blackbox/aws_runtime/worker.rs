//! `glueless worker`, a real process, consuming the stack's queue.

use super::*;
use glueless_jobs::ports::FileState;

/// Runs `glueless worker --once` (plus `args`) with the stack's settings.
pub(crate) fn worker(env: &[(String, String)], args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut all = vec!["worker", "--once"];
    all.extend_from_slice(args);
    glueless_with_env(dir.path(), &all, &env)
}

/// Runs `glueless worker --once` armed to die at the fault `point` (`GLUELESS_FAULT`, see
/// `glueless_jobs::pipeline::faults`) and asserts that it died there: by SIGKILL, its marker
/// file naming the point.
pub(crate) fn worker_killed_at(env: &[(String, String)], point: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fault-reached");
    let mut armed = env.to_vec();
    armed.push(("GLUELESS_FAULT".into(), point.into()));
    armed.push(("GLUELESS_FAULT_MARKER".into(), path_str(&marker).into()));
    let killed = worker(&armed, &[]);
    assert_eq!(killed.code, -1, "{point}: killed by SIGKILL: {}", killed.stderr);
    assert_eq!(std::fs::read_to_string(&marker).ok().as_deref(), Some(point), "{point}: reached: {}", killed.stderr);
    assert!(killed.stderr.contains(&format!("GLUELESS_FAULT={point}: killing")), "{point}: {}", killed.stderr);
    killed
}

async fn count_rows(warehouse: &str, table: &str) -> i64 {
    let (c, conn) = tokio_postgres::connect(warehouse, tokio_postgres::NoTls).await.expect("warehouse reachable");
    tokio::spawn(conn);
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0)
}

#[test]
fn s3_event_through_eventbridge_and_sqs_is_loaded_once_by_the_worker() {
    rt().block_on(async {
        let stack = Stack::deploy("worker", &[("DatasetPrefixes", "landing/sales/")]);
        let subscriber = crate::sns::Subscriber::start();
        subscriber.subscribe(&crate::sns::client(), &stack.topic, None).await;
        let contracts = contracts();
        let warehouse = postgres_database("aws_worker").await;
        let env = stack.env(contracts.path(), &warehouse);

        let good = stack.put("landing/sales/2026/good.csv", &sales(1, 3, 1)).await;
        // A file-level problem: every row breaks `qty >= 1`, over the contract's max_rejected_ratio.
        let broken = stack.put("landing/sales/2026/broken.csv", &sales(20, 0, 3)).await;
        // Outside every dataset prefix: the rule does not route it.
        stack.put("elsewhere/notes.csv", "a\n1\n").await;

        let run = worker(&env, &[]);
        assert_eq!(run.code, 0, "worker: {}", run.stderr);
        // stdout: one CloudWatch EMF line per finished file.
        let emf: Vec<serde_json::Value> =
            run.stdout.lines().map(|l| serde_json::from_str(l).expect("an EMF JSON line")).collect();
        assert_eq!(emf.len(), 2, "one EMF line per file: {}", run.stdout);
        let loaded = emf.iter().find(|m| m["state"] == "LOADED").expect("an EMF line for the loaded file");
        assert_eq!(loaded["_aws"]["CloudWatchMetrics"][0]["Namespace"], "glueless");
        assert_eq!(loaded["runtime"], "worker");
        assert_eq!(loaded["glueless_rows_loaded_count"], 3);
        assert_eq!(loaded["glueless_rows_rejected_count"], 1);
        assert!(loaded["glueless_load_lag_seconds"].as_f64().is_some_and(|s| s >= 0.0), "lag from the S3 event time");
        assert!(
            emf.iter().any(|m| m["state"] == "REJECTED" && m["object"] == stack.url("landing/sales/2026/broken.csv")),
            "an EMF line for the rejected file: {emf:?}"
        );

        let rec = stack.record("landing/sales/2026/good.csv", &good).await;
        assert_eq!(rec.state, FileState::Loaded, "{rec:?}");
        assert_eq!((rec.rows_loaded, rec.rows_rejected, rec.route.as_deref()), (Some(3), Some(1), Some("worker")));
        let rec = stack.record("landing/sales/2026/broken.csv", &broken).await;
        assert_eq!(rec.state, FileState::Rejected);
        assert_eq!(rec.rows_rejected, Some(3), "{rec:?}");
        assert!(rec.last_error.as_deref().unwrap_or("").contains("reject"), "says why: {rec:?}");
        assert_eq!(stack.records().await.len(), 2, "nothing outside the dataset prefixes was registered");

        assert_eq!(count_rows(&warehouse, "fact_sales").await, 3);
        assert!(stack.keys("staging/").await.is_empty(), "staging Parquet is removed after the load");
        let quarantine = stack.keys("rejected/sales/").await;
        assert_eq!(quarantine.len(), 2, "each file's rejected rows in its quarantine object: {quarantine:?}");
        assert_eq!(queue_depth(&stack.queue_url).await, 0, "every message was deleted");
        assert_eq!(queue_depth(&stack.dlq_url).await, 0);

        // The REJECTED file's alert reached the HTTP subscriber through SNS.
        let alerts = subscriber.wait_for("Notification", 1).await;
        assert_eq!(alerts.len(), 1, "one alert (the loaded file raises none)");
        let msg: serde_json::Value = serde_json::from_str(alerts[0]["Message"].as_str().unwrap()).unwrap();
        let ctx = &msg["metadata"]["additionalContext"];
        assert_eq!(ctx["state"], "REJECTED");
        assert_eq!(ctx["object"], stack.url("landing/sales/2026/broken.csv"));

        // The same content uploaded again: a new event, the same ETag, a duplicate.
        let again = stack.put("landing/sales/2026/good.csv", &sales(1, 3, 1)).await;
        assert_eq!(again, good);
        let run = worker(&env, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        assert!(report["duplicates"].as_u64().unwrap() >= 1, "{report}");
        assert_eq!(report["files"].as_array().unwrap().len(), 0, "nothing processed again: {report}");
        assert_eq!(count_rows(&warehouse, "fact_sales").await, 3, "loaded once");
        assert_eq!(queue_depth(&stack.queue_url).await, 0);
    });
}

#[test]
fn a_file_that_keeps_failing_reaches_the_dead_letter_queue_and_replay_loads_it() {
    rt().block_on(async {
        let stack = Stack::deploy(
            "poison",
            &[("DatasetPrefixes", "landing/sales/"), ("MaxReceiveCount", "2"), ("QueueVisibilityTimeoutSeconds", "2")],
        );
        let contracts = contracts();
        let warehouse = postgres_database("aws_poison").await;
        // The fact table exists with an incompatible shape: every load of the file fails.
        let (c, conn) = tokio_postgres::connect(&warehouse, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute("CREATE TABLE fact_sales (id bigint PRIMARY KEY, other text NOT NULL)").await.unwrap();
        let mut env = stack.env(contracts.path(), &warehouse);
        env.push(("GLUELESS__RUN__MAX_ATTEMPTS".into(), "10".into()));

        let version = stack.put("landing/sales/poison.csv", &sales(1, 2, 0)).await;
        let run = worker(&env, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        assert!(report["retried"].as_u64().unwrap() >= 2, "retried on each receive: {report}");
        assert_eq!(report["deleted"], 0, "{report}");

        let dead_letters = receive(&stack.dlq_url, Duration::from_secs(5), 30).await;
        assert_eq!(dead_letters.len(), 1, "the message moved to the DLQ after 2 receives");
        assert!(dead_letters[0].body().unwrap_or("").contains("landing/sales/poison.csv"));
        assert_eq!(queue_depth(&stack.queue_url).await, 0);
        let rec = stack.record("landing/sales/poison.csv", &version).await;
        assert_eq!(rec.state, FileState::Failed, "kept for a replay or a DLQ redrive: {rec:?}");
        assert_eq!(rec.attempts, 2, "one attempt per receive");
        assert!(rec.last_error.as_deref().unwrap_or("").contains("warehouse"), "{rec:?}");
        let n: i64 = c.query_one("SELECT count(*) FROM fact_sales", &[]).await.unwrap().get(0);
        assert_eq!(n, 0);

        // The fix: the table goes; `glueless replay` puts the file back and on the queue.
        c.batch_execute("DROP TABLE fact_sales").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let url = stack.url("landing/sales/poison.csv");
        let replay = glueless_with_env(dir.path(), &["replay", "--url", &url, "--format", "json"], &env_ref);
        assert_eq!(replay.code, 0, "{}", replay.stderr);
        assert_eq!(replay.json()["requeued"], 1, "{}", replay.stdout);
        let run = worker(&env, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let rec = stack.record("landing/sales/poison.csv", &version).await;
        assert_eq!((rec.state, rec.rows_loaded), (FileState::Loaded, Some(2)), "{rec:?}");
        let n: i64 = c.query_one("SELECT count(*) FROM fact_sales", &[]).await.unwrap().get(0);
        assert_eq!(n, 2);
    });
}

#[test]
fn a_message_in_work_stays_hidden_past_its_visibility_timeout() {
    rt().block_on(async {
        let stack = Stack::deploy("heartbeat", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let warehouse = postgres_database("aws_heartbeat").await;
        let mut env = stack.env(contracts.path(), &warehouse);
        env.push(("GLUELESS__QUEUE__VISIBILITY_SECS".into(), "2".into()));
        // Hold the warehouse's DDL lock (key 0x676c7565, 0) so that the load waits.
        let (c, conn) = tokio_postgres::connect(&warehouse, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.execute("SELECT pg_advisory_lock(1735161189, 0)", &[]).await.unwrap();
        let version = stack.put("landing/sales/long.csv", &sales(1, 3, 0)).await;

        let worker_env = env.clone();
        let worker = std::thread::spawn(move || worker(&worker_env, &["--format", "json"]));
        let started = Instant::now();
        while stack.try_record("landing/sales/long.csv", &version).await.map(|r| r.state) != Some(FileState::Running) {
            assert!(started.elapsed() < Duration::from_secs(30), "the worker never claimed the file");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Three visibility timeouts: another consumer must not get the message meanwhile.
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            let got = sqs().receive_message().queue_url(&stack.queue_url).wait_time_seconds(1).send().await.unwrap();
            assert!(got.messages().is_empty(), "the message in work was handed to another consumer");
        }
        c.execute("SELECT pg_advisory_unlock(1735161189, 0)", &[]).await.unwrap();
        let run = worker.join().unwrap();
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json()["deleted"], 1, "{}", run.stdout);
        let rec = stack.record("landing/sales/long.csv", &version).await;
        assert_eq!((rec.state, rec.attempts), (FileState::Loaded, 1));
        assert_eq!(queue_depth(&stack.queue_url).await, 0);
    });
}

#[test]
fn an_outage_of_the_state_store_does_not_burn_the_messages_into_the_dlq() {
    rt().block_on(async {
        let stack = Stack::deploy("outage", &[("DatasetPrefixes", "landing/sales/"), ("MaxReceiveCount", "2")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let mut env = stack.env(contracts.path(), &format!("sqlite://{}", path_str(&dir.path().join("w.db"))));
        // A state table that does not exist: every registration fails.
        env.retain(|(k, _)| k != "GLUELESS__STATE__URL");
        env.push(("GLUELESS__STATE__URL".into(), format!("dynamodb://{}-gone", stack.table)));
        stack.put("landing/sales/waiting.csv", &sales(1, 2, 0)).await;

        let run = worker(&env, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        assert_eq!((report["retried"].as_u64(), report["deleted"].as_u64()), (Some(1), Some(0)), "{report}");
        assert!(run.stderr.contains("cannot register"), "says why: {}", run.stderr);
        // Received once, then left hidden for its visibility timeout, not handed out again at
        // once: it is still on the queue, and not in the dead-letter queue.
        assert_eq!(queue_depth(&stack.queue_url).await, 1);
        assert_eq!(queue_depth(&stack.dlq_url).await, 0);
    });
}
