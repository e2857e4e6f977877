//! The acceptance suite of the `Warehouse` port: the exactly-once load of
//! `jobs/src/ports/warehouse.rs` (ledger skip, version filter, per-key dedupe, upsert, ledger
//! rows, all in one transaction) and the canonical row form, checked through the trait only, so
//! every adapter (SQLite here, PostgreSQL and Redshift later) must pass the very same checks.
//!
//! The staged Parquet is real: each check writes a CSV and runs the engine's `FileJob` with a
//! test contract that has a field of every type, a primary key, a `version_column` and a field
//! named `unit "price" (EUR)`. An adapter runs the suite with one line in a
//! `#[tokio::test(flavor = "multi_thread")]`:
//!
//! ```ignore
//! suite(|| async { MyWarehouse::connect(fresh_database()).await.unwrap() }).await;
//! ```
//!
//! `make` is called once per check and must return a fresh, empty warehouse, so the checks are
//! independent of each other and of their order. The Parquet is staged in a temporary folder;
//! a warehouse that reads it from elsewhere (Redshift's COPY reads S3) passes a root URL to
//! [`suite_staged_at`].

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use glueless_engine::{Dataset, FileJob, Stores};
use glueless_jobs::adapters::SqliteWarehouse;
use glueless_jobs::ports::*;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The "now" the loads start from.
const T0: Millis = 1_700_000_000_000;

pub const CONTRACT: &str = r#"
name = "everything"
table = "fact_everything"

[schema]
primaryKey = ["id"]
missingValues = [""]

[[schema.fields]]
name = "id"
type = "integer"
constraints = { required = true }

[[schema.fields]]
name = "name"
type = "string"

[[schema.fields]]
name = "qty"
type = "integer"

[[schema.fields]]
name = "weight"
type = "number"

[[schema.fields]]
name = "active"
type = "boolean"

[[schema.fields]]
name = "day"
type = "date"

[[schema.fields]]
name = "at"
type = "time"

[[schema.fields]]
name = "updated"
type = "datetime"

[[schema.fields]]
name = "vintage"
type = "year"

[[schema.fields]]
name = 'unit "price" (EUR)'
type = "number"
decimal = [20, 2]

[load]
version_column = "updated"
"#;

pub const HEADER: &str = r#"id,name,qty,weight,active,day,at,updated,vintage,"unit ""price"" (EUR)""#;

/// Rows covering every type, with their canonical form in [`every_type_expected`].
const EVERY_TYPE: [&str; 4] = [
    "1,apple,3,0.25,true,2026-11-20,13:45:00,2026-11-20T13:45:00Z,2024,12.5",
    r#"2,"pear, ""green""",-7,-1.5,false,1999-01-31,23:59:59.123456,2026-11-20T14:45:00.500000+01:00,1999,-0.05"#,
    "3,,,,,,,,,",
    "4,Zoë (ü),9223372036854775807,1000000.125,TRUE,0001-01-01,00:00:00,1970-01-01T00:00:00Z,1970,123456789012345678.90",
];

fn every_type_expected() -> Vec<Vec<Value>> {
    vec![
        vec![
            json!(1),
            json!("apple"),
            json!(3),
            json!(0.25),
            json!(true),
            json!("2026-11-20"),
            json!("13:45:00.000000"),
            json!("2026-11-20T13:45:00.000000Z"),
            json!(2024),
            json!("12.50"),
        ],
        vec![
            json!(2),
            json!("pear, \"green\""),
            json!(-7),
            json!(-1.5),
            json!(false),
            json!("1999-01-31"),
            json!("23:59:59.123456"),
            json!("2026-11-20T13:45:00.500000Z"),
            json!(1999),
            json!("-0.05"),
        ],
        vec![
            json!(3),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
        vec![
            json!(4),
            json!("Zoë (ü)"),
            json!(i64::MAX),
            json!(1000000.125),
            json!(true),
            json!("0001-01-01"),
            json!("00:00:00.000000"),
            json!("1970-01-01T00:00:00.000000Z"),
            json!(1970),
            json!("123456789012345678.90"),
        ],
    ]
}

/// A row whose other columns are fixed: `updated` is an hour of 2026-11-20 (UTC) or missing.
fn line(id: i64, name: &str, updated: Option<u32>) -> String {
    let updated = updated.map(|h| format!("2026-11-20T{h:02}:00:00Z")).unwrap_or_default();
    format!("{id},{name},1,0.5,true,2026-01-02,08:00:00,{updated},2026,1.10")
}

/// The canonical form of [`line`].
fn canon(id: i64, name: &str, updated: Option<u32>) -> Vec<Value> {
    vec![
        json!(id),
        json!(name),
        json!(1),
        json!(0.5),
        json!(true),
        json!("2026-01-02"),
        json!("08:00:00.000000"),
        updated.map_or(Value::Null, |h| json!(format!("2026-11-20T{h:02}:00:00.000000Z"))),
        json!(2026),
        json!("1.10"),
    ]
}

/// Runs every check with the staged Parquet in a temporary folder.
pub async fn suite<W, F, Fut>(make: F)
where
    W: Warehouse,
    F: Fn() -> Fut,
    Fut: Future<Output = W>,
{
    suite_staged_at(make, None).await;
}

/// Runs every check, each against a warehouse of its own, with the staged Parquet under
/// `staging_root` (a URL such as `s3://bucket/prefix`) or in a temporary folder.
pub async fn suite_staged_at<W, F, Fut>(make: F, staging_root: Option<&str>)
where
    W: Warehouse,
    F: Fn() -> Fut,
    Fut: Future<Output = W>,
{
    let st = Staging::new(staging_root);
    macro_rules! checks {
        ($($check:ident),* $(,)?) => {
            $(
                eprintln!("warehouse suite: {}", stringify!($check));
                $check(&make().await, &st).await;
            )*
        };
    }
    checks!(
        ensure_table_is_idempotent_and_creates_an_empty_table,
        a_load_writes_the_canonical_rows,
        the_same_url_and_version_is_already_loaded,
        a_new_version_with_the_same_fingerprint_is_already_loaded,
        old_content_uploaded_again_is_a_new_load,
        a_new_version_with_changed_rows_merges,
        an_older_version_arriving_later_does_not_overwrite,
        the_same_key_twice_in_one_request_keeps_the_newest_then_the_later_file,
        the_same_key_twice_into_a_table_with_rows_keeps_the_same,
        each_loaded_file_gets_one_ledger_row,
        a_file_without_rows_gets_a_ledger_row,
        a_failure_mid_load_rolls_back_everything,
        ensure_table_names_a_missing_column,
        a_schema_qualified_table_name_works,
        direct_loads_back_off,
    );
}

// ---------------------------------------------------------------------------------------------
// Staging: real Parquet from the engine.

/// The test contract and a place to stage files for it.
pub struct Staging {
    dir: TempDir,
    root: Option<String>,
    stores: Stores,
    pub spec: TableSpec,
    dataset: Dataset,
    header: String,
    made: AtomicUsize,
}

impl Staging {
    pub fn new(root: Option<&str>) -> Staging {
        Staging::with_contract(root, CONTRACT, HEADER)
    }

    /// Another test contract, whose files have this `header`.
    pub fn with_contract(root: Option<&str>, contract_text: &str, header: &str) -> Staging {
        let dir = tempfile::tempdir().unwrap();
        let contract = dir.path().join("everything.toml");
        std::fs::write(&contract, contract_text).unwrap();
        let dataset = Dataset::load(&contract).expect("the test contract loads");
        let spec = TableSpec::from_dataset(&dataset).expect("the test contract has a table spec");
        std::fs::create_dir_all(dir.path().join("landing")).unwrap();
        std::fs::create_dir_all(dir.path().join("staging")).unwrap();
        Staging {
            dir,
            root: root.map(|r| r.trim_end_matches('/').to_string()),
            stores: Stores::new(),
            spec,
            dataset,
            header: header.to_string(),
            made: AtomicUsize::new(0),
        }
    }

    fn unique(&self, name: &str) -> String {
        format!("{name}-{}", self.made.fetch_add(1, Ordering::Relaxed))
    }

    /// Where a staged object named `name` goes.
    fn staged_url(&self, name: &str) -> String {
        match &self.root {
            Some(root) => format!("{root}/{name}"),
            None => self.dir.path().join("staging").join(name).display().to_string(),
        }
    }

    /// Stages a CSV of `rows` (after the header) as the file `s3://landing/<name>.csv` at
    /// `version`, through the engine, which must accept every row.
    pub async fn stage(&self, name: &str, version: &str, rows: &[&str]) -> StagedFile {
        let unique = self.unique(name);
        let csv = self.dir.path().join("landing").join(format!("{unique}.csv"));
        let mut text = format!("{}\n", self.header);
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(&csv, text).unwrap();
        let input = self.stores.resolve(&csv.display().to_string()).unwrap();
        let output = self.stores.resolve(&self.staged_url(&format!("{unique}.parquet"))).unwrap();
        let report = FileJob::new(&self.dataset, input).output(output).run().await.expect("the engine stages the file");
        assert_eq!(
            (report.status.as_str(), report.rows_valid),
            ("valid", rows.len() as u64),
            "the engine accepts every test row: {:?} {:?}",
            report.errors,
            report.file_problem
        );
        let parts = report
            .outputs
            .iter()
            .filter(|o| o.kind == "parquet")
            .map(|o| self.stores.resolve(&o.url).unwrap())
            .collect();
        StagedFile {
            key: key(&format!("s3://landing/{name}.csv"), version),
            fingerprint: report.fingerprint,
            parts,
            rows: report.rows_valid,
        }
    }

    /// Stages rows built with [`line`].
    async fn stage_lines(&self, name: &str, version: &str, rows: &[String]) -> StagedFile {
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        self.stage(name, version, &rows).await
    }

    /// A location where nothing is.
    fn missing_part(&self) -> glueless_engine::store::Location {
        self.stores.resolve(&self.staged_url(&format!("{}.parquet", self.unique("missing")))).unwrap()
    }

    /// A local file that is not Parquet.
    fn corrupt_part(&self) -> glueless_engine::store::Location {
        let path = self.dir.path().join("staging").join(format!("{}.parquet", self.unique("corrupt")));
        std::fs::write(&path, b"id,name\n1,not parquet at all\n").unwrap();
        self.stores.resolve(&path.display().to_string()).unwrap()
    }
}

fn key(url: &str, version: &str) -> FileKey {
    FileKey { url: url.to_string(), version: version.to_string() }
}

async fn load_into<W: Warehouse>(
    w: &W,
    spec: &TableSpec,
    load_id: &str,
    now: Millis,
    files: &[StagedFile],
) -> Result<LoadResult, WarehouseError> {
    w.load(&LoadRequest { table: spec, load_id, files, now }).await
}

/// Loads into the test table and expects success. The result's `direct` (which way the rows
/// went, which differs by warehouse) is checked for what it implies, then cleared, so that the
/// checks compare what every warehouse must agree on; `direct_loads_back_off` checks the way.
async fn load<W: Warehouse>(w: &W, st: &Staging, load_id: &str, now: Millis, files: &[StagedFile]) -> LoadResult {
    let result = load_into(w, &st.spec, load_id, now, files)
        .await
        .unwrap_or_else(|e| panic!("load {load_id} into {}: {e}", w.describe()));
    without_way(result, load_id)
}

/// `result` with `direct` cleared, once checked for what it implies: every row read went in,
/// or lost to a later row of the load (into an empty table).
fn without_way(mut result: LoadResult, load_id: &str) -> LoadResult {
    if result.direct {
        let read = files_rows(&result);
        assert_eq!(result.rows_merged + result.rows_superseded, read, "load {load_id}: straight in, every row counted");
    }
    result.direct = false;
    result
}

/// The rows of the files a load result says it loaded.
fn files_rows(result: &LoadResult) -> u64 {
    result.files.iter().map(|f| if let FileLoad::Loaded { rows } = f { *rows } else { 0 }).sum()
}

async fn ready<W: Warehouse>(w: &W, st: &Staging) {
    w.ensure_table(&st.spec).await.unwrap_or_else(|e| panic!("ensure_table on {}: {e}", w.describe()));
}

async fn rows<W: Warehouse>(w: &W, st: &Staging) -> Vec<Vec<Value>> {
    w.fact_rows(&st.spec).await.unwrap()
}

fn loaded(rows: u64) -> FileLoad {
    FileLoad::Loaded { rows }
}

fn already(load_id: &str) -> FileLoad {
    FileLoad::AlreadyLoaded { load_id: load_id.to_string() }
}

fn result(files: Vec<FileLoad>, rows_superseded: u64, rows_merged: u64) -> LoadResult {
    LoadResult { files, rows_superseded, rows_merged, direct: false }
}

fn ledger_row(st: &Staging, file: &StagedFile, load_id: &str, rows_loaded: u64, loaded_at: Millis) -> LedgerRow {
    LedgerRow {
        object_url: file.key.url.clone(),
        object_version: file.key.version.clone(),
        fingerprint: file.fingerprint.clone(),
        load_id: load_id.to_string(),
        dataset: st.spec.dataset.clone(),
        table_name: st.spec.table.clone(),
        rows_loaded,
        loaded_at,
    }
}

// ---------------------------------------------------------------------------------------------
// The checks

async fn ensure_table_is_idempotent_and_creates_an_empty_table<W: Warehouse>(w: &W, st: &Staging) {
    assert!(!w.describe().is_empty(), "describe names the warehouse");
    ready(w, st).await;
    ready(w, st).await;
    assert_eq!(rows(w, st).await, Vec::<Vec<Value>>::new(), "a new table is empty");
    assert_eq!(w.ledger(None).await.unwrap(), vec![], "a new ledger is empty");
    // Still usable after a second ensure_table: a load goes through.
    let f = st.stage("ensure", "v1", &[&line(1, "one", Some(1))]).await;
    assert_eq!(load(w, st, "L1", T0, &[f]).await, result(vec![loaded(1)], 0, 1));
    ready(w, st).await;
    assert_eq!(rows(w, st).await, vec![canon(1, "one", Some(1))], "ensure_table keeps existing rows");
}

async fn a_load_writes_the_canonical_rows<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let f = st.stage("every-type", "v1", &EVERY_TYPE).await;
    assert_eq!(f.rows, 4);
    assert_eq!(load(w, st, "L1", T0, &[f]).await, result(vec![loaded(4)], 0, 4));
    assert_eq!(rows(w, st).await, every_type_expected());
}

async fn the_same_url_and_version_is_already_loaded<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let f = st.stage("again", "v1", &EVERY_TYPE).await;
    assert_eq!(load(w, st, "L1", T0, std::slice::from_ref(&f)).await, result(vec![loaded(4)], 0, 4));
    assert_eq!(load(w, st, "L2", T0 + 10, std::slice::from_ref(&f)).await, result(vec![already("L1")], 0, 0));
    // Same URL and version, whatever the parts hold now: the ledger says it is done, so its
    // rows are not even read (these would overwrite row 1 and add row 9).
    let mut changed = st.stage("again", "v1", &[&line(1, "changed", Some(23)), &line(9, "new", Some(23))]).await;
    changed.key = f.key.clone();
    assert_eq!(load(w, st, "L3", T0 + 20, &[changed]).await, result(vec![already("L1")], 0, 0));
    assert_eq!(rows(w, st).await, every_type_expected(), "nothing changed");
    assert_eq!(w.ledger(None).await.unwrap(), vec![ledger_row(st, &f, "L1", 4, T0)]);
}

async fn a_new_version_with_the_same_fingerprint_is_already_loaded<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let v1 = st.stage("reupload", "etag-1", &EVERY_TYPE).await;
    let v2 = st.stage("reupload", "etag-2", &EVERY_TYPE).await;
    assert_eq!(v1.fingerprint, v2.fingerprint, "equal content, equal fingerprint");
    assert_eq!(load(w, st, "L1", T0, std::slice::from_ref(&v1)).await, result(vec![loaded(4)], 0, 4));
    assert_eq!(load(w, st, "L2", T0 + 10, std::slice::from_ref(&v2)).await, result(vec![already("L1")], 0, 0));
    assert_eq!(w.ledger(None).await.unwrap(), vec![ledger_row(st, &v1, "L1", 4, T0)]);
    // The same content under another URL is another file: loaded, though none of its rows is
    // newer than the table's (three have equal versions, one has none).
    let other = st.stage("elsewhere", "etag-1", &EVERY_TYPE).await;
    assert_eq!(v1.fingerprint, other.fingerprint);
    assert_eq!(load(w, st, "L3", T0 + 20, std::slice::from_ref(&other)).await, result(vec![loaded(4)], 4, 0));
    assert_eq!(rows(w, st).await, every_type_expected());
    assert_eq!(w.ledger(Some(&other.key.url)).await.unwrap(), vec![ledger_row(st, &other, "L3", 4, T0 + 20)]);
}

async fn old_content_uploaded_again_is_a_new_load<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let a = [line(1, "a", Some(1))];
    let b = [line(1, "b", Some(2))];
    let v1 = st.stage_lines("flip", "v1", &a).await;
    let v2 = st.stage_lines("flip", "v2", &b).await;
    let v3 = st.stage_lines("flip", "v3", &a).await;
    assert_eq!(v1.fingerprint, v3.fingerprint);
    assert_eq!(load(w, st, "L1", T0, &[v1]).await, result(vec![loaded(1)], 0, 1));
    assert_eq!(load(w, st, "L2", T0 + 1, &[v2]).await, result(vec![loaded(1)], 0, 1));
    // v3 matches v1's fingerprint but not the URL's latest load (v2): it is loaded, and its row
    // loses to the newer one in the table.
    assert_eq!(load(w, st, "L3", T0 + 2, &[v3]).await, result(vec![loaded(1)], 1, 0));
    assert_eq!(rows(w, st).await, vec![canon(1, "b", Some(2))]);
    assert_eq!(w.ledger(None).await.unwrap().len(), 3);
}

async fn a_new_version_with_changed_rows_merges<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let v1 = st
        .stage_lines("merge", "v1", &[line(1, "one", Some(1)), line(2, "two", Some(1)), line(3, "three", Some(1))])
        .await;
    let v2 = st.stage_lines("merge", "v2", &[line(2, "two updated", Some(2)), line(4, "four", Some(2))]).await;
    assert_eq!(load(w, st, "L1", T0, &[v1]).await, result(vec![loaded(3)], 0, 3));
    assert_eq!(load(w, st, "L2", T0 + 1, &[v2]).await, result(vec![loaded(2)], 0, 2));
    assert_eq!(
        rows(w, st).await,
        vec![
            canon(1, "one", Some(1)),
            canon(2, "two updated", Some(2)),
            canon(3, "three", Some(1)),
            canon(4, "four", Some(2))
        ]
    );
}

async fn an_older_version_arriving_later_does_not_overwrite<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let a = st
        .stage_lines(
            "late-a",
            "v1",
            &[line(1, "a1", Some(10)), line(2, "a2", Some(10)), line(3, "a3", Some(10)), line(4, "a4", None)],
        )
        .await;
    let b = st
        .stage_lines(
            "late-b",
            "v1",
            &[
                line(1, "b1 older", Some(9)),
                line(2, "b2 equal", Some(10)),
                line(3, "b3 no version", None),
                line(4, "b4 over no version", Some(5)),
                line(5, "b5 new", Some(1)),
            ],
        )
        .await;
    assert_eq!(load(w, st, "L1", T0, &[a]).await, result(vec![loaded(4)], 0, 4));
    // Older, equal and missing versions lose; a version beats a row that has none.
    assert_eq!(load(w, st, "L2", T0 + 1, &[b]).await, result(vec![loaded(5)], 3, 2));
    assert_eq!(
        rows(w, st).await,
        vec![
            canon(1, "a1", Some(10)),
            canon(2, "a2", Some(10)),
            canon(3, "a3", Some(10)),
            canon(4, "b4 over no version", Some(5)),
            canon(5, "b5 new", Some(1)),
        ]
    );
}

async fn the_same_key_twice_in_one_request_keeps_the_newest_then_the_later_file<W: Warehouse>(w: &W, st: &Staging) {
    same_key_twice(w, st, false).await;
}

/// The same into a table that already has a row: adapters that insert straight into an empty
/// table take the staging steps here, and must end the same.
async fn the_same_key_twice_into_a_table_with_rows_keeps_the_same<W: Warehouse>(w: &W, st: &Staging) {
    same_key_twice(w, st, true).await;
}

async fn same_key_twice<W: Warehouse>(w: &W, st: &Staging, table_with_rows: bool) {
    ready(w, st).await;
    let mut want = Vec::new();
    if table_with_rows {
        let other = st.stage_lines("pair-0", "v1", &[line(99, "already there", Some(1))]).await;
        assert_eq!(load(w, st, "L0", T0, &[other]).await, result(vec![loaded(1)], 0, 1));
        want.push(canon(99, "already there", Some(1)));
    }
    let a = st
        .stage_lines(
            "pair-a",
            "v1",
            &[
                line(1, "a high", Some(12)),
                line(2, "a tie", Some(10)),
                line(3, "a none", None),
                line(5, "a some", Some(1)),
            ],
        )
        .await;
    let b = st
        .stage_lines(
            "pair-b",
            "v1",
            &[
                line(1, "b low", Some(11)),
                line(2, "b tie", Some(10)),
                line(3, "b none", None),
                line(4, "b only", Some(3)),
                line(5, "b none", None),
            ],
        )
        .await;
    assert_eq!(load(w, st, "L1", T0 + 1, &[a, b]).await, result(vec![loaded(4), loaded(5)], 4, 5));
    want.splice(
        0..0,
        [
            canon(1, "a high", Some(12)),
            canon(2, "b tie", Some(10)),
            canon(3, "b none", None),
            canon(4, "b only", Some(3)),
            canon(5, "a some", Some(1)),
        ],
    );
    assert_eq!(rows(w, st).await, want);
}

async fn each_loaded_file_gets_one_ledger_row<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let a1 = st.stage_lines("ledger-a", "v1", &[line(1, "x", Some(1)), line(2, "x", Some(1))]).await;
    let b1 =
        st.stage_lines("ledger-b", "v1", &[line(3, "y", Some(1)), line(4, "y", Some(1)), line(5, "y", Some(1))]).await;
    let a2 = st.stage_lines("ledger-a", "v2", &[line(1, "z", Some(2))]).await;
    assert_ne!(a1.fingerprint, b1.fingerprint);
    assert_eq!(load(w, st, "L1", T0, &[a1.clone(), b1.clone()]).await, result(vec![loaded(2), loaded(3)], 0, 5));
    // A file listed twice in one request is one file.
    assert_eq!(
        load(w, st, "L2", T0 + 5, &[a2.clone(), a2.clone(), a1.clone()]).await,
        result(vec![loaded(1), already("L2"), already("L1")], 0, 1)
    );
    let all = w.ledger(None).await.unwrap();
    assert_eq!(all[0], ledger_row(st, &a2, "L2", 1, T0 + 5), "newest first");
    let mut older = all[1..].to_vec();
    older.sort_by(|x, y| x.object_url.cmp(&y.object_url));
    assert_eq!(older, vec![ledger_row(st, &a1, "L1", 2, T0), ledger_row(st, &b1, "L1", 3, T0)]);
    assert_eq!(
        w.ledger(Some(&a1.key.url)).await.unwrap(),
        vec![ledger_row(st, &a2, "L2", 1, T0 + 5), ledger_row(st, &a1, "L1", 2, T0)]
    );
    assert_eq!(w.ledger(Some(&b1.key.url)).await.unwrap(), vec![ledger_row(st, &b1, "L1", 3, T0)]);
    assert_eq!(w.ledger(Some("s3://landing/never.csv")).await.unwrap(), vec![]);
}

async fn a_file_without_rows_gets_a_ledger_row<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let no_parts = StagedFile {
        key: key("s3://landing/all-rejected.csv", "v1"),
        fingerprint: "xxh3:0".into(),
        parts: vec![],
        rows: 0,
    };
    let header_only = st.stage("header-only", "v1", &[]).await;
    assert_eq!(
        load(w, st, "L1", T0, &[no_parts.clone(), header_only.clone()]).await,
        result(vec![loaded(0), loaded(0)], 0, 0)
    );
    assert_eq!(rows(w, st).await, Vec::<Vec<Value>>::new());
    let mut ledger = w.ledger(None).await.unwrap();
    ledger.sort_by(|x, y| x.object_url.cmp(&y.object_url));
    assert_eq!(ledger, vec![ledger_row(st, &no_parts, "L1", 0, T0), ledger_row(st, &header_only, "L1", 0, T0)]);
    assert_eq!(load(w, st, "L2", T0 + 1, &[no_parts]).await, result(vec![already("L1")], 0, 0));
}

async fn a_failure_mid_load_rolls_back_everything<W: Warehouse>(w: &W, st: &Staging) {
    ready(w, st).await;
    let first = st.stage_lines("before", "v1", &[line(1, "kept", Some(1)), line(2, "kept", Some(1))]).await;
    load(w, st, "L1", T0, &[first]).await;
    let rows_before = rows(w, st).await;
    let ledger_before = w.ledger(None).await.unwrap();

    // A good file (an update and an insert), then one whose part is missing.
    let good = st.stage_lines("good", "v1", &[line(1, "overwritten", Some(5)), line(3, "inserted", Some(5))]).await;
    let missing = st.missing_part();
    let broken = StagedFile {
        key: key("s3://landing/broken.csv", "v1"),
        fingerprint: "xxh3:1".into(),
        parts: vec![missing.clone()],
        rows: 1,
    };
    match load_into(w, &st.spec, "L2", T0 + 1, &[good.clone(), broken]).await {
        Err(e @ WarehouseError::Staged { .. }) => {
            assert!(e.to_string().contains(missing.file_name()), "the error names the part: {e}");
            assert!(e.is_retryable(), "a missing part may appear: {e}");
        }
        other => panic!("a missing part fails the load with Staged, got {other:?}"),
    }
    assert_eq!(rows(w, st).await, rows_before, "no row of the good file is visible");
    assert_eq!(w.ledger(None).await.unwrap(), ledger_before, "no ledger row is written");

    // A part that is not Parquet fails the same way.
    let corrupt = StagedFile {
        key: key("s3://landing/corrupt.csv", "v1"),
        fingerprint: "xxh3:2".into(),
        parts: vec![st.corrupt_part()],
        rows: 1,
    };
    match load_into(w, &st.spec, "L3", T0 + 2, &[good.clone(), corrupt]).await {
        Err(WarehouseError::Staged { .. }) => {}
        other => panic!("a corrupt part fails the load with Staged, got {other:?}"),
    }
    assert_eq!(rows(w, st).await, rows_before);
    assert_eq!(w.ledger(None).await.unwrap(), ledger_before);

    // The good file was not recorded: it loads on its own.
    assert_eq!(load(w, st, "L4", T0 + 3, &[good]).await, result(vec![loaded(2)], 0, 2));
    assert_eq!(
        rows(w, st).await,
        vec![canon(1, "overwritten", Some(5)), canon(2, "kept", Some(1)), canon(3, "inserted", Some(5))]
    );
}

async fn ensure_table_names_a_missing_column<W: Warehouse>(w: &W, st: &Staging) {
    let mut older = st.spec.clone();
    let dropped = older.columns.pop().expect("the spec has columns");
    assert!(!older.key.contains(&older.columns.len()) && older.version != Some(older.columns.len()));
    w.ensure_table(&older).await.unwrap();
    // A missing column the contract requires is refused, named; an optional one is added
    // (tests/blackbox/evolution.rs).
    let mut required = st.spec.clone();
    required.columns.last_mut().expect("the spec has columns").nullable = false;
    match w.ensure_table(&required).await {
        Err(e @ WarehouseError::Table { .. }) => {
            assert!(e.to_string().contains(&dropped.name), "the error names `{}`: {e}", dropped.name);
            assert!(!e.is_retryable(), "someone has to change the table: {e}");
        }
        other => panic!("a table without the required `{}` is refused, got {other:?}", dropped.name),
    }
    w.ensure_table(&st.spec).await.unwrap_or_else(|e| panic!("the optional `{}` is added: {e}", dropped.name));
}

async fn a_schema_qualified_table_name_works<W: Warehouse>(w: &W, st: &Staging) {
    let mut dotted = st.spec.clone();
    dotted.table = "acceptance.fact_everything".into();
    ready(w, st).await;
    w.ensure_table(&dotted).await.unwrap();
    w.ensure_table(&dotted).await.unwrap();
    let f = st.stage("dotted", "v1", &EVERY_TYPE).await;
    assert_eq!(
        without_way(load_into(w, &dotted, "L1", T0, std::slice::from_ref(&f)).await.unwrap(), "L1"),
        result(vec![loaded(4)], 0, 4)
    );
    assert_eq!(w.fact_rows(&dotted).await.unwrap(), every_type_expected());
    assert_eq!(rows(w, st).await, Vec::<Vec<Value>>::new(), "the unqualified table is another table");
    let ledger = w.ledger(None).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].table_name, "acceptance.fact_everything");
}

// ---------------------------------------------------------------------------------------------
// SQLite

fn sqlite_at(path: &Path) -> SqliteWarehouse {
    let w = SqliteWarehouse::open(path).unwrap();
    assert_eq!(w.describe(), format!("sqlite://{}", path.display()));
    w
}

/// Which way the rows go ("Straight into the table" in the load plan): SQLite and PostgreSQL
/// put new keys straight into a table that has rows; a load with a key the table has is
/// refused there and takes the staging steps (ending as they would), and the next loads into
/// that table stage at once (1, then 2, … loads) before one tries again. Redshift always stages.
async fn direct_loads_back_off<W: Warehouse>(w: &W, st: &Staging) {
    let tries = !w.describe().starts_with("redshift");
    ready(w, st).await;
    let mut n = 0;
    let mut way = async |rows: &[(i64, &str, Option<u32>)]| {
        n += 1;
        let name = format!("way-{n}");
        let lines: Vec<String> = rows.iter().map(|&(id, name, v)| line(id, name, v)).collect();
        let f = st.stage_lines(&name, "v1", &lines).await;
        let r = load_into(w, &st.spec, &name, T0, &[f]).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        (r.direct, r.rows_superseded, r.rows_merged)
    };
    // An empty table, then new keys into a table with rows: straight in.
    assert_eq!(way(&[(1, "one", Some(1)), (2, "two", Some(1))]).await, (tries, 0, 2));
    assert_eq!(way(&[(3, "three", Some(1))]).await, (tries, 0, 1));
    // A key the table has (an older version, which loses) and a new key: refused straight in,
    // so staged, and the table ends as the staging steps leave it.
    assert_eq!(way(&[(1, "one older", Some(0)), (4, "four", Some(1))]).await, (false, 1, 1));
    // The next load stages at once, though its keys are new; the one after tries again.
    assert_eq!(way(&[(5, "five", Some(1))]).await, (false, 0, 1));
    assert_eq!(way(&[(6, "six", Some(1))]).await, (tries, 0, 1));
    // A refusal after an accepted try skips one load again; a refusal at the first try after
    // skipped loads skips twice as many (then 4, 8, … up to 64).
    assert_eq!(way(&[(6, "six newer", Some(2))]).await, (false, 0, 1));
    assert_eq!(way(&[(7, "seven", Some(1))]).await, (false, 0, 1));
    assert_eq!(way(&[(7, "seven newer", Some(2))]).await, (false, 0, 1));
    assert_eq!(way(&[(8, "eight", Some(1))]).await, (false, 0, 1));
    assert_eq!(way(&[(9, "nine", Some(1))]).await, (false, 0, 1));
    assert_eq!(way(&[(10, "ten", Some(1))]).await, (tries, 0, 1));
    let want = vec![
        canon(1, "one", Some(1)),
        canon(2, "two", Some(1)),
        canon(3, "three", Some(1)),
        canon(4, "four", Some(1)),
        canon(5, "five", Some(1)),
        canon(6, "six newer", Some(2)),
        canon(7, "seven newer", Some(2)),
        canon(8, "eight", Some(1)),
        canon(9, "nine", Some(1)),
        canon(10, "ten", Some(1)),
    ];
    assert_eq!(rows(w, st).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_warehouse_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let made = AtomicUsize::new(0);
    suite(|| {
        let path = dir.path().join(format!("warehouse-{}.db", made.fetch_add(1, Ordering::Relaxed)));
        async move { sqlite_at(&path) }
    })
    .await;
}

#[tokio::test]
async fn sqlite_refuses_a_view_in_place_of_the_fact_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warehouse.db");
    let st = Staging::new(None);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(r#"CREATE VIEW "fact_everything" AS SELECT 1 AS id"#)
        .unwrap();
    let w = sqlite_at(&path);
    match w.ensure_table(&st.spec).await {
        Err(e @ WarehouseError::Table { .. }) => assert!(e.to_string().contains("view"), "{e}"),
        other => panic!("ensure_table refuses a view, got {other:?}"),
    }
    let f = st.stage("view", "v1", &EVERY_TYPE).await;
    let err = load_into(&w, &st.spec, "L1", T0, &[f]).await.expect_err("a load into a view fails");
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(w.ledger(None).await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loads_from_two_connections_serialize() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warehouse.db");
    let st = Staging::new(None);
    // Two handles on one file, as two `glueless run` processes have.
    let (w1, w2) = (sqlite_at(&path), sqlite_at(&path));
    ready(&w1, &st).await;
    ready(&w2, &st).await;
    let mut files = Vec::new();
    for i in 0..8 {
        files.push(
            st.stage_lines(&format!("parallel-{i}"), "v1", &[line(i, "p", Some(1)), line(100 + i, "p", Some(1))]).await,
        );
    }
    let (r1, r2) = tokio::join!(
        async {
            for (i, f) in files.iter().enumerate().step_by(2) {
                load(&w1, &st, &format!("A{i}"), T0, std::slice::from_ref(f)).await;
            }
        },
        async {
            for (i, f) in files.iter().enumerate().skip(1).step_by(2) {
                load(&w2, &st, &format!("B{i}"), T0, std::slice::from_ref(f)).await;
            }
        }
    );
    let ((), ()) = (r1, r2);
    assert_eq!(w1.ledger(None).await.unwrap().len(), 8);
    assert_eq!(w2.fact_rows(&st.spec).await.unwrap().len(), 16);
}

#[tokio::test]
async fn sqlite_stores_the_documented_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warehouse.db");
    let st = Staging::new(None);
    let w = sqlite_at(&path);
    let mut dotted = st.spec.clone();
    dotted.table = "logistics.fact_everything".into();
    w.ensure_table(&dotted).await.unwrap();
    let f = st.stage("forms", "v1", &EVERY_TYPE[..2]).await;
    load_into(&w, &dotted, "L1", T0, &[f]).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<(String, String, i64, String, String, String)> = conn
        .prepare(
            r#"SELECT "unit ""price"" (EUR)", typeof("unit ""price"" (EUR)"), "active", "day", "at", "updated"
               FROM "logistics.fact_everything" ORDER BY id"#,
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        stored,
        vec![
            (
                "12.50".into(),
                "text".into(),
                1,
                "2026-11-20".into(),
                "13:45:00.000000".into(),
                "2026-11-20 13:45:00.000000".into()
            ),
            (
                "-0.05".into(),
                "text".into(),
                0,
                "1999-01-31".into(),
                "23:59:59.123456".into(),
                "2026-11-20 13:45:00.500000".into()
            ),
        ]
    );
    // The datetime form is SQLite's own: its date functions read it.
    let day: String = conn
        .query_row(r#"SELECT date("updated", '+1 day') FROM "logistics.fact_everything" WHERE id = 1"#, [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(day, "2026-11-21");
}

#[tokio::test]
async fn sqlite_requires_a_unique_key_on_an_existing_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warehouse.db");
    let st = Staging::new(None);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        r#"CREATE TABLE fact_everything (id INTEGER, name TEXT, qty INTEGER, weight REAL, active INTEGER, day TEXT,
             at TEXT, updated TEXT, vintage INTEGER, "unit ""price"" (EUR)" TEXT)"#,
    )
    .unwrap();
    let w = sqlite_at(&path);
    match w.ensure_table(&st.spec).await {
        Err(e @ WarehouseError::Table { .. }) => {
            assert!(e.to_string().contains("UNIQUE index on exactly (\"id\")"), "{e}")
        }
        other => panic!("a table without a key is refused, got {other:?}"),
    }
    conn.execute_batch("CREATE UNIQUE INDEX fact_everything_key ON fact_everything (id)").unwrap();
    ready(&w, &st).await;
    let f = st.stage("unique-index", "v1", &EVERY_TYPE).await;
    assert_eq!(load(&w, &st, "L1", T0, &[f]).await, result(vec![loaded(4)], 0, 4));
    assert_eq!(rows(&w, &st).await, every_type_expected());
}
