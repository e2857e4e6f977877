//! Contracts evolve the warehouse (issue 15, parts 2 and 3): a contract that gains an
//! optional field adds the column on the next load (older rows read NULL, one row in
//! `glueless_schema_changes`, exactly-once unchanged); a change that would lose or rewrite
//! data is refused before any load, with its message and the SQL an operator could run; and
//! `glueless plan` shows each of these without changing anything.
//!
//! The same checks run, through the port, on SQLite, on PostgreSQL and on the Redshift adapter
//! (its Data API test server on PostgreSQL, staging on the S3 emulator); the pipeline checks
//! run the real binary on SQLite. The test contract is the acceptance suite's, whose last field
//! `unit "price" (EUR)` (optional, a name that needs quoting) is the new one.

use crate::acceptance::warehouse::{CONTRACT, HEADER, Staging};
use crate::pipeline::{HEADER as SALES_HEADER, Lake};
use glueless_jobs::adapters::SqliteWarehouse;
use glueless_jobs::ports::load_plan::{ChangeKind, TableChange};
use glueless_jobs::ports::warehouse::Column;
use glueless_jobs::ports::*;
use serde_json::{Value, json};
use std::future::Future;
use std::path::PathBuf;

const PRICE: &str = r#"unit "price" (EUR)"#;
const T0: Millis = 1_700_000_000_000;

/// The test contract before it had its last field.
fn v1_contract() -> String {
    let field = "[[schema.fields]]\nname = 'unit \"price\" (EUR)'\ntype = \"number\"\ndecimal = [20, 2]\n\n";
    assert!(CONTRACT.contains(field), "the acceptance contract ends with the price field");
    CONTRACT.replace(field, "")
}

fn v1_header() -> &'static str {
    HEADER.rsplit_once(",\"unit").expect("the header ends with the price").0
}

/// Staging for the contract before (v1) and after (v2) it gained the price.
fn stagings(root: Option<&str>) -> (Staging, Staging) {
    (Staging::with_contract(root, &v1_contract(), v1_header()), Staging::new(root))
}

/// A row of v1 (`name` empty is NULL), and of v2 with a price.
fn v1_row(id: i64, name: &str, hour: u32) -> String {
    format!("{id},{name},1,0.5,true,2026-01-02,08:00:00,2026-11-20T{hour:02}:00:00Z,2026")
}

fn v2_row(id: i64, name: &str, hour: u32, price: &str) -> String {
    format!("{},{price}", v1_row(id, name, hour))
}

/// Where a warehouse keeps its tables, to read the schema ledger behind the port's back.
enum Db {
    Sqlite(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Db {
    /// The rows of `glueless_schema_changes`: dataset, table, DDL, fingerprint (none when the
    /// ledger does not exist).
    async fn schema_changes(&self) -> Vec<Vec<String>> {
        match self {
            Db::Sqlite(path) => {
                let exists = crate::pipeline::query(
                    path,
                    "SELECT count(*) FROM sqlite_master WHERE name = 'glueless_schema_changes'",
                );
                if exists[0][0] == "0" {
                    return vec![];
                }
                crate::pipeline::query(
                    path,
                    "SELECT dataset, table_name, ddl, fingerprint FROM glueless_schema_changes ORDER BY rowid",
                )
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(url) => {
                let c = crate::postgres::client(url).await;
                let exists: bool =
                    c.query_one("SELECT to_regclass('glueless_schema_changes') IS NOT NULL", &[]).await.unwrap().get(0);
                if !exists {
                    return vec![];
                }
                c.query(
                    "SELECT dataset, table_name, ddl, fingerprint FROM glueless_schema_changes ORDER BY changed_at",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (0..4).map(|i| r.get::<_, String>(i)).collect())
                .collect()
            }
        }
    }
}

async fn load<W: Warehouse>(w: &W, spec: &TableSpec, load_id: &str, files: &[StagedFile]) -> LoadResult {
    w.load(&LoadRequest { table: spec, load_id, files, now: T0 })
        .await
        .unwrap_or_else(|e| panic!("load {load_id} into {}: {e}", w.describe()))
}

/// `(id, name, price)` of every fact row, read with `spec`.
async fn id_name_price<W: Warehouse>(w: &W, spec: &TableSpec) -> Vec<(Value, Value, Value)> {
    let price = spec.columns.iter().position(|c| c.name == PRICE);
    w.fact_rows(spec)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), price.map_or(Value::Null, |p| r[p].clone())))
        .collect()
}

/// Load v1, gain the optional price, plan, load v2, re-deliver the v1 file.
async fn a_new_optional_field_becomes_a_column<W: Warehouse>(w: &W, db: &Db, v1: &Staging, v2: &Staging) {
    assert!(
        matches!(w.plan_table(&v1.spec).await.unwrap(), TableChange::Create { ddl } if ddl.contains("CREATE TABLE"))
    );
    w.ensure_table(&v1.spec).await.unwrap();
    let f1 = v1.stage("orders", "v1", &[&v1_row(1, "one", 1), &v1_row(2, "two", 1)]).await;
    assert_eq!(load(w, &v1.spec, "L1", std::slice::from_ref(&f1)).await.rows_merged, 2);
    assert_eq!(w.plan_table(&v1.spec).await.unwrap(), TableChange::Nothing);

    // The plan names the column and its DDL, and changes nothing: planned twice, the same.
    let planned = w.plan_table(&v2.spec).await.unwrap();
    let TableChange::AddColumns { columns, ddl } = &planned else { panic!("add the price, got {planned:?}") };
    assert_eq!(columns, &[PRICE]);
    assert_eq!(ddl.len(), 1);
    assert!(ddl[0].contains(r#"ADD COLUMN "unit ""price"" (EUR)""#), "quoted whole: {}", ddl[0]);
    assert_eq!(w.plan_table(&v2.spec).await.unwrap(), planned, "plan changed the table");
    assert_eq!(db.schema_changes().await, Vec::<Vec<String>>::new(), "plan wrote no ledger");
    let v1_rows = vec![(json!(1), json!("one"), Value::Null), (json!(2), json!("two"), Value::Null)];
    assert_eq!(id_name_price(w, &v1.spec).await, v1_rows);

    // The load of v2 adds it, once, recorded once.
    w.ensure_table(&v2.spec).await.unwrap();
    w.ensure_table(&v2.spec).await.unwrap();
    let changes = db.schema_changes().await;
    assert_eq!(changes.len(), 1, "one schema change: {changes:?}");
    assert_eq!(changes[0][..3], ["everything", "fact_everything", ddl[0].as_str()]);
    assert!(changes[0][3].starts_with("xxh3:"), "{changes:?}");
    assert_eq!(w.plan_table(&v2.spec).await.unwrap(), TableChange::Nothing);
    let f2 = v2.stage("orders", "v2", &[&v2_row(1, "one again", 2, "7.25"), &v2_row(3, "three", 2, "0.10")]).await;
    let r = load(w, &v2.spec, "L2", std::slice::from_ref(&f2)).await;
    assert_eq!((r.files, r.rows_merged), (vec![FileLoad::Loaded { rows: 2 }], 2));
    let v2_rows = vec![
        (json!(1), json!("one again"), json!("7.25")),
        (json!(2), json!("two"), Value::Null),
        (json!(3), json!("three"), json!("0.10")),
    ];
    assert_eq!(id_name_price(w, &v2.spec).await, v2_rows, "older rows read NULL in the new column");

    // Exactly once unchanged: the v1 file delivered again loads nothing.
    let again = load(w, &v2.spec, "L3", &[f1]).await;
    assert_eq!(again.files, [FileLoad::AlreadyLoaded { load_id: "L1".into() }]);
    assert_eq!(id_name_price(w, &v2.spec).await, v2_rows);
    assert_eq!(w.ledger(None).await.unwrap().len(), 2);
    assert_eq!(db.schema_changes().await.len(), 1);
}

/// `spec` without the column `name` (indices of the key and version moved).
fn without(spec: &TableSpec, name: &str) -> TableSpec {
    let i = spec.columns.iter().position(|c| c.name == name).expect("the column");
    let shift = |k: usize| if k > i { k - 1 } else { k };
    let mut out = spec.clone();
    out.columns.remove(i);
    out.key = spec.key.iter().map(|&k| shift(k)).collect();
    out.version = spec.version.map(shift);
    out
}

fn with(spec: &TableSpec, f: impl FnOnce(&mut TableSpec)) -> TableSpec {
    let mut out = spec.clone();
    f(&mut out);
    out
}

fn column<'a>(spec: &'a mut TableSpec, name: &str) -> &'a mut Column {
    spec.columns.iter_mut().find(|c| c.name == name).expect("the column")
}

/// Each lossy change is refused by plan and by ensure_table alike, with its message and SQL,
/// and nothing is loaded, altered or recorded. `keys`: the warehouse keeps unique keys.
async fn lossy_changes_are_refused<W: Warehouse>(w: &W, db: &Db, v1: &Staging, v2: &Staging, keys: bool) {
    w.ensure_table(&v1.spec).await.unwrap();
    let f1 = v1.stage("orders", "v1", &[&v1_row(1, "one", 1), &v1_row(2, "", 1)]).await;
    load(w, &v1.spec, "L1", &[f1]).await;
    let (rows, ledger) = (w.fact_rows(&v1.spec).await.unwrap(), w.ledger(None).await.unwrap());
    let mut cases = vec![
        (ChangeKind::DroppedColumn, without(&v1.spec, "qty"), "DROP COLUMN \"qty\""),
        (ChangeKind::TypeChanged, with(&v1.spec, |s| column(s, "qty").ty = SqlType::Text), "CAST(\"qty\" AS "),
        (
            ChangeKind::NewRequiredColumn,
            with(&v2.spec, |s| column(s, PRICE).nullable = false),
            r#"ADD COLUMN "unit ""price"" (EUR)""#,
        ),
        (
            ChangeKind::RequiredWithNulls,
            with(&v1.spec, |s| column(s, "name").nullable = false),
            "WHERE \"name\" IS NULL",
        ),
        // A refused change keeps the new optional price from being added too.
        (ChangeKind::TypeChanged, with(&v2.spec, |s| column(s, "qty").ty = SqlType::Text), "CAST(\"qty\" AS "),
    ];
    if keys {
        cases.push((ChangeKind::KeyChanged, with(&v1.spec, |s| s.key = vec![0, 2]), "CREATE UNIQUE INDEX"));
    }
    for (kind, spec, sql) in cases {
        let planned = w.plan_table(&spec).await.unwrap();
        let TableChange::Refuse { refusals } = &planned else { panic!("{kind:?} is refused, got {planned:?}") };
        assert_eq!(refusals.iter().map(|r| r.change).collect::<Vec<_>>(), [kind], "{refusals:?}");
        assert!(refusals[0].sql.contains(sql), "{kind:?}: {}", refusals[0].sql);
        match w.ensure_table(&spec).await {
            Err(e @ WarehouseError::Table { .. }) => {
                let text = e.to_string();
                assert!(!e.is_retryable(), "{e}");
                assert!(text.contains(&refusals[0].message) && text.contains(&refusals[0].sql), "{kind:?}: {text}");
                assert!(text.contains("nothing was loaded or altered"), "{text}");
            }
            other => panic!("ensure_table refuses {kind:?}, got {other:?}"),
        }
        assert_eq!(w.fact_rows(&v1.spec).await.unwrap(), rows, "{kind:?}: the table is as it was");
        assert_eq!(w.ledger(None).await.unwrap(), ledger);
        assert_eq!(db.schema_changes().await, Vec::<Vec<String>>::new(), "{kind:?}: nothing recorded");
    }
    assert!(matches!(w.plan_table(&v2.spec).await.unwrap(), TableChange::AddColumns { .. }), "the price was not added");

    // A field made optional whose column is NOT NULL.
    let strict = with(&v1.spec, |s| {
        s.table = "fact_strict".into();
        column(s, "weight").nullable = false;
    });
    w.ensure_table(&strict).await.unwrap();
    let loose = with(&strict, |s| column(s, "weight").nullable = true);
    let TableChange::Refuse { refusals } = w.plan_table(&loose).await.unwrap() else {
        panic!("made optional is refused")
    };
    assert_eq!(refusals[0].change, ChangeKind::MadeOptional);
    assert!(w.ensure_table(&loose).await.unwrap_err().to_string().contains("\"weight\""));
}

/// Two loaders (two connections) adding the same column at once: both succeed, it is added
/// once and recorded once. The v1 table exists, and `held` keeps it locked for a while by
/// another session, so that both loaders have read the table before either can alter it.
async fn two_loaders_add_a_column_once<W: Warehouse>(
    a: &W,
    b: &W,
    db: &Db,
    v2: &Staging,
    held: impl Future<Output = ()>,
) {
    let (x, y, ()) = tokio::join!(a.ensure_table(&v2.spec), b.ensure_table(&v2.spec), held);
    x.unwrap();
    y.unwrap();
    assert_eq!(db.schema_changes().await.len(), 1, "added once");
    assert_eq!(a.plan_table(&v2.spec).await.unwrap(), TableChange::Nothing);
    assert_eq!(b.plan_table(&v2.spec).await.unwrap(), TableChange::Nothing);
}

/// How long another session holds the table in [`two_loaders_add_a_column_once`]: only so that
/// the two loaders meet; the outcome does not depend on it.
const HOLD: std::time::Duration = std::time::Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// SQLite

fn sqlite(dir: &tempfile::TempDir, name: &str) -> (SqliteWarehouse, Db) {
    let path = dir.path().join(format!("{name}.db"));
    (SqliteWarehouse::open(&path).unwrap(), Db::Sqlite(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_new_optional_field_becomes_a_column() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = stagings(None);
    let (w, db) = sqlite(&dir, "add");
    a_new_optional_field_becomes_a_column(&w, &db, &v1, &v2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lossy_changes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = stagings(None);
    let (w, db) = sqlite(&dir, "refuse");
    lossy_changes_are_refused(&w, &db, &v1, &v2, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_loaders_add_a_column_once() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = stagings(None);
    let (a, db) = sqlite(&dir, "two");
    let (b, _) = sqlite(&dir, "two");
    a.ensure_table(&v1.spec).await.unwrap();
    let holder = rusqlite::Connection::open(dir.path().join("two.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held = async move {
        tokio::time::sleep(HOLD).await;
        holder.execute_batch("COMMIT").unwrap();
    };
    two_loaders_add_a_column_once(&a, &b, &db, &v2, held).await;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::postgres::connect;
    use crate::support::postgres_database;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_new_optional_field_becomes_a_column() {
        let url = postgres_database("evolve_add").await;
        let (v1, v2) = stagings(None);
        a_new_optional_field_becomes_a_column(&connect(&url).await, &Db::Postgres(url), &v1, &v2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_lossy_changes_are_refused() {
        let url = postgres_database("evolve_refuse").await;
        let (v1, v2) = stagings(None);
        lossy_changes_are_refused(&connect(&url).await, &Db::Postgres(url), &v1, &v2, true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_two_loaders_add_a_column_once() {
        let url = postgres_database("evolve_two").await;
        let (v1, v2) = stagings(None);
        let (a, b) = (connect(&url).await, connect(&url).await);
        a.ensure_table(&v1.spec).await.unwrap();
        let mut holder = crate::postgres::client(&url).await;
        let tx = holder.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE fact_everything IN ACCESS SHARE MODE").await.unwrap();
        let held = async move {
            tokio::time::sleep(HOLD).await;
            tx.commit().await.unwrap();
        };
        two_loaders_add_a_column_once(&a, &b, &Db::Postgres(url.clone()), &v2, held).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Redshift: the adapter against the Data API test server, and the golden SQL.

mod redshift {
    use super::*;
    use glueless_jobs::adapters::redshift::sql as redshift_sql;
    use glueless_jobs::ports::load_plan::LoadPlan;

    #[cfg(all(feature = "redshift", feature = "postgres"))]
    fn s3_stagings(test: &str) -> (Staging, Staging) {
        let bucket = crate::support::make_bucket(test);
        stagings(Some(&format!("s3://{bucket}/staging")))
    }

    #[cfg(all(feature = "redshift", feature = "postgres"))]
    use crate::redshift::warehouse::fresh;

    #[cfg(all(feature = "redshift", feature = "postgres"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redshift_a_new_optional_field_becomes_a_column() {
        let (v1, v2) = s3_stagings("evolve-add");
        let (w, _server, pg) = fresh("evolve_redshift_add").await;
        a_new_optional_field_becomes_a_column(&w, &Db::Postgres(pg), &v1, &v2).await;
    }

    #[cfg(all(feature = "redshift", feature = "postgres"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redshift_lossy_changes_are_refused() {
        let (v1, v2) = s3_stagings("evolve-refuse");
        let (w, _server, pg) = fresh("evolve_redshift_refuse").await;
        lossy_changes_are_refused(&w, &Db::Postgres(pg), &v1, &v2, false).await;
    }

    /// The retry of a batch that met another loader's change: both loaders read the table
    /// before either batch runs (another session holds the table), one batch adds the column,
    /// the other fails and, deciding again, finds nothing to do.
    #[cfg(all(feature = "redshift", feature = "postgres"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redshift_two_loaders_add_a_column_once() {
        let (v1, v2) = stagings(None);
        let (a, server, pg) = fresh("evolve_redshift_two").await;
        let b = crate::redshift::warehouse::warehouse_at(&server, crate::redshift::warehouse::CLUSTER_URL);
        a.ensure_table(&v1.spec).await.unwrap();
        let mut holder = crate::postgres::client(&pg).await;
        let tx = holder.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE fact_everything IN ACCESS SHARE MODE").await.unwrap();
        let held = async move {
            tokio::time::sleep(HOLD).await;
            tx.commit().await.unwrap();
        };
        two_loaders_add_a_column_once(&a, &b, &Db::Postgres(pg.clone()), &v2, held).await;
    }

    /// The batch that adds a column: the ledger, the lock every load's commit takes, then per
    /// column its ALTER and its ledger row, all values literals.
    #[test]
    fn redshift_golden_evolution() {
        let (_, v2) = stagings(None);
        let mut spec = v2.spec.clone();
        spec.table = "sales.fact_everything".into();
        let plan = LoadPlan::new(&spec, redshift_sql::Redshift).unwrap();
        let add = TableChange::AddColumns {
            columns: vec![PRICE.into()],
            ddl: vec![plan.add_column(spec.columns.last().unwrap())],
        };
        let mut sql = String::new();
        for (what, change) in [("create", plan.evolution(None)), ("add a column", add)] {
            sql.push_str(&format!("-- ensure_table: {what} (one batch, one transaction)\n\n"));
            for s in redshift_sql::ensure_statements(&plan, &change, "xxh3:0123456789abcdef", T0) {
                sql.push_str(&format!("{s};\n\n"));
            }
        }
        let add_at = sql.find("ALTER TABLE").expect("an ALTER");
        assert!(sql.find("LOCK TABLE \"glueless_loads\"").is_some_and(|lock| lock < add_at), "locked first: {sql}");
        assert!(
            sql.contains(r#"'ALTER TABLE "sales"."fact_everything" ADD COLUMN "unit ""price"" (EUR)" DECIMAL(20,2);'"#)
        );
        crate::support::golden("redshift", "evolution", &sql);
    }
}

// ---------------------------------------------------------------------------------------------
// The pipeline and `glueless plan`, through the binary, on SQLite.

/// The sales contract with one more field after `price`.
fn sales_with(lake: &Lake, field: &str) {
    let path = lake.root.join("schemas/sales.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (fields, load) = text.split_once("[load]").unwrap();
    std::fs::write(&path, format!("{fields}{field}\n[load]{load}")).unwrap();
}

const NOTE: &str = "[[schema.fields]]\nname = \"note\"\ntype = \"string\"\n";
const REGION: &str = "[[schema.fields]]\nname = \"region\"\ntype = \"string\"\nconstraints = { required = true }\n";

/// `glueless plan --format json`: its exit code and report.
fn plan(lake: &Lake, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["plan", "--format", "json"];
    args.extend(extra);
    let r = lake.glueless(&args, &[]);
    let v = r.json();
    assert_eq!(v["exit_code"], r.code, "{v}: {}", r.stderr);
    (r.code, v)
}

/// What plan must not change: the warehouse's schema (every table's SQL) and ledgers.
fn snapshot(lake: &Lake) -> Vec<Vec<String>> {
    let mut out = lake.query("SELECT name, sql FROM sqlite_master ORDER BY name");
    out.extend(lake.query("SELECT count(*) FROM glueless_loads"));
    out
}

#[test]
fn plan_shows_create_add_nothing_and_refuse_and_changes_nothing() {
    let lake = Lake::new("");
    // Create: before anything ran, and no warehouse file is made.
    let (code, v) = plan(&lake, &[]);
    assert_eq!((code, v["status"].as_str()), (0, Some("ok")), "{v}");
    assert_eq!(v["tables"][0]["action"], "create", "{v}");
    assert_eq!(
        (v["tables"][0]["dataset"].as_str(), v["tables"][0]["table"].as_str()),
        (Some("sales"), Some("fact_sales"))
    );
    assert!(v["tables"][0]["ddl"].as_str().unwrap().contains("CREATE TABLE"), "{v}");
    assert!(!lake.warehouse().exists(), "plan made the warehouse file");

    lake.drop_file("sales/a.csv", &format!("{SALES_HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
    lake.run_once(&[]);
    // Nothing.
    let (code, v) = plan(&lake, &[]);
    assert_eq!((code, v["tables"][0]["action"].as_str()), (0, Some("nothing")), "{v}");

    // Add: a new optional field; the text form shows the DDL too.
    sales_with(&lake, NOTE);
    let before = snapshot(&lake);
    let (code, v) = plan(&lake, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["tables"][0],
        json!({"dataset": "sales", "table": "fact_sales", "action": "add_columns", "columns": ["note"],
               "ddl": ["ALTER TABLE \"main\".\"fact_sales\" ADD COLUMN \"note\" TEXT;"]})
    );
    let text = lake.glueless(&["plan"], &[]);
    assert_eq!(text.code, 0);
    assert!(
        text.stderr.contains("sales -> fact_sales: add 1 column") && text.stderr.contains("ADD COLUMN \"note\""),
        "{}",
        text.stderr
    );
    assert_eq!(snapshot(&lake), before, "plan changed the warehouse");

    // Refuse: also a new required field; exit 4, and still nothing changed.
    sales_with(&lake, REGION);
    let (code, v) = plan(&lake, &["--dataset", "sales"]);
    assert_eq!((code, v["status"].as_str()), (4, Some("refused")), "{v}");
    let refusals = v["tables"][0]["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 1, "{v}");
    assert_eq!(
        (refusals[0]["change"].as_str(), refusals[0]["column"].as_str()),
        (Some("new_required_column"), Some("region"))
    );
    assert!(refusals[0]["sql"].as_str().unwrap().contains("ADD COLUMN \"region\" TEXT;"), "{v}");
    assert_eq!(snapshot(&lake), before, "plan changed the warehouse");

    // An unknown dataset is a usage error.
    let r = lake.glueless(&["plan", "--dataset", "nope"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn a_refused_change_keeps_the_files_until_the_operator_runs_the_sql() {
    let lake = Lake::new("");
    lake.drop_file("sales/a.csv", &format!("{SALES_HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
    lake.run_once(&[]);
    sales_with(&lake, NOTE);
    sales_with(&lake, REGION);
    let header = SALES_HEADER.replace('\n', ",note,region\n");
    lake.drop_file("sales/b.csv", &format!("{header}2,2026-11-20T11:00:00Z,3,2.00,hi,eu\n"));
    let report = lake.run_once(&[]);
    let b =
        report["files"].as_array().unwrap().iter().rfind(|f| f["url"].as_str().unwrap().ends_with("b.csv")).unwrap();
    assert!(b["state"] == "FAILED" || b["state"] == "DEAD", "kept for a retry or a replay: {b}");
    let reason = b["reason"].as_str().unwrap();
    assert!(reason.contains("`region`") && reason.contains("operator SQL"), "{reason}");
    assert_eq!(lake.facts().len(), 1, "nothing loaded");
    assert_eq!(lake.query("SELECT count(*) FROM pragma_table_info('fact_sales') WHERE name = 'note'")[0][0], "0");

    // The operator runs the SQL of the message, with a value for the older rows.
    let (_, v) = plan(&lake, &[]);
    let sql = v["tables"][0]["refusals"][0]["sql"].as_str().unwrap().replace("<value>", "'eu'");
    rusqlite::Connection::open(lake.warehouse()).unwrap().execute_batch(&sql).unwrap();
    let (code, v) = plan(&lake, &[]);
    assert_eq!((code, v["tables"][0]["action"].as_str()), (0, Some("add_columns")), "the note is left to add: {v}");
    lake.glueless(&["replay", "--all"], &[]);
    let report = lake.run_once(&[]);
    assert_eq!(report["counts"]["LOADED"], 1, "b.csv: {report}");
    assert_eq!(
        lake.query("SELECT id, note, region FROM fact_sales ORDER BY id"),
        [["1", "NULL", "eu"], ["2", "hi", "eu"]]
    );
    assert_eq!(lake.query("SELECT count(*) FROM glueless_schema_changes")[0][0], "1", "the note, recorded");
}

#[test]
fn a_column_and_its_ledger_row_commit_together() {
    let lake = Lake::new("");
    lake.drop_file("sales/a.csv", &format!("{SALES_HEADER}1,2026-11-20T10:00:00Z,2,1.00\n"));
    lake.run_once(&[]);
    sales_with(&lake, NOTE);
    lake.drop_file(
        "sales/b.csv",
        &format!("{}2,2026-11-20T11:00:00Z,3,2.00,hi\n", SALES_HEADER.replace('\n', ",note\n")),
    );
    let killed = lake.glueless(&["run", "--once"], &[("GLUELESS_FAULT", "before-schema-ledger")]);
    assert_eq!(killed.code, -1, "killed between the ALTER and its ledger row: {}", killed.stderr);
    assert_eq!(
        lake.query("SELECT count(*) FROM pragma_table_info('fact_sales') WHERE name = 'note'")[0][0],
        "0",
        "the ALTER rolled back"
    );
    let report = lake.run_once(&[]);
    assert_eq!(report["counts"]["LOADED"], 1, "b.csv: {report}");
    assert_eq!(lake.query("SELECT count(*) FROM glueless_schema_changes")[0][0], "1");
    assert_eq!(lake.query("SELECT id, note FROM fact_sales ORDER BY id"), [["1", "NULL"], ["2", "hi"]]);
}
