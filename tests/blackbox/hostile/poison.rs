//! One poison file never sinks its batch (issue 11, items 3 and 4).
//!
//! Values the configured warehouse cannot store (NaN in a SQLite REAL, a NUL byte in
//! PostgreSQL text, a date in year -5000) are row errors of validation: rule
//! `constraint-error`, constraint `warehouse`, in the quarantine, the file's other rows and
//! the other files loaded, nothing stored as NULL instead. A refusal that validation cannot
//! foresee (a CHECK constraint or a trigger someone added to the fact table) makes the load
//! split its batch until it finds the file: that one is REJECTED with the warehouse's message
//! on its first attempt, every other file is LOADED. A transient error is still retried.

use crate::pipeline::{HEADER, Lake, query};
use crate::support::jsonl;
use serde_json::Value;
use std::path::Path;

/// A dataset with a required and an optional float, a date read with a pattern (which takes
/// any year) and a string.
const READINGS: &str = r#"
name = "readings"
match = "landing/readings/**/*.csv*"
table = "fact_readings"
[schema]
primaryKey = ["id"]
[[schema.fields]]
name = "id"
type = "integer"
[[schema.fields]]
name = "value"
type = "number"
constraints = { required = true }
[[schema.fields]]
name = "extra"
type = "number"
[[schema.fields]]
name = "day"
type = "date"
format = "%Y-%m-%d"
[[schema.fields]]
name = "note"
type = "string"
[load]
max_rejected_ratio = 0.9
"#;

const READINGS_HEADER: &str = "id,value,extra,day,note\n";

fn readings_lake(extra_config: &str) -> Lake {
    let lake = Lake::new(extra_config);
    std::fs::write(lake.root.join("schemas/readings.toml"), READINGS).unwrap();
    lake
}

/// `glueless run --once --format json`, whatever its exit code: the report and stderr.
fn run(lake: &Lake, env: &[(&str, &str)]) -> (Value, String) {
    let r = lake.glueless(&["run", "--once", "--format", "json"], env);
    let stderr = r.stderr.clone();
    (r.json(), stderr)
}

/// The report's last entry (its final outcome: a retried file has one per attempt) for the
/// file whose URL ends with `name`.
fn file<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .rfind(|f| f["url"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} is in the report: {report}"))
}

/// Asserts that `name` ended LOADED on its first attempt with these counts.
fn assert_loaded(report: &Value, name: &str, read: u64, loaded: u64, rejected: u64) {
    let f = file(report, name);
    assert_eq!(f["state"], "LOADED", "{name}: {f}");
    assert_eq!(f["attempts"], 1, "{name}: {f}");
    let counts = (f["rows_read"].as_u64(), f["rows_loaded"].as_u64(), f["rows_rejected"].as_u64());
    assert_eq!(counts, (Some(read), Some(loaded), Some(rejected)), "{name}: {f}");
    assert_eq!(read, loaded + rejected, "counts add up");
}

/// The quarantine of a report entry: (line, rule, constraint, field, message) per error.
fn quarantined(f: &Value) -> Vec<(u64, String, String, String, String)> {
    let path = f["quarantine"].as_str().unwrap_or_else(|| panic!("a quarantine: {f}"));
    let mut out = Vec::new();
    for row in jsonl(Path::new(path)) {
        for e in row["errors"].as_array().unwrap() {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            out.push((row["line"].as_u64().unwrap(), s("rule"), s("constraint"), s("field"), s("message")));
        }
    }
    out
}

#[test]
fn sqlite_values_it_cannot_store_are_row_errors_and_the_batch_loads() {
    let lake = readings_lake("");
    let h = READINGS_HEADER;
    lake.drop_file("readings/a.csv", &format!("{h}1,1.5,0.5,2026-01-01,a\n2,2.5,0.5,2026-01-02,b\n"));
    lake.drop_file(
        "readings/b.csv",
        &format!(
            "{h}3,NaN,0.5,2026-01-03,required NaN\n4,4.5,nan,2026-01-04,optional NaN\n5,5.5,0.5,-5000-01-01,year -5000\n6,-inf,0.5,2026-01-06,infinity is kept\n7,7.5,0.5,2026-01-07,ok\n"
        ),
    );
    lake.drop_file("readings/c.csv", &format!("{h}8,8.5,0.5,2026-01-08,c\n"));
    let (report, stderr) = run(&lake, &[]);
    assert_loaded(&report, "a.csv", 2, 2, 0);
    assert_loaded(&report, "b.csv", 5, 2, 3);
    assert_loaded(&report, "c.csv", 1, 1, 0);
    let q = quarantined(file(&report, "b.csv"));
    let rules: Vec<(u64, &str, &str, &str)> =
        q.iter().map(|(l, r, c, f, _)| (*l, r.as_str(), c.as_str(), f.as_str())).collect();
    assert_eq!(
        rules,
        vec![
            (2, "constraint-error", "warehouse", "value"),
            (3, "constraint-error", "warehouse", "extra"),
            (4, "constraint-error", "warehouse", "day")
        ],
        "{stderr}"
    );
    assert!(q[0].4.contains("SQLite") && q[0].4.contains("NaN") && q[0].4.contains("NULL"), "{}", q[0].4);
    assert!(q[2].4.contains("0000-01-01 to 9999-12-31"), "{}", q[2].4);
    // Nothing changed on the way: no NULL for a NaN, infinity kept, the rejected rows absent.
    let rows = lake.query("SELECT id, value, extra FROM fact_readings ORDER BY id");
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, ["1", "2", "6", "7", "8"]);
    assert!(rows.iter().all(|r| r[1] != "NULL" && r[2] != "NULL"), "{rows:?}");
    assert_eq!(rows[2][1], "-inf");
}

/// `glueless validate --warehouse KIND` checks what `run` would: the same values are row
/// errors for the warehouse named, and without the flag only the contract is checked.
#[test]
fn validate_checks_a_warehouse_s_limits_when_asked() {
    let lake = readings_lake("");
    let csv = lake.root.join("r.csv");
    std::fs::write(
        &csv,
        format!(
            "{READINGS_HEADER}1,NaN,0.5,2026-01-01,a\n2,2.5,0.5,2026-01-02,nul \0 inside\n3,3.5,0.5,2026-01-03,ok\n"
        ),
    )
    .unwrap();
    let validate = |extra: &[&str]| {
        let mut args = vec!["validate", "--contract", "schemas/readings.toml", "--format", "json"];
        args.extend_from_slice(extra);
        args.push(csv.to_str().unwrap());
        let r = crate::support::glueless(&lake.root, &args);
        let report = r.json();
        let rejected: Vec<String> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["rule"] == "constraint-error" && e["message"].as_str().unwrap().contains("warehouse"))
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(report["rows_read"], 3, "{report}");
        (r.code, rejected)
    };
    assert_eq!(validate(&[]), (0, vec![]), "the contract alone takes every row");
    assert_eq!(validate(&["--warehouse", "sqlite"]), (3, vec!["value".to_string()]), "SQLite holds no NaN");
    assert_eq!(validate(&["--warehouse", "postgres"]), (3, vec!["note".to_string()]), "PostgreSQL holds no NUL");
    let (code, fields) = validate(&["--warehouse", "redshift"]);
    assert_eq!((code, fields.len()), (3, 2), "Redshift holds neither: {fields:?}");
}

/// Drops four files of `sales`, the third with a row of qty 13, which the warehouse refuses
/// (a constraint validation does not know); returns the report of the run.
fn batch_with_one_refused_file(lake: &Lake, env: &[(&str, &str)]) -> (Value, String) {
    for (name, first) in [("f1.csv", 10), ("f2.csv", 20), ("f3.csv", 30), ("f4.csv", 40)] {
        let qty = |i: i64| if name == "f3.csv" && i == 1 { 13 } else { 2 };
        let body: String = (0..3).map(|i| format!("{},2026-11-20T10:00:00Z,{},1.00\n", first + i, qty(i))).collect();
        lake.drop_file(&format!("sales/{name}"), &format!("{HEADER}{body}"));
    }
    run(lake, env)
}

/// The refused file is REJECTED with the warehouse's message, on its first attempt; the others
/// of its batch are LOADED; the log says the batch was split.
fn assert_isolated(report: &Value, stderr: &str, warehouse_says: &str) {
    let f3 = file(report, "f3.csv");
    assert_eq!(f3["state"], "REJECTED", "{f3}\n{stderr}");
    assert_eq!(f3["attempts"], 1, "a refusal is not retried: {f3}");
    let reason = f3["reason"].as_str().unwrap();
    assert!(reason.contains(warehouse_says), "the warehouse's message: {reason}");
    assert!(reason.contains("glueless replay"), "says what to do: {reason}");
    for name in ["f1.csv", "f2.csv", "f4.csv"] {
        assert_loaded(report, name, 3, 3, 0);
    }
    assert!(stderr.contains("refused rows of a batch of 4 files"), "the four went as one batch: {stderr}");
}

#[test]
fn sqlite_a_trigger_refusing_one_file_rejects_it_and_loads_the_rest() {
    let lake = Lake::new("");
    lake.drop_file("sales/seed.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
    lake.run_once(&[]);
    let c = rusqlite::Connection::open(lake.warehouse()).unwrap();
    c.execute_batch(
        "CREATE TRIGGER unlucky BEFORE INSERT ON fact_sales WHEN NEW.qty = 13
         BEGIN SELECT RAISE(ABORT, 'qty 13 is unlucky'); END;",
    )
    .unwrap();
    drop(c);
    let (report, stderr) = batch_with_one_refused_file(&lake, &[]);
    assert_isolated(&report, &stderr, "qty 13 is unlucky");
    let ids = lake.query("SELECT count(*), sum(id >= 30 AND id < 40) FROM fact_sales");
    assert_eq!(ids, vec![vec!["10".to_string(), "0".to_string()]], "seed + 3 files of 3 rows, none of f3");
    let ledger = query(&lake.warehouse(), "SELECT count(*) FROM glueless_loads WHERE object_url LIKE '%f3.csv'");
    assert_eq!(ledger[0][0], "0");
}

#[test]
fn sqlite_an_existing_table_without_a_contract_column_is_retried_not_rejected() {
    // Not a file's fault: every file fails alike until someone adds the column (a required
    // one: an optional one would be added by the load). The files are FAILED and retried with
    // backoff, DEAD after max_attempts, with the ALTER TABLE to run.
    let lake = Lake::new("max_attempts = 2\n");
    let c = rusqlite::Connection::open(lake.warehouse()).unwrap();
    c.execute_batch("CREATE TABLE fact_sales (id INTEGER PRIMARY KEY, qty INTEGER, price TEXT)").unwrap();
    drop(c);
    lake.drop_file("sales/a.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
    lake.drop_file("sales/b.csv", &format!("{HEADER}2,2026-11-20T10:00:00Z,2,1.00\n"));
    let (report, _) = run(&lake, &[]);
    for name in ["a.csv", "b.csv"] {
        let f = file(&report, name);
        assert_eq!((f["state"].as_str(), f["attempts"].as_u64()), (Some("DEAD"), Some(2)), "{f}");
        let reason = f["reason"].as_str().unwrap();
        assert!(reason.contains("ADD COLUMN \"ts\""), "{reason}");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::postgres_database;

    async fn client(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("test PostgreSQL");
        tokio::spawn(conn);
        client
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_values_it_cannot_store_are_row_errors_and_the_batch_loads() {
        let url = postgres_database("poison_values").await;
        let env = [("GLUELESS__WAREHOUSE__URL", url.as_str())];
        let lake = readings_lake("");
        let h = READINGS_HEADER;
        lake.drop_file("readings/a.csv", &format!("{h}1,1.5,0.5,2026-01-01,a\n"));
        lake.drop_file(
            "readings/b.csv",
            &format!(
                "{h}2,NaN,0.5,2026-01-02,NaN is a double precision\n3,3.5,0.5,2026-01-03,nul \0 inside\n4,4.5,0.5,-5000-01-01,year -5000\n5,5.5,0.5,-4713-11-24,first day\n"
            ),
        );
        lake.drop_file("readings/c.csv", &format!("{h}6,6.5,0.5,2026-01-06,c\n"));
        let (report, stderr) = run(&lake, &env);
        assert_loaded(&report, "a.csv", 1, 1, 0);
        assert_loaded(&report, "b.csv", 4, 2, 2);
        assert_loaded(&report, "c.csv", 1, 1, 0);
        let q = quarantined(file(&report, "b.csv"));
        let rules: Vec<(u64, &str, &str, &str)> =
            q.iter().map(|(l, r, c, f, _)| (*l, r.as_str(), c.as_str(), f.as_str())).collect();
        assert_eq!(
            rules,
            vec![(3, "constraint-error", "warehouse", "note"), (4, "constraint-error", "warehouse", "day")],
            "{stderr}"
        );
        assert!(q[0].4.contains("PostgreSQL") && q[0].4.contains("NUL"), "{}", q[0].4);
        assert!(q[1].4.contains("4714-11-24 BC"), "{}", q[1].4);
        let pg = client(&url).await;
        let rows = pg
            .query("SELECT id, value::text, day::text FROM fact_readings ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| format!("{}|{}|{}", r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, String>(2)))
            .collect::<Vec<_>>();
        assert_eq!(rows, ["1|1.5|2026-01-01", "2|NaN|2026-01-02", "5|5.5|4714-11-24 BC", "6|6.5|2026-01-06"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_check_constraint_refusing_one_file_rejects_it_and_loads_the_rest() {
        let url = postgres_database("poison_check").await;
        let env = [("GLUELESS__WAREHOUSE__URL", url.as_str())];
        let lake = Lake::new("");
        lake.drop_file("sales/seed.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
        lake.run_once(&env);
        let pg = client(&url).await;
        pg.batch_execute("ALTER TABLE fact_sales ADD CONSTRAINT qty_not_13 CHECK (qty <> 13)").await.unwrap();
        let (report, stderr) = batch_with_one_refused_file(&lake, &env);
        assert_isolated(&report, &stderr, "qty_not_13");
        assert!(file(&report, "f3.csv")["reason"].as_str().unwrap().contains("23514"), "carries the SQLSTATE");
        let row = pg.query_one("SELECT count(*), count(*) FILTER (WHERE id BETWEEN 30 AND 39) FROM fact_sales", &[]);
        let row = row.await.unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (10, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_held_lock_is_transient_and_retried() {
        let url = postgres_database("poison_lock").await;
        // Lock waits give up after 200 ms, so that a held lock shows as an error (55P03).
        let waiting = format!("{url}?options=-clock_timeout%3D200ms");
        let env = [("GLUELESS__WAREHOUSE__URL", waiting.as_str())];
        let lake = Lake::new("max_attempts = 2\n");
        lake.drop_file("sales/seed.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
        lake.run_once(&env);
        let mut holder = client(&url).await;
        let tx = holder.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE fact_sales IN ACCESS EXCLUSIVE MODE").await.unwrap();
        lake.drop_file("sales/a.csv", &format!("{HEADER}2,2026-11-20T10:00:00Z,2,1.00\n"));
        lake.drop_file("sales/b.csv", &format!("{HEADER}3,2026-11-20T10:00:00Z,2,1.00\n"));
        let (report, stderr) = run(&lake, &env);
        for name in ["a.csv", "b.csv"] {
            let f = file(&report, name);
            assert_eq!((f["state"].as_str(), f["attempts"].as_u64()), (Some("DEAD"), Some(2)), "retried: {f}");
            assert!(f["reason"].as_str().unwrap().contains("55P03"), "{f}");
        }
        assert!(!stderr.contains("refused rows"), "a transient error is no refusal: {stderr}");
        tx.rollback().await.unwrap();
        let r = lake.glueless(&["replay", "--state", "DEAD", "--format", "json"], &[]);
        assert_eq!(r.json()["replayed"].as_array().unwrap().len(), 2, "{}", r.stderr);
        let (again, _) = run(&lake, &env);
        assert_eq!(again["counts"]["LOADED"], 2, "{again}");
    }
}

/// Redshift through its Data API (the test server on PostgreSQL): a constraint that one file of
/// a batch breaks is a refusal of rows (what makes the pipeline split the batch, as above), not
/// a retryable error; loaded alone, the other files go through and the culprit is refused.
#[cfg(all(feature = "redshift", feature = "postgres"))]
mod redshift {
    use crate::acceptance::warehouse::Staging;
    use glueless_jobs::adapters::RedshiftDataWarehouse;
    use glueless_jobs::ports::*;

    fn row(id: i64, qty: i64) -> String {
        format!("{id},n{id},{qty},0.5,true,2026-01-02,08:00:00,2026-11-20T10:00:00Z,2026,1.10")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redshift_a_constraint_one_file_breaks_is_a_refusal_of_rows() {
        let bucket = crate::support::make_bucket("poison");
        let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
        let (w, _server, pg_url) = crate::redshift::warehouse::fresh("poison_redshift").await;
        w.ensure_table(&st.spec).await.unwrap();
        let pg = crate::redshift::warehouse::pg(&pg_url).await;
        pg.batch_execute("ALTER TABLE fact_everything ADD CONSTRAINT qty_small CHECK (qty < 100)").await.unwrap();
        let files = [
            st.stage("a", "v1", &[&row(1, 1)]).await,
            st.stage("b", "v1", &[&row(2, 1), &row(3, 1000)]).await,
            st.stage("c", "v1", &[&row(4, 1)]).await,
        ];
        async fn load_with(
            w: &RedshiftDataWarehouse,
            spec: &TableSpec,
            files: &[StagedFile],
            id: &str,
        ) -> Result<LoadResult, WarehouseError> {
            w.load(&LoadRequest { table: spec, load_id: id, files, now: 1_700_000_000_000 }).await
        }
        let err = load_with(&w, &st.spec, &files, "L1").await.expect_err("the CHECK refuses the batch");
        assert!(err.is_refusal() && !err.is_retryable(), "{err:?}");
        assert!(err.to_string().contains("qty_small"), "{err}");
        for (f, id) in [(&files[0], "L2"), (&files[2], "L3")] {
            assert_eq!(
                load_with(&w, &st.spec, std::slice::from_ref(f), id).await.unwrap().files,
                vec![FileLoad::Loaded { rows: 1 }]
            );
        }
        let err = load_with(&w, &st.spec, std::slice::from_ref(&files[1]), "L4").await.expect_err("the culprit alone");
        assert!(err.is_refusal(), "{err:?}");
        assert_eq!(w.ledger(None).await.unwrap().len(), 2);
        assert_eq!(WarehouseLimits::redshift(), w.limits(), "validation gets Redshift's limits");
    }
}
