//! The Redshift adapter over HTTP, with the real AWS SDK, against [`DataApiServer`] on the test
//! PostgreSQL, with the staged Parquet on the local S3 emulator.
//!
//! The acceptance suite stages its Parquet on S3 through the engine's `Stores`, which read the
//! usual AWS environment (`AWS_ENDPOINT_URL`, credentials, region): the tests run where that
//! environment points at the emulator (`scripts/test`). The adapter's SDK client is built here
//! with an explicit endpoint ([`RedshiftDataWarehouse::with_client`]): no test changes the
//! process environment.

use super::data_api_server::DataApiServer;
use crate::acceptance::warehouse::{Staging, suite_staged_at};
use aws_sdk_redshiftdata::config::{BehaviorVersion, Credentials, Region};
use glueless_jobs::adapters::RedshiftDataWarehouse;
use glueless_jobs::ports::*;
use glueless_jobs::settings::WarehouseSettings;
use object_store::ObjectStoreExt;
use serde_json::json;

/// The URL every Redshift test loads into (the test server takes any cluster and database).
pub(crate) const CLUSTER_URL: &str = "redshift-data://cluster/test-cluster/dev?db_user=glueless";
/// The role COPY names.
pub(crate) const ROLE: &str = "arn:aws:iam::123456789012:role/glueless-copy";

/// The staging of the suite goes through `AWS_ENDPOINT_URL`: refuse to run against real AWS.
fn require_s3_environment() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL"));
    assert!(
        endpoint.as_deref().is_ok_and(|e| e == aws_endpoint()),
        "staging on s3:// in this process needs AWS_ENDPOINT_URL={} (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
         AWS_REGION) in the environment of the tests, as scripts/test sets it",
        aws_endpoint()
    );
}

use crate::support::{aws_endpoint, make_bucket};

fn settings(url: &str) -> WarehouseSettings {
    WarehouseSettings {
        url: url.into(),
        iam_role: ROLE.into(),
        statement_timeout_secs: 60,
        ..WarehouseSettings::default()
    }
}

/// The adapter on `url`, its SDK pointed at `server`.
pub(crate) fn warehouse_at(server: &DataApiServer, url: &str) -> RedshiftDataWarehouse {
    warehouse_with(server, &settings(url))
}

/// The adapter with `settings`, its SDK pointed at `server`.
pub(crate) fn warehouse_with(server: &DataApiServer, settings: &WarehouseSettings) -> RedshiftDataWarehouse {
    let conf = aws_sdk_redshiftdata::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&server.endpoint)
        .build();
    RedshiftDataWarehouse::with_client(aws_sdk_redshiftdata::Client::from_conf(conf), settings).unwrap()
}

/// A fresh database, a server on it and the adapter.
pub(crate) async fn fresh(test: &str) -> (RedshiftDataWarehouse, DataApiServer, String) {
    let pg = crate::support::postgres_database(test).await;
    let server = DataApiServer::start(&pg).await;
    (warehouse_at(&server, CLUSTER_URL), server, pg)
}

/// A plain client of the database behind the server (to add constraints, triggers).
pub(crate) async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

fn row(id: i64, name: &str, qty: i64, hour: u32) -> String {
    format!("{id},{name},{qty},0.5,true,2026-01-02,08:00:00,2026-11-20T{hour:02}:00:00Z,2026,1.10")
}

async fn load(
    w: &RedshiftDataWarehouse,
    st: &Staging,
    load_id: &str,
    files: &[StagedFile],
) -> Result<LoadResult, WarehouseError> {
    w.load(&LoadRequest { table: &st.spec, load_id, files, now: 1_700_000_000_000 }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_data_warehouse_passes_the_suite() {
    require_s3_environment();
    let bucket = make_bucket("suite");
    suite_staged_at(|| async { fresh("redshift_suite").await.0 }, Some(&format!("s3://{bucket}/staging"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_a_failing_sub_statement_is_named_and_not_retryable() {
    require_s3_environment();
    let bucket = make_bucket("failing");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, _server, url) = fresh("redshift_failing").await;
    w.ensure_table(&st.spec).await.unwrap();
    pg(&url)
        .await
        .batch_execute("ALTER TABLE fact_everything ADD CONSTRAINT qty_small CHECK (qty < 100)")
        .await
        .unwrap();
    let f = st.stage("big-qty", "v1", &[&row(1, "ok", 1, 1), &row(2, "too many", 1000, 1)]).await;
    let err = load(&w, &st, "L1", &[f]).await.expect_err("the check constraint fails the MERGE");
    let text = err.to_string();
    assert!(matches!(err, WarehouseError::Load { .. }), "{err:?}");
    assert!(!err.is_retryable(), "a SQL error needs someone to change something: {text}");
    assert!(text.contains("statement 6 of 7 (MERGE INTO \"fact_everything\""), "names the sub-statement: {text}");
    assert!(text.contains("qty_small"), "carries Redshift's message: {text}");
    assert_eq!(w.ledger(None).await.unwrap(), vec![], "rolled back");
    assert!(w.fact_rows(&st.spec).await.unwrap().is_empty(), "rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_a_serialization_failure_is_retryable() {
    require_s3_environment();
    let bucket = make_bucket("serialization");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, _server, url) = fresh("redshift_serialization").await;
    w.ensure_table(&st.spec).await.unwrap();
    let db = pg(&url).await;
    db.batch_execute(
        "CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'concurrent update' USING ERRCODE = '40001'; END $$;
         CREATE TRIGGER conflict BEFORE INSERT ON fact_everything FOR EACH ROW EXECUTE FUNCTION conflict();",
    )
    .await
    .unwrap();
    let f = st.stage("conflict", "v1", &[&row(1, "one", 1, 1)]).await;
    let err = load(&w, &st, "L1", std::slice::from_ref(&f)).await.expect_err("the trigger fails the MERGE");
    let text = err.to_string();
    assert!(err.is_retryable(), "a serialization conflict passes: {text}");
    assert!(text.contains("Serializable isolation violation") && text.contains("MERGE INTO"), "{text}");
    assert_eq!(w.ledger(None).await.unwrap(), vec![]);
    // Once the conflict is gone, the same load goes through.
    db.batch_execute("DROP TRIGGER conflict ON fact_everything").await.unwrap();
    let done = load(&w, &st, "L2", &[f]).await.unwrap();
    assert_eq!(done.files, vec![FileLoad::Loaded { rows: 1 }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redshift_concurrent_duplicate_loads_load_once() {
    require_s3_environment();
    let bucket = make_bucket("concurrent");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w1, server, _) = fresh("redshift_concurrent").await;
    let w2 = warehouse_at(&server, CLUSTER_URL);
    w1.ensure_table(&st.spec).await.unwrap();
    for round in 0..3 {
        let f =
            st.stage(&format!("twice-{round}"), "v1", &[&row(round, "a", 1, 1), &row(100 + round, "b", 1, 1)]).await;
        let (id1, id2) = (format!("A{round}"), format!("B{round}"));
        let (r1, r2) = tokio::join!(
            load(&w1, &st, &id1, std::slice::from_ref(&f)),
            load(&w2, &st, &id2, std::slice::from_ref(&f))
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let outcomes = [&r1.files[0], &r2.files[0]];
        let loaded: Vec<_> = outcomes.iter().filter(|o| matches!(o, FileLoad::Loaded { .. })).collect();
        assert_eq!(loaded.len(), 1, "exactly one load records the file: {r1:?} {r2:?}");
        let ledger = w1.ledger(Some(&f.key.url)).await.unwrap();
        assert_eq!(ledger.len(), 1, "one ledger row");
        let winner = &ledger[0].load_id;
        for o in outcomes {
            assert!(
                matches!(o, FileLoad::Loaded { rows: 2 }) || o == &FileLoad::AlreadyLoaded { load_id: winner.clone() },
                "{o:?}"
            );
        }
        assert_eq!(r1.rows_merged + r2.rows_merged, 2, "the rows are merged once");
    }
    assert_eq!(w2.fact_rows(&st.spec).await.unwrap().len(), 6);
    // Both loads of a round start together, so they pass the first ledger read and stage: the
    // guard of the commit batch, under the lock, is what keeps the second one out.
    let commits = server.statements().iter().filter(|s| s.starts_with("LOCK TABLE")).count();
    assert!(commits >= 4, "at least one round raced to the commit ({commits} commit batches)");
}

/// A file staged in several parts is copied through a manifest, removed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_several_parts_are_copied_through_a_manifest() {
    require_s3_environment();
    let bucket = make_bucket("parts");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, server, _) = fresh("redshift_parts").await;
    w.ensure_table(&st.spec).await.unwrap();
    let a = st.stage("part-a", "v1", &[&row(1, "a", 1, 1), &row(2, "a", 1, 1)]).await;
    let b = st.stage("part-b", "v1", &[&row(3, "b", 1, 1)]).await;
    let both = StagedFile {
        key: FileKey { url: "s3://landing/split.csv".into(), version: "v1".into() },
        fingerprint: "xxh3:split".into(),
        parts: a.parts.iter().chain(&b.parts).cloned().collect(),
        rows: 3,
    };
    let done = load(&w, &st, "L1", &[both]).await.unwrap();
    assert_eq!(done.files, vec![FileLoad::Loaded { rows: 3 }]);
    let copies: Vec<String> = server.statements().into_iter().filter(|s| s.starts_with("COPY")).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].contains(".L1.manifest'") && copies[0].ends_with("FORMAT AS PARQUET MANIFEST"), "{}", copies[0]);
    let manifest =
        a.parts[0].with_file_name(&format!("{}.L1.manifest", a.parts[0].file_name().trim_end_matches(".parquet")));
    assert!(
        matches!(manifest.store.head(&manifest.path).await, Err(object_store::Error::NotFound { .. })),
        "the manifest is removed after the load"
    );
    assert_eq!(w.fact_rows(&st.spec).await.unwrap().len(), 3);
}

/// COPY from one key loads every object under that prefix: a part whose key another object's
/// key extends is copied through a manifest, so only its own rows load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_a_part_whose_key_prefixes_another_object_goes_through_a_manifest() {
    require_s3_environment();
    let bucket = make_bucket("prefix");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, server, _) = fresh("redshift_prefix").await;
    w.ensure_table(&st.spec).await.unwrap();
    let mine = st.stage("mine", "v1", &[&row(1, "mine", 1, 1)]).await;
    let other = st.stage("other", "v1", &[&row(2, "other", 1, 1)]).await;
    let part = &mine.parts[0];
    let bytes = other.parts[0].store.get(&other.parts[0].path).await.unwrap().bytes().await.unwrap();
    let shadow = object_store::path::Path::from(format!("{}.old", part.path.as_ref()));
    part.store.put(&shadow, bytes.into()).await.unwrap();
    load(&w, &st, "L1", &[mine]).await.unwrap();
    let rows = w.fact_rows(&st.spec).await.unwrap();
    assert_eq!(rows.len(), 1, "only the file's own part is loaded: {rows:?}");
    assert_eq!(rows[0][1], json!("mine"));
    assert!(server.statements().iter().any(|s| s.starts_with("COPY") && s.ends_with("MANIFEST")));
}

/// What the adapter sends: the connection parameters of each URL form, and a session for the
/// load's batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_url_forms_reach_the_data_api() {
    require_s3_environment();
    let bucket = make_bucket("targets");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, server, _) = fresh("redshift_targets").await;
    assert_eq!(w.describe(), "redshift-data://cluster/test-cluster/dev");
    w.ensure_table(&st.spec).await.unwrap();
    let f = st.stage("targets", "v1", &[&row(1, "one", 1, 1)]).await;
    load(&w, &st, "L1", &[f]).await.unwrap();
    let requests = server.requests();
    let submits: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r.action == "ExecuteStatement" || r.action == "BatchExecuteStatement")
        .map(|r| &r.body)
        .collect();
    for body in &submits {
        if body.get("SessionId").is_some() {
            assert!(body.get("ClusterIdentifier").is_none() && body.get("Database").is_none(), "{body}");
        } else {
            assert_eq!(
                (&body["ClusterIdentifier"], &body["Database"], &body["DbUser"]),
                (&json!("test-cluster"), &json!("dev"), &json!("glueless"))
            );
        }
    }
    let batches: Vec<&&serde_json::Value> = submits.iter().filter(|b| b.get("Sqls").is_some()).collect();
    let load_batches = &batches[batches.len() - 2..];
    assert!(load_batches[0]["SessionKeepAliveSeconds"].as_i64().is_some(), "the staging batch keeps its session");
    assert!(load_batches[1]["SessionId"].is_string(), "the commit batch runs on that session");
    assert!(
        load_batches[0]["Sqls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains(&format!("IAM_ROLE '{ROLE}'")))
    );

    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-AbCdEf";
    let wg = warehouse_at(&server, &format!("redshift-data://workgroup/analytics/dev?secret_arn={arn}"));
    assert_eq!(wg.fact_rows(&st.spec).await.unwrap().len(), 1);
    let last = server.requests().into_iter().rfind(|r| r.action == "ExecuteStatement").unwrap();
    assert_eq!(
        (&last.body["WorkgroupName"], &last.body["Database"], &last.body["SecretArn"]),
        (&json!("analytics"), &json!("dev"), &json!(arn))
    );
    assert!(last.body.get("ClusterIdentifier").is_none() && last.body.get("DbUser").is_none());
}

/// A part that is not Parquet fails its COPY: a `Staged` error naming the part and the COPY
/// (retryable); a Parquet of other columns is refused for good (staged for another contract).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_a_failing_copy_names_the_part() {
    require_s3_environment();
    let bucket = make_bucket("copy");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, _server, _) = fresh("redshift_copy").await;
    w.ensure_table(&st.spec).await.unwrap();
    let good = st.stage("copy-good", "v1", &[&row(1, "one", 1, 1)]).await;
    let part = good.parts[0].with_file_name("not-parquet.parquet");
    part.store.put(&part.path, b"id,name\n1,x\n".to_vec().into()).await.unwrap();
    let broken = StagedFile {
        key: FileKey { url: "s3://landing/broken.csv".into(), version: "v1".into() },
        fingerprint: "xxh3:broken".into(),
        parts: vec![part.clone()],
        rows: 1,
    };
    match load(&w, &st, "L1", &[good.clone(), broken]).await {
        Err(e @ WarehouseError::Staged { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&part.url) && text.contains("(COPY \"glueless_copy_1\""), "{text}");
            assert!(e.is_retryable());
        }
        other => panic!("a part that is not Parquet fails with Staged, got {other:?}"),
    }

    let mut narrow = Vec::new();
    let batch = arrow::array::RecordBatch::try_from_iter([(
        "id",
        std::sync::Arc::new(arrow::array::Int64Array::from(vec![1])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut narrow, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let part = good.parts[0].with_file_name("one-column.parquet");
    part.store.put(&part.path, narrow.into()).await.unwrap();
    let other = StagedFile {
        key: FileKey { url: "s3://landing/other-contract.csv".into(), version: "v1".into() },
        fingerprint: "xxh3:other".into(),
        parts: vec![part],
        rows: 1,
    };
    match load(&w, &st, "L2", &[other]).await {
        Err(e @ WarehouseError::Load { .. }) => {
            assert!(!e.is_retryable() && e.to_string().contains("stage the file again"), "{e}")
        }
        other => panic!("a Parquet of other columns is refused, got {other:?}"),
    }
    assert_eq!(w.ledger(None).await.unwrap(), vec![]);
    assert_eq!(load(&w, &st, "L3", &[good]).await.unwrap().files, vec![FileLoad::Loaded { rows: 1 }]);
}

/// A statement still running after `statement_timeout_secs` fails the load as retryable; if it
/// commits after all, the retry finds the files in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_a_statement_past_the_timeout_is_retryable() {
    require_s3_environment();
    let bucket = make_bucket("timeout");
    let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
    let (w, server, url) = fresh("redshift_timeout").await;
    w.ensure_table(&st.spec).await.unwrap();
    let impatient = warehouse_with(&server, &WarehouseSettings { statement_timeout_secs: 1, ..settings(CLUSTER_URL) });
    let f = st.stage("slow", "v1", &[&row(1, "one", 1, 1)]).await;
    // Another transaction holds a lock on the ledger that lets reads through but makes the
    // commit batch wait at its LOCK.
    let holder = pg(&url).await;
    holder.batch_execute("BEGIN; LOCK TABLE glueless_loads IN SHARE MODE").await.unwrap();
    let err =
        load(&impatient, &st, "L1", std::slice::from_ref(&f)).await.expect_err("the commit waits past the timeout");
    assert!(err.is_retryable() && err.to_string().contains("batch of 7 statements was still running"), "{err}");
    // The test server does not cancel: once the lock is released the batch commits.
    holder.batch_execute("COMMIT").await.unwrap();
    let mut ledger = Vec::new();
    for _ in 0..100 {
        ledger = w.ledger(None).await.unwrap();
        if !ledger.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ledger.len(), 1);
    let again = load(&w, &st, "L2", &[f]).await.unwrap();
    assert_eq!(again.files, vec![FileLoad::AlreadyLoaded { load_id: "L1".into() }]);
}

/// Staged files outside S3 cannot be copied: the error says where staging must go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_refuses_staging_outside_s3() {
    let st = Staging::new(None);
    let (w, _server, _) = fresh("redshift_local").await;
    w.ensure_table(&st.spec).await.unwrap();
    let f = st.stage("local", "v1", &[&row(1, "one", 1, 1)]).await;
    match load(&w, &st, "L1", &[f]).await {
        Err(e @ WarehouseError::Staged { .. }) => assert!(e.to_string().contains("[lake] url = \"s3://"), "{e}"),
        other => panic!("a local part is refused, got {other:?}"),
    }
}

/// The connect path reads the URL and the AWS environment; a bad URL is a connect error.
#[tokio::test]
async fn redshift_connect_checks_the_url() {
    match RedshiftDataWarehouse::connect(&settings("redshift-data://cluster/only-a-cluster")).await {
        Err(e @ WarehouseError::Connect { .. }) => assert!(e.to_string().contains("/<name>/<database>"), "{e}"),
        Err(other) => panic!("a Connect error, got {other:?}"),
        Ok(_) => panic!("a URL without a database is refused"),
    }
}

/// A view where the fact table should be is refused, and no load goes into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_refuses_a_view_in_place_of_the_fact_table() {
    let st = Staging::new(None);
    let (w, _server, url) = fresh("redshift_view").await;
    pg(&url).await.batch_execute("CREATE VIEW fact_everything AS SELECT 1 AS id").await.unwrap();
    match w.ensure_table(&st.spec).await {
        Err(e @ WarehouseError::Table { .. }) => assert!(e.to_string().contains("as a VIEW"), "{e}"),
        other => panic!("ensure_table refuses a view, got {other:?}"),
    }
}
