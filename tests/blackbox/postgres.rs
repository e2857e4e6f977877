//! The PostgreSQL warehouse: the port's acceptance suite, the same loads giving the same rows
//! and results as the SQLite warehouse, names that cannot inject SQL, connection errors that
//! keep the password to themselves, and the whole pipeline through the binary.
//!
//! Each test makes its own database on the server `scripts/test` starts
//! (`GLUELESS_TEST_POSTGRES_URL`).

use crate::acceptance::warehouse::{Staging, suite};
use crate::pipeline::{HEADER, Lake};
use crate::support::postgres_database;
use glueless_jobs::adapters::{PostgresWarehouse, SqliteWarehouse};
use glueless_jobs::ports::warehouse::Column;
use glueless_jobs::ports::*;
use glueless_jobs::settings::WarehouseSettings;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

const T0: Millis = 1_700_000_000_000;

fn settings(url: &str) -> WarehouseSettings {
    WarehouseSettings { url: url.to_string(), ..Default::default() }
}

pub(crate) async fn connect(url: &str) -> PostgresWarehouse {
    PostgresWarehouse::connect(&settings(url), Path::new(".")).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// A client of its own on the test database, for looking behind the port.
pub(crate) async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("test PostgreSQL reachable");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_warehouse_passes_the_suite() {
    suite(|| async {
        let url = postgres_database("suite").await;
        let w = connect(&url).await;
        assert_eq!(w.describe(), url, "describe shows the URL (it has no password)");
        w
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The same loads into SQLite and PostgreSQL

/// A test row (the columns of the acceptance contract): `updated` an hour of 2026-11-20 or
/// missing, and a few other columns varying with `id` so that every type is compared.
fn row(id: i64, name: &str, updated: Option<u32>) -> String {
    let updated = updated.map(|h| format!("2026-11-20T{h:02}:00:00Z")).unwrap_or_default();
    let weight = if id % 5 == 0 { String::new() } else { format!("{}.{}", id % 97, id % 8) };
    let price = if id % 7 == 0 { String::new() } else { format!("{}.{:02}", id * 3 - 50, id % 100) };
    format!(
        "{id},{name},{},{weight},{},2026-01-{:02},{:02}:{:02}:00.{:06},{updated},{},{price}",
        id * 1_000_003 - 4_000_000,
        id % 2 == 0,
        id % 28 + 1,
        id % 24,
        id % 60,
        id % 999_999,
        1990 + id % 40
    )
}

/// Deterministic pseudo-random numbers (no dependency, the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_sqlite_load_the_same_rows_the_same_way() {
    let st = Staging::new(None);
    let lines = |rows: &[(i64, &str, Option<u32>)]| -> Vec<String> {
        rows.iter().map(|&(id, name, updated)| row(id, name, updated)).collect()
    };
    let stage = |name: &'static str, version: &'static str, rows: Vec<String>| {
        let st = &st;
        async move {
            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
            st.stage(name, version, &rows).await
        }
    };
    let a1 =
        stage("diff-a", "v1", lines(&[(1, "a1", Some(3)), (2, "a2", Some(3)), (3, "a3", None), (4, "a4", Some(9))]))
            .await;
    // b: older, equal, newer and missing versions against a; new keys.
    let mut b1 = stage(
        "diff-b",
        "v1",
        lines(&[
            (1, "b1 older", Some(2)),
            (2, "b2 equal", Some(3)),
            (3, "b3 over none", Some(1)),
            (4, "b4 none", None),
            (5, "b5", Some(4)),
            (6, "b6", None),
            (9, "b9 first", Some(4)),
        ]),
    )
    .await;
    // A second part of b with a key of its first part: the later row wins a tie.
    let more = stage("diff-b-more", "v1", lines(&[(9, "b9 second", Some(4)), (10, "b10", None)])).await;
    b1.parts.extend(more.parts);
    b1.rows += more.rows;
    // c in the same request as b: ties with b go to c (the later file).
    let c1 = stage("diff-c", "v1", lines(&[(5, "c5 tie", Some(4)), (6, "c6 none", None), (7, "c7", Some(20))])).await;
    // a re-uploaded: the same content under a new version, then new content.
    let a2 =
        stage("diff-a", "v2", lines(&[(1, "a1", Some(3)), (2, "a2", Some(3)), (3, "a3", None), (4, "a4", Some(9))]))
            .await;
    assert_eq!(a1.fingerprint, a2.fingerprint);
    let a3 = stage("diff-a", "v3", lines(&[(1, "a1 newer", Some(23)), (8, "a8", Some(0))])).await;
    // Many rows over several record batches, the keys of one file overlapping the others',
    // versions random or missing.
    let mut rng = Lcg(42);
    let mut big = Vec::new();
    for (f, name) in ["diff-big-1", "diff-big-2", "diff-big-3"].into_iter().enumerate() {
        let mut ids: Vec<i64> = (1..=8_000).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.next(i as u64 + 1) as usize);
        }
        let rows: Vec<String> = ids[..5_000]
            .iter()
            .map(|&id| {
                let updated = (rng.next(8) != 0).then(|| rng.next(24) as u32);
                row(id, &format!("big {f} {id}"), updated)
            })
            .collect();
        big.push(stage(name, "v1", rows).await);
    }
    let empty = StagedFile {
        key: FileKey { url: "s3://landing/diff-empty.csv".into(), version: "v1".into() },
        fingerprint: "xxh3:0".into(),
        parts: vec![],
        rows: 0,
    };
    let requests: Vec<Vec<StagedFile>> = vec![
        vec![a1.clone()],
        vec![b1.clone(), c1.clone(), empty.clone()],
        vec![a2.clone(), b1.clone()],
        vec![a3.clone(), a3.clone(), c1.clone()],
        vec![big[0].clone()],
        vec![big[1].clone(), big[2].clone()],
        vec![a1.clone(), empty.clone(), big[2].clone()],
    ];

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteWarehouse::open(&dir.path().join("warehouse.db")).unwrap();
    let postgres = connect(&postgres_database("differential").await).await;
    let warehouses: [&dyn Warehouse; 2] = [&sqlite, &postgres];
    for w in warehouses {
        w.ensure_table(&st.spec).await.unwrap();
    }
    for (i, files) in requests.iter().enumerate() {
        let load_id = format!("L{i}");
        let mut results = Vec::new();
        for w in warehouses {
            let req = LoadRequest { table: &st.spec, load_id: &load_id, files, now: T0 + i as Millis };
            results.push(w.load(&req).await.unwrap_or_else(|e| panic!("{load_id} into {}: {e}", w.describe())));
        }
        assert_eq!(results[1], results[0], "load {load_id}: PostgreSQL (right) and SQLite (left) agree");
        let (s, p) = (sqlite.fact_rows(&st.spec).await.unwrap(), postgres.fact_rows(&st.spec).await.unwrap());
        assert_eq!(p.len(), s.len(), "after {load_id}: PostgreSQL (left) and SQLite (right) hold as many rows");
        for (s, p) in s.iter().zip(&p) {
            assert_eq!(p, s, "after {load_id}: PostgreSQL (left) and SQLite (right) hold the same row");
        }
    }
    assert_eq!(postgres.ledger(None).await.unwrap(), sqlite.ledger(None).await.unwrap());
    let rows = postgres.fact_rows(&st.spec).await.unwrap();
    assert!(rows.len() > 7_000, "the big files were compared too: {} rows", rows.len());
    // Loading the same request again does nothing, in both.
    for w in warehouses {
        let req = LoadRequest { table: &st.spec, load_id: "again", files: &requests[1], now: T0 + 100 };
        assert_eq!(
            w.load(&req).await.unwrap(),
            LoadResult {
                files: vec![FileLoad::AlreadyLoaded { load_id: "L1".into() }; 3],
                rows_superseded: 0,
                rows_merged: 0,
                direct: false
            }
        );
    }
}

/// The expected result of the second request in the differential test, checked on its own so
/// that a shared mistake of both adapters would still show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_newest_row_per_key_across_files() {
    let st = Staging::new(None);
    let stage = |name: &'static str, rows: Vec<String>| {
        let st = &st;
        async move {
            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
            st.stage(name, "v1", &rows).await
        }
    };
    let a =
        stage("keep-a", vec![row(1, "a1", Some(3)), row(2, "a2", Some(3)), row(3, "a3", None), row(4, "a4", Some(9))])
            .await;
    let mut b = stage(
        "keep-b",
        vec![
            row(1, "b1 older", Some(2)),
            row(2, "b2 equal", Some(3)),
            row(3, "b3 over none", Some(1)),
            row(4, "b4 none", None),
            row(5, "b5", Some(4)),
            row(6, "b6", None),
            row(9, "b9 first", Some(4)),
        ],
    )
    .await;
    // The engine keeps one row per key in a file; two parts of one file can still share one.
    let more = stage("keep-b-more", vec![row(9, "b9 second", Some(4)), row(10, "b10", None)]).await;
    b.parts.extend(more.parts);
    b.rows += more.rows;
    let c = stage("keep-c", vec![row(5, "c5 tie", Some(4)), row(6, "c6 none", None), row(7, "c7", Some(20))]).await;
    let w = connect(&postgres_database("keep").await).await;
    w.ensure_table(&st.spec).await.unwrap();
    let load = |id: &'static str, files: Vec<StagedFile>| {
        let (w, spec) = (&w, &st.spec);
        async move { w.load(&LoadRequest { table: spec, load_id: id, files: &files, now: T0 }).await.unwrap() }
    };
    assert_eq!(
        load("L1", vec![a]).await,
        LoadResult { files: vec![FileLoad::Loaded { rows: 4 }], rows_superseded: 0, rows_merged: 4, direct: true }
    );
    // b1 (older), b2 (equal), b4 (no version over one) lose to the table; b5 loses to c5
    // (same version, later file); b6 loses to c6 (both without a version, later file); b9
    // first loses to b9 second (same version and file, later row).
    assert_eq!(
        load("L2", vec![b, c]).await,
        LoadResult {
            files: vec![FileLoad::Loaded { rows: 9 }, FileLoad::Loaded { rows: 3 }],
            rows_superseded: 6,
            rows_merged: 6,
            direct: false
        }
    );
    let names: Vec<(Value, Value)> =
        w.fact_rows(&st.spec).await.unwrap().into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(
        names,
        vec![
            (json!(1), json!("a1")),
            (json!(2), json!("a2")),
            (json!(3), json!("b3 over none")),
            (json!(4), json!("a4")),
            (json!(5), json!("c5 tie")),
            (json!(6), json!("c6 none")),
            (json!(7), json!("c7")),
            (json!(9), json!("b9 second")),
            (json!(10), json!("b10")),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Names

const EVIL: &str = r#"x"; DROP TABLE victim; --"#;

/// A Parquet part with an `id` and a column named [`EVIL`], as staging writes them.
fn evil_part(dir: &Path) -> glueless_engine::store::Location {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new(EVIL, DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("'); DROP TABLE victim; --"), None])),
        ],
    )
    .unwrap();
    let path = dir.join("evil.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    glueless_engine::Stores::new().resolve(&path.display().to_string()).unwrap()
}

#[tokio::test]
async fn postgres_names_are_names_not_sql() {
    let url = postgres_database("names").await;
    let pg = client(&url).await;
    pg.batch_execute("CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)").await.unwrap();
    let w = connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let part = evil_part(dir.path());
    for table in [EVIL.to_string(), format!("{EVIL}.{EVIL}"), "Mixed Case.t (1)".to_string()] {
        let spec = TableSpec {
            dataset: "evil".into(),
            table: table.clone(),
            columns: vec![
                Column { name: "id".into(), ty: SqlType::Int64, nullable: false },
                Column { name: EVIL.into(), ty: SqlType::Text, nullable: true },
            ],
            key: vec![0],
            version: None,
        };
        w.ensure_table(&spec).await.unwrap_or_else(|e| panic!("ensure_table {table}: {e}"));
        w.ensure_table(&spec).await.unwrap();
        let file = StagedFile {
            key: FileKey { url: format!("s3://landing/{table}.csv"), version: "v1".into() },
            fingerprint: "xxh3:evil".into(),
            parts: vec![part.clone()],
            rows: 2,
        };
        let req = LoadRequest { table: &spec, load_id: "L1", files: std::slice::from_ref(&file), now: T0 };
        let result = w.load(&req).await.unwrap_or_else(|e| panic!("load into {table}: {e}"));
        assert_eq!(
            result,
            LoadResult { files: vec![FileLoad::Loaded { rows: 2 }], rows_superseded: 0, rows_merged: 2, direct: true }
        );
        assert_eq!(
            w.fact_rows(&spec).await.unwrap(),
            vec![vec![json!(1), json!("'); DROP TABLE victim; --")], vec![json!(2), Value::Null]]
        );
    }
    // Each name is one identifier, as written.
    let tables: Vec<(String, String)> = pg
        .query(
            r#"SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               ORDER BY n.nspname::text COLLATE "C", c.relname::text COLLATE "C""#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        tables,
        vec![
            s("Mixed Case", "t (1)"),
            s("public", "glueless_loads"),
            s("public", "victim"),
            s("public", EVIL),
            s(EVIL, EVIL)
        ]
    );
    let column: String = pg
        .query_one(r#"SELECT attname::text FROM pg_attribute WHERE attrelid = '"Mixed Case"."t (1)"'::regclass AND attnum = 2"#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(column, EVIL);
    let victims: i64 = pg.query_one("SELECT count(*) FROM victim", &[]).await.unwrap().get(0);
    assert_eq!(victims, 1, "the victim table is untouched");
}

#[tokio::test]
async fn postgres_refuses_a_view_and_a_table_without_a_unique_key() {
    let url = postgres_database("refuses").await;
    let pg = client(&url).await;
    let st = Staging::new(None);
    pg.batch_execute(r#"CREATE VIEW fact_everything AS SELECT 1 AS id"#).await.unwrap();
    let w = connect(&url).await;
    match w.ensure_table(&st.spec).await {
        Err(e @ WarehouseError::Table { .. }) => assert!(e.to_string().contains("view"), "{e}"),
        other => panic!("ensure_table refuses a view, got {other:?}"),
    }
    pg.batch_execute(
        r#"DROP VIEW fact_everything;
           CREATE TABLE fact_everything (id bigint, name text, qty bigint, weight float8, active boolean, day date,
             at time, updated timestamptz, vintage int, "unit ""price"" (EUR)" numeric(20, 2))"#,
    )
    .await
    .unwrap();
    match w.ensure_table(&st.spec).await {
        Err(e @ WarehouseError::Table { .. }) => {
            assert!(e.to_string().contains("UNIQUE index on exactly (\"id\")"), "{e}");
            assert!(!e.is_retryable());
        }
        other => panic!("a table without a key is refused, got {other:?}"),
    }
    pg.batch_execute("CREATE UNIQUE INDEX fact_everything_key ON fact_everything (id)").await.unwrap();
    w.ensure_table(&st.spec).await.unwrap();
    let f = st.stage("unique-index", "v1", &["1,one,1,0.5,true,2026-01-02,08:00:00,,2026,1.10"]).await;
    let req = LoadRequest { table: &st.spec, load_id: "L1", files: std::slice::from_ref(&f), now: T0 };
    assert_eq!(w.load(&req).await.unwrap().rows_merged, 1);
    // A missing optional column is added again, and the change recorded.
    pg.batch_execute(r#"ALTER TABLE fact_everything DROP COLUMN "unit ""price"" (EUR)""#).await.unwrap();
    w.ensure_table(&st.spec).await.expect("a missing optional column is added");
    let ddl: Vec<String> =
        pg.query("SELECT ddl FROM glueless_schema_changes", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(ddl, [r#"ALTER TABLE "fact_everything" ADD COLUMN "unit ""price"" (EUR)" numeric(20, 2);"#]);
}

#[tokio::test]
async fn postgres_errors_roll_back_and_say_whether_to_retry() {
    let url = postgres_database("errors").await;
    let pg = client(&url).await;
    let st = Staging::new(None);
    // Lock waits give up after 200 ms, so that a held lock shows as an error.
    let w = connect(&format!("{url}?options=-clock_timeout%3D200ms")).await;
    w.ensure_table(&st.spec).await.unwrap();
    let good = st.stage("good", "v1", &[&row(1, "kept", Some(1))]).await;
    let req = LoadRequest { table: &st.spec, load_id: "L1", files: std::slice::from_ref(&good), now: T0 };
    w.load(&req).await.unwrap();
    let (rows_before, ledger_before) = (w.fact_rows(&st.spec).await.unwrap(), w.ledger(None).await.unwrap());
    let f = st.stage("bad", "v1", &[&row(1, "changed", Some(2)), &row(2, "negative qty", Some(2))]).await;
    let req = LoadRequest { table: &st.spec, load_id: "L2", files: std::slice::from_ref(&f), now: T0 + 1 };

    // A constraint the rows break: not retryable.
    pg.batch_execute("ALTER TABLE fact_everything ADD CONSTRAINT positive CHECK (qty > 0) NOT VALID").await.unwrap();
    match w.load(&req).await {
        Err(e @ WarehouseError::Load { .. }) => {
            assert!(!e.is_retryable(), "{e}");
            assert!(e.to_string().contains("positive") && e.to_string().contains("23514"), "{e}");
        }
        other => panic!("a check violation fails the load, got {other:?}"),
    }
    pg.batch_execute("ALTER TABLE fact_everything DROP CONSTRAINT positive").await.unwrap();

    // Another session holding the table: retryable.
    let mut holder = client(&url).await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE fact_everything IN ACCESS EXCLUSIVE MODE").await.unwrap();
    match w.load(&req).await {
        Err(e @ WarehouseError::Load { .. }) => assert!(e.is_retryable(), "{e}"),
        other => panic!("a lock timeout fails the load, got {other:?}"),
    }
    tx.rollback().await.unwrap();
    assert_eq!(w.fact_rows(&st.spec).await.unwrap(), rows_before, "nothing of the failed loads is visible");
    assert_eq!(w.ledger(None).await.unwrap(), ledger_before);

    // Without the obstacles the same load goes through.
    let result = w.load(&req).await.unwrap();
    assert_eq!((result.rows_merged, result.rows_superseded), (2, 0));
}

// ---------------------------------------------------------------------------------------------
// Connecting

#[tokio::test]
async fn postgres_connection_errors_name_the_url_but_never_the_password() {
    let url = std::env::var("GLUELESS_TEST_POSTGRES_URL").expect("GLUELESS_TEST_POSTGRES_URL (scripts/test)");
    let (_, host_port_db) = url.split_once('@').expect("postgres://USER@HOST:PORT/DB");
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cret-Pa55word-that-must-not-leak";
    std::fs::write(dir.path().join("pg-password"), format!("{secret}\n")).unwrap();
    let connect_err = |s: WarehouseSettings| {
        let dir = dir.path().to_path_buf();
        async move {
            match PostgresWarehouse::connect(&s, &dir).await {
                Err(e @ WarehouseError::Connect { .. }) => e,
                Err(e) => panic!("a Connect error, got {e:?}"),
                Ok(w) => panic!("{} should not connect", w.describe()),
            }
        }
    };

    // A role that cannot log in (the test server trusts every known role, so a wrong password
    // shows as a refused role), the password from password_file.
    let nobody = format!("postgres://nobody@{host_port_db}");
    let e = connect_err(WarehouseSettings { password_file: "pg-password".into(), ..settings(&nobody) }).await;
    let text = format!("{e} {e:?}");
    assert!(text.contains(&nobody) && !text.contains(secret), "{text}");
    assert!(e.is_retryable());

    // The password in the URL (discouraged, but it works) is left out of the message.
    let in_url = format!("postgres://nobody:{secret}@{host_port_db}");
    let e = connect_err(settings(&in_url)).await;
    let text = format!("{e} {e:?}");
    assert!(text.contains(&nobody) && !text.contains(secret), "{text}");

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = connect_err(settings(&format!("postgres://postgres:{secret}@127.0.0.1:{port}/x"))).await;
    let text = format!("{e} {e:?}");
    assert!(text.contains(&format!("postgres://postgres@127.0.0.1:{port}/x")) && !text.contains(secret), "{text}");

    // A host that does not resolve.
    let e = connect_err(settings("postgres://db.invalid/x")).await;
    assert!(e.to_string().contains("postgres://db.invalid/x"), "{e}");

    // TLS: an unknown mode names the key; `require` against a server without TLS fails.
    let e = connect_err(WarehouseSettings { tls: "verify-full".into(), ..settings(&url) }).await;
    assert!(e.to_string().contains("warehouse.tls") && e.to_string().contains("require"), "{e}");
    let e = connect_err(WarehouseSettings { tls: "require".into(), ..settings(&url) }).await;
    assert!(e.to_string().contains(&url), "{e}");
    let e =
        connect_err(WarehouseSettings { tls: "require".into(), ca_file: "missing-ca.pem".into(), ..settings(&url) })
            .await;
    assert!(e.to_string().contains("ca_file"), "{e}");

    // The right settings connect.
    connect(&url).await;
}

#[tokio::test]
async fn postgres_reconnects_after_the_connection_is_killed() {
    let url = postgres_database("reconnect").await;
    let st = Staging::new(None);
    let w = connect(&url).await;
    w.ensure_table(&st.spec).await.unwrap();
    let pg = client(&url).await;
    let glueless = "FROM pg_stat_activity WHERE application_name = 'glueless' AND datname = current_database()";
    let killed = pg.execute(&format!("SELECT pg_terminate_backend(pid) {glueless}"), &[]).await.unwrap();
    assert_eq!(killed, 1, "the warehouse keeps one connection");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pg.query_one(&format!("SELECT count(*) {glueless}"), &[]).await.unwrap().get::<_, i64>(0) > 0 {
        assert!(std::time::Instant::now() < deadline, "the backend did not stop");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The next calls notice and connect again.
    assert_eq!(w.ledger(None).await.unwrap(), vec![]);
    let f = st.stage("reconnect", "v1", &["1,one,1,0.5,true,2026-01-02,08:00:00,,2026,1.10"]).await;
    let req = LoadRequest { table: &st.spec, load_id: "L1", files: std::slice::from_ref(&f), now: T0 };
    assert_eq!(w.load(&req).await.unwrap().rows_merged, 1);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loads_from_two_connections_serialize() {
    let url = postgres_database("parallel").await;
    let st = Staging::new(None);
    let (w1, w2) = (connect(&url).await, connect(&url).await);
    w1.ensure_table(&st.spec).await.unwrap();
    w2.ensure_table(&st.spec).await.unwrap();
    let mut files = Vec::new();
    for i in 0..8 {
        files.push(
            st.stage(&format!("parallel-{i}"), "v1", &[&row(i, "p", Some(1)), &row(100 + i, "p", Some(1))]).await,
        );
    }
    // Every file offered to both: each is loaded by exactly one of them.
    let (a, b) = tokio::join!(load_each(&w1, &st.spec, &files, "A"), load_each(&w2, &st.spec, &files, "B"));
    assert_eq!(a + b, 8, "each file loaded once ({a} + {b})");
    assert_eq!(w1.ledger(None).await.unwrap().len(), 8);
    assert_eq!(w2.fact_rows(&st.spec).await.unwrap().len(), 16);
}

/// Loads each file in a request of its own; how many it loaded (not already loaded).
async fn load_each(w: &PostgresWarehouse, spec: &TableSpec, files: &[StagedFile], tag: &str) -> usize {
    let mut loaded = 0;
    for (i, f) in files.iter().enumerate() {
        let id = format!("{tag}{i}");
        let req = LoadRequest { table: spec, load_id: &id, files: std::slice::from_ref(f), now: T0 };
        if matches!(w.load(&req).await.unwrap().files[0], FileLoad::Loaded { .. }) {
            loaded += 1;
        }
    }
    loaded
}

// ---------------------------------------------------------------------------------------------
// The pipeline through the binary

#[tokio::test]
async fn the_pipeline_loads_into_postgres() {
    let url = postgres_database("pipeline").await;
    let lake = Lake::new("");
    lake.drop_file(
        "sales/2026/11/20.csv",
        &format!("{HEADER}1,2026-11-20T10:00:00Z,3,9.99\n2,2026-11-20T10:00:00Z,1,0.10\n"),
    );
    let env = [("GLUELESS__WAREHOUSE__URL", url.as_str())];
    lake.run_once(&env);
    // The same file again, and a newer version of row 2.
    lake.run_once(&env);
    lake.drop_file("sales/2026/11/21.csv", &format!("{HEADER}2,2026-11-21T10:00:00Z,5,0.20\n"));
    lake.run_once(&env);
    let pg = client(&url).await;
    let facts: Vec<String> = pg
        .query("SELECT id, qty, price::text FROM fact_sales ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}|{}|{}", r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, String>(2)))
        .collect();
    assert_eq!(facts, vec!["1|3|9.99", "2|5|0.20"]);
    let loads: i64 = pg.query_one("SELECT count(*) FROM glueless_loads", &[]).await.unwrap().get(0);
    assert_eq!(loads, 2);

    // A password from the environment never shows, whatever goes wrong.
    let secret = "pipeline-Pa55word-that-must-not-leak";
    let (_, host_port_db) = url.split_once('@').unwrap();
    let nobody = format!("postgres://nobody@{host_port_db}");
    let r = lake.glueless(&["run", "--once"], &[("GLUELESS__WAREHOUSE__URL", &nobody), ("PGPASSWORD", secret)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&nobody), "{}", r.stderr);
    assert!(!r.stderr.contains(secret) && !r.stdout.contains(secret), "{}{}", r.stdout, r.stderr);
}
