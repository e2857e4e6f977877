//! A failure inside the warehouse transaction after the fact rows were written: a trigger on
//! the ledger (`glueless_loads`) that raises when the load writes its ledger row, which every
//! adapter does after the upsert, in the same transaction. The fact table must come out of the
//! failed load unchanged, and once the trigger is gone the file loads exactly once.
//!
//! A trigger's `RAISE` is a refusal of rows to the pipeline (SQLite's constraint error, SQLSTATE
//! P0001 on PostgreSQL): the file ends REJECTED with the trigger's message rather than FAILED
//! and retried (a retry could not succeed before someone changes the warehouse), and
//! `glueless replay` takes it up again once the trigger is dropped.

use crate::pipeline::{HEADER, Lake, count};
use serde_json::Value;

/// The first file: loaded before the trigger exists.
fn seed() -> String {
    format!("{HEADER}1,2026-11-20T10:00:00Z,1,1.00\n2,2026-11-20T10:00:00Z,2,2.00\n3,2026-11-20T10:00:00Z,3,3.00\n")
}

/// The second file: changes key 2 (newer version) and adds key 4, so a half-applied load would
/// show in the fact table.
fn next() -> String {
    format!("{HEADER}2,2026-11-21T10:00:00Z,9,9.99\n4,2026-11-21T10:00:00Z,4,4.00\n")
}

const BEFORE: [&str; 3] = ["1|1|1.00", "2|2|2.00", "3|3|3.00"];
const AFTER: [&str; 4] = ["1|1|1.00", "2|9|9.99", "3|3|3.00", "4|4|4.00"];
const REFUSAL: &str = "ledger refused by the atomicity test";

/// The report's last entry for the file whose URL ends with `name`.
fn last<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .rev()
        .find(|f| f["url"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} in {report}"))
}

/// Seeds, breaks the ledger with `add_trigger`, checks the failed load changed nothing (with
/// `facts` and `ledger_rows`), drops the trigger, replays and checks the exactly-once load.
fn refused_then_replayed(
    lake: &Lake,
    env: &[(&str, &str)],
    add_trigger: &dyn Fn(),
    drop_trigger: &dyn Fn(),
    facts: &dyn Fn() -> Vec<String>,
    ledger_rows: &dyn Fn() -> Vec<String>,
) {
    lake.drop_file("sales/seed.csv", &seed());
    assert_eq!(lake.run_once(env)["counts"]["LOADED"], 1);
    assert_eq!(facts(), BEFORE);

    add_trigger();
    lake.drop_file("sales/next.csv", &next());
    let report = lake.run_once(env);
    let f = last(&report, "next.csv");
    assert_eq!(f["state"], "REJECTED", "a trigger's RAISE is a refusal by the warehouse: {report}");
    assert!(f["reason"].as_str().unwrap().contains(REFUSAL), "{f}");
    assert_eq!(facts(), BEFORE, "the upsert ran before the ledger row failed, and was rolled back with it");
    assert_eq!(ledger_rows(), ["seed.csv"]);

    drop_trigger();
    let r = lake.glueless(&["replay", "--state", "REJECTED", "--format", "json"], &[]);
    assert_eq!(r.json()["replayed"].as_array().map(Vec::len), Some(1), "{}", r.stderr);
    let again = lake.run_once(env);
    assert_eq!(last(&again, "next.csv")["state"], "LOADED", "{again}");
    assert_eq!(facts(), AFTER);
    assert_eq!(ledger_rows(), ["next.csv", "seed.csv"], "one ledger row per file");
    let st = lake.status();
    assert_eq!((count(&st, "LOADED"), count(&st, "RUNNING"), count(&st, "REJECTED")), (2, 0, 0), "{st}");
}

/// The file names of the ledger rows, sorted.
fn names(urls: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = urls.into_iter().map(|u| u.rsplit('/').next().unwrap().to_string()).collect();
    v.sort();
    v
}

#[test]
fn sqlite_a_ledger_row_that_fails_rolls_back_the_upsert_and_the_replay_loads_once() {
    let lake = Lake::new("");
    let db = lake.warehouse();
    let sql = |s: &str| rusqlite::Connection::open(&db).unwrap().execute_batch(s).unwrap();
    refused_then_replayed(
        &lake,
        &[],
        &|| {
            sql(&format!(
                "CREATE TRIGGER no_ledger BEFORE INSERT ON glueless_loads BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
            ))
        },
        &|| sql("DROP TRIGGER no_ledger"),
        &|| lake.facts(),
        &|| names(lake.query("SELECT object_url FROM glueless_loads").into_iter().map(|r| r[0].clone())),
    );
}

/// Two files in one load, the ledger refusing only the second: the whole transaction rolls
/// back (the first file's rows too), then the pipeline loads the first alone and rejects the
/// second: the first file's rows are in once, none of the second's.
#[test]
fn sqlite_a_batch_whose_second_ledger_row_fails_loads_the_first_file_once_and_none_of_the_second() {
    let lake = Lake::new("");
    lake.drop_file("sales/seed.csv", &seed());
    assert_eq!(lake.run_once(&[])["counts"]["LOADED"], 1);
    let c = rusqlite::Connection::open(lake.warehouse()).unwrap();
    c.execute_batch(&format!(
        "CREATE TRIGGER no_ledger_b BEFORE INSERT ON glueless_loads WHEN NEW.object_url LIKE '%/b.csv' \
         BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
    ))
    .unwrap();
    drop(c);
    lake.drop_file("sales/a.csv", &format!("{HEADER}5,2026-11-21T10:00:00Z,5,5.00\n"));
    lake.drop_file("sales/b.csv", &next());
    let r = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert_eq!(r.code, 3, "a file rejected: {}", r.stderr);
    assert!(r.stderr.contains("refused rows of a batch of 2 files"), "the two went as one load: {}", r.stderr);
    let report = r.json();
    assert_eq!(last(&report, "a.csv")["state"], "LOADED", "{report}");
    assert_eq!(last(&report, "b.csv")["state"], "REJECTED", "{report}");
    assert_eq!(lake.facts(), ["1|1|1.00", "2|2|2.00", "3|3|3.00", "5|5|5.00"]);
    let ledger = names(lake.query("SELECT object_url FROM glueless_loads").into_iter().map(|r| r[0].clone()));
    assert_eq!(ledger, ["a.csv", "seed.csv"]);
}

#[cfg(feature = "postgres")]
pub mod postgres {
    use super::*;

    /// Runs `f` on a fresh connection to `url` (the closures of the test are synchronous: the
    /// binary does the loading).
    pub fn on<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("test PostgreSQL");
            tokio::spawn(conn);
            f(&client).await
        })
    }

    fn sql(url: &str, s: &str) {
        on(url, async |c| c.batch_execute(s).await.unwrap())
    }

    pub fn facts(url: &str) -> Vec<String> {
        on(url, async |c| fact_rows(c).await.unwrap())
    }

    /// The fact table as `id|qty|price`, ordered by id.
    pub async fn fact_rows(c: &tokio_postgres::Client) -> Result<Vec<String>, tokio_postgres::Error> {
        Ok(c.query("SELECT id, qty, price::text FROM fact_sales ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| format!("{}|{}|{}", r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, String>(2)))
            .collect())
    }

    pub fn ledger(url: &str) -> Vec<String> {
        on(url, async |c| ledger_names(c).await.unwrap())
    }

    /// The file names of the ledger rows, sorted.
    pub async fn ledger_names(c: &tokio_postgres::Client) -> Result<Vec<String>, tokio_postgres::Error> {
        let rows = c.query("SELECT object_url FROM glueless_loads", &[]).await?;
        Ok(names(rows.iter().map(|r| r.get::<_, String>(0))))
    }

    #[test]
    fn postgres_a_ledger_row_that_fails_rolls_back_the_merge_and_the_replay_loads_once() {
        let url = tokio::runtime::Runtime::new().unwrap().block_on(crate::support::postgres_database("atomic_pg"));
        let lake = Lake::new("");
        refused_then_replayed(
            &lake,
            &[("GLUELESS__WAREHOUSE__URL", url.as_str())],
            &|| {
                sql(
                    &url,
                    &format!(
                        "CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS \
                         $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$;
                         CREATE TRIGGER no_ledger BEFORE INSERT ON glueless_loads \
                         FOR EACH ROW EXECUTE FUNCTION refuse_ledger();"
                    ),
                )
            },
            &|| sql(&url, "DROP TRIGGER no_ledger ON glueless_loads"),
            &|| facts(&url),
            &|| ledger(&url),
        );
    }
}

/// The Redshift adapter through the Data API test server (which runs each batch in one
/// PostgreSQL transaction, as Redshift runs `BatchExecuteStatement`): its commit batch writes
/// the ledger rows after the `MERGE`. Driven through the adapter, as the Redshift tests are.
#[cfg(all(feature = "redshift", feature = "postgres"))]
mod redshift {
    use super::REFUSAL;
    use crate::acceptance::warehouse::Staging;
    use glueless_jobs::ports::*;

    fn row(id: i64, qty: i64, hour: u32) -> String {
        format!("{id},n{id},{qty},0.5,true,2026-01-02,08:00:00,2026-11-20T{hour:02}:00:00Z,2026,1.10")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redshift_a_ledger_row_that_fails_rolls_back_the_merge_and_the_retry_loads_once() {
        let bucket = crate::support::make_bucket("atomic");
        let st = Staging::new(Some(&format!("s3://{bucket}/staging")));
        let (w, _server, pg_url) = crate::redshift::warehouse::fresh("atomic_redshift").await;
        let pg = crate::redshift::warehouse::pg(&pg_url).await;
        let load = async |id: &str, f: &StagedFile| {
            w.load(&LoadRequest {
                table: &st.spec,
                load_id: id,
                files: std::slice::from_ref(f),
                now: 1_700_000_000_000,
            })
            .await
        };
        w.ensure_table(&st.spec).await.unwrap();
        let seed = st.stage("seed", "v1", &[&row(1, 1, 1), &row(2, 2, 1)]).await;
        assert_eq!(load("L1", &seed).await.unwrap().files, vec![FileLoad::Loaded { rows: 2 }]);
        let before = w.fact_rows(&st.spec).await.unwrap();
        assert_eq!(before.len(), 2);

        pg.batch_execute(&format!(
            "CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$;
             CREATE TRIGGER no_ledger BEFORE INSERT ON glueless_loads FOR EACH ROW EXECUTE FUNCTION refuse_ledger();"
        ))
        .await
        .unwrap();
        // Key 2 changes (a newer version), key 3 is new.
        let next = st.stage("next", "v1", &[&row(2, 9, 2), &row(3, 3, 2)]).await;
        let err = load("L2", &next).await.expect_err("the ledger trigger fails the commit batch");
        assert_eq!(w.fact_rows(&st.spec).await.unwrap(), before, "the MERGE was rolled back with the ledger row");
        assert_eq!(w.ledger(None).await.unwrap().len(), 1);
        // Redshift has no triggers: the test server's PostgreSQL stands in for a failure of the
        // ledger statement. Its message is none Redshift's classifier knows, so the load fails
        // as one that needs someone to act (not retried; the pipeline would hold the file until
        // a replay). The failed statement is the ledger's, the last one, after the MERGE.
        assert!(!err.is_retryable(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(REFUSAL), "{text}");
        assert!(text.contains("statement 7 of 7 (INSERT INTO \"glueless_loads\""), "the ledger row failed: {text}");

        pg.batch_execute("DROP TRIGGER no_ledger ON glueless_loads").await.unwrap();
        assert_eq!(load("L3", &next).await.unwrap().files, vec![FileLoad::Loaded { rows: 2 }]);
        assert_eq!(
            load("L4", &next).await.unwrap().files,
            vec![FileLoad::AlreadyLoaded { load_id: "L3".into() }],
            "loaded exactly once"
        );
        let after = w.fact_rows(&st.spec).await.unwrap();
        assert_eq!(after.len(), 3);
        assert_eq!(after[0], before[0], "key 1 untouched");
        assert_ne!(after[1], before[1], "key 2 took the newer version");
        let ledger = w.ledger(None).await.unwrap();
        assert_eq!(ledger.len(), 2, "one ledger row per file: {ledger:?}");
        assert_eq!(ledger.iter().filter(|r| r.load_id == "L3").count(), 1, "{ledger:?}");
    }
}
