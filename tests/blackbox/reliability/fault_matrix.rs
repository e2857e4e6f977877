//! A crash at every step boundary of the file job (issue 12, item 1).
//!
//! For each fault point of `glueless_jobs::pipeline::faults` the file job goes through under
//! `run --once`: a lake with a batch of files (two good ones, one with a bad row, one whose rows
//! are mostly bad, and for the points that need a job that takes a while, a bigger one) is run
//! with the point armed. The process must die by SIGKILL, having reached the point (its marker
//! file). Then it is run again without the point, after the dead worker's claims lapse (a
//! 2-second lease), and the end must be the same as a run that never crashed: every file
//! LOADED or REJECTED as its content calls for, the fact table holding exactly the good rows,
//! one ledger row per loaded file, nothing RUNNING, FAILED or DEAD.
//!
//! The expected rows are computed here from the input rows, not by glueless. Cases are
//! independent (a lake and a warehouse each) and run in parallel threads.

use crate::pipeline::{HEADER, Lake, count};

/// The config of every case: short lease and no waiting, all the files in one batch.
const CONFIG: &str = "[lake]\nurl = \"lake\"\n[run]\nsettle_ms = 0\nbatch_max_wait_ms = 0\npoll_interval_ms = 50\nlease_secs = 2\nretry_base_secs = 0.05\nretry_max_secs = 0.2\nbatch_max_files = 10\n";

/// The points `run --once` passes (`before-sqs-delete` is the dispatcher's: worker and Lambda).
const POINTS: [&str; 8] = [
    "after-claim",
    "during-transform",
    "after-staging",
    "after-quarantine",
    "before-ledger",
    "after-commit",
    "between-state-updates",
    "during-renewal",
];

/// Rows of the big file for `during-transform`: over a MiB, so the transform reports progress
/// mid-file.
const BIG_ROWS: i64 = 60_000;

/// Rows of the big file for `during-renewal`: the job must outlast a third of the lease (0.67 s,
/// when the renewer first runs) with a margin; 60 000 rows take about 0.7 s on an idle machine.
const RENEWAL_ROWS: i64 = 200_000;

/// One input row: `id`, `qty` (0 breaks the contract's `minimum = 1`), `price` in cents.
#[derive(Clone, Copy)]
struct Row {
    id: i64,
    qty: i64,
    cents: i64,
}

impl Row {
    fn good(&self) -> bool {
        self.qty >= 1
    }
    fn csv(&self) -> String {
        format!("{},2026-11-20T10:00:00Z,{},{}.{:02}\n", self.id, self.qty, self.cents / 100, self.cents % 100)
    }
    /// As the fact table shows it: `id|qty|price`.
    fn fact(&self) -> String {
        format!("{}|{}|{}.{:02}", self.id, self.qty, self.cents / 100, self.cents % 100)
    }
}

/// A file of the case and what it must end as.
pub(super) struct Input {
    pub(super) name: &'static str,
    rows: Vec<Row>,
}

impl Input {
    /// More than half of its rows bad (`max_rejected_ratio = 0.5`): the file is REJECTED.
    pub(super) fn rejected(&self) -> bool {
        self.rows.iter().filter(|r| !r.good()).count() * 2 > self.rows.len()
    }

    /// The file as the producer writes it: the header, then its rows.
    pub(super) fn text(&self) -> String {
        std::iter::once(HEADER.to_string()).chain(self.rows.iter().map(Row::csv)).collect()
    }
}

fn row(id: i64, qty: i64) -> Row {
    Row { id, qty, cents: 100 + id * 7 % 10_000 }
}

/// The files of a case; `big_rows` > 0 adds a file of that many good rows.
pub(super) fn inputs(big_rows: i64) -> Vec<Input> {
    let mut files = vec![
        Input { name: "a.csv", rows: (1..=3).map(|id| row(id, 1 + id % 5)).collect() },
        // One bad row: loaded, the bad row quarantined.
        Input { name: "b.csv", rows: (4..=7).map(|id| row(id, if id == 6 { 0 } else { 2 })).collect() },
        // Mostly bad: REJECTED, its rows quarantined, none loaded.
        Input { name: "c.csv", rows: (8..=10).map(|id| row(id, if id == 8 { 3 } else { 0 })).collect() },
    ];
    if big_rows > 0 {
        files.push(Input { name: "big.csv", rows: (100..100 + big_rows).map(|id| row(id, 1 + id % 20)).collect() });
    }
    files
}

/// Where the facts and the ledger are read from.
trait Warehouse: Sync {
    /// The `[warehouse]` section of the config ("" for the default SQLite file).
    fn config(&self) -> String;
    /// Each row's one column (the queries join theirs with `|`), or the error (a table not
    /// created yet).
    fn try_rows(&self, lake: &Lake, sql: &str) -> Result<Vec<String>, String>;
}

struct Sqlite;

impl Warehouse for Sqlite {
    fn config(&self) -> String {
        String::new()
    }
    fn try_rows(&self, lake: &Lake, sql: &str) -> Result<Vec<String>, String> {
        let c = rusqlite::Connection::open(lake.warehouse()).map_err(|e| e.to_string())?;
        let mut st = c.prepare(sql).map_err(|e| e.to_string())?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }
}

pub(super) const FACTS: &str =
    "SELECT CAST(id AS TEXT) || '|' || CAST(qty AS TEXT) || '|' || CAST(price AS TEXT) FROM fact_sales ORDER BY id";
pub(super) const LEDGER: &str = "SELECT object_url FROM glueless_loads ORDER BY object_url";
pub(super) const CONTENTS: &str =
    "SELECT CAST(count(DISTINCT fingerprint) AS TEXT) || '|' || CAST(count(*) AS TEXT) FROM glueless_loads";

/// The fact table's rows after `files` were loaded: their good rows, by id.
fn good_facts(files: &[&Input]) -> Vec<String> {
    let mut want: Vec<Row> = files.iter().flat_map(|f| f.rows.iter().copied()).filter(Row::good).collect();
    want.sort_by_key(|r| r.id);
    want.iter().map(Row::fact).collect()
}

/// The rows of the big file a case at `point` adds (0: none).
pub(super) fn big_rows(point: &str) -> i64 {
    match point {
        "during-transform" => BIG_ROWS,
        "during-renewal" => RENEWAL_ROWS,
        _ => 0,
    }
}

/// Runs a query on the case's warehouse: each row's one column, or the error (a table not
/// created yet).
pub(super) type Query<'a> = &'a dyn Fn(&str) -> Result<Vec<String>, String>;

/// Right after a crash at `point`, the fact rows and the ledger agree: the fact table holds the
/// good rows of exactly the files in the ledger (none at all before the first commit).
pub(super) fn committed_together(point: &str, files: &[Input], query: Query) {
    let in_ledger: Vec<String> = query(LEDGER).unwrap_or_default();
    let committed: Vec<&Input> =
        files.iter().filter(|f| in_ledger.iter().any(|u| u.ends_with(&format!("/{}", f.name)))).collect();
    let facts_now = query(FACTS).unwrap_or_default();
    assert_eq!(
        facts_now.len(),
        good_facts(&committed).len(),
        "{point}: after the crash, fact rows of the files in the ledger {in_ledger:?} only"
    );
    assert!(
        facts_now == good_facts(&committed),
        "{point}: after the crash, the fact rows are those of the files in the ledger"
    );
}

/// The end of a case: the fact table equals the good rows of the files not rejected (computed
/// here from the inputs), and the ledger has exactly one row per loaded file and per content.
pub(super) fn loaded_exactly_once(point: &str, files: &[Input], query: Query) {
    let rows = |sql: &str| query(sql).unwrap_or_else(|e| panic!("{point}: {sql}: {e}"));
    let loaded: Vec<&Input> = files.iter().filter(|f| !f.rejected()).collect();
    let want = good_facts(&loaded);
    let facts = rows(FACTS);
    assert_eq!(facts.len(), want.len(), "{point}: fact rows");
    let first_diff = facts.iter().zip(&want).find(|(g, w)| g != w);
    assert!(
        first_diff.is_none(),
        "{point}: the fact table holds exactly the good rows; first difference (got, want): {first_diff:?}"
    );

    let ledger = rows(LEDGER);
    let mut want_ledger: Vec<String> = loaded.iter().map(|f| f.name.to_string()).collect();
    want_ledger.sort();
    let got: Vec<String> = ledger.iter().map(|u| u.rsplit('/').next().unwrap().to_string()).collect();
    assert_eq!(got, want_ledger, "{point}: one ledger row per loaded file: {ledger:?}");
    let n = loaded.len();
    assert_eq!(rows(CONTENTS), vec![format!("{n}|{n}")], "{point}: one ledger row per content");
}

/// One point: crash there, restart, check the end.
fn case(point: &str, wh: &dyn Warehouse) {
    let lake = Lake::new("");
    std::fs::write(lake.root.join("glueless.toml"), format!("{CONFIG}{}", wh.config())).unwrap();
    let files = inputs(big_rows(point));
    for f in &files {
        lake.drop_file(&format!("sales/{}", f.name), &f.text());
    }

    let marker = lake.root.join("fault-reached");
    let marker_s = marker.display().to_string();
    let killed =
        lake.glueless(&["run", "--once"], &[("GLUELESS_FAULT", point), ("GLUELESS_FAULT_MARKER", marker_s.as_str())]);
    assert_eq!(killed.code, -1, "{point}: killed by SIGKILL (exit {}): {}", killed.code, killed.stderr);
    assert_eq!(std::fs::read_to_string(&marker).ok().as_deref(), Some(point), "{point}: reached: {}", killed.stderr);
    assert!(killed.stderr.contains(&format!("GLUELESS_FAULT={point}: killing")), "{point}: {}", killed.stderr);

    committed_together(point, &files, &|sql| wh.try_rows(&lake, sql));

    // Restarted without the point: the dead worker's claims lapse after the lease.
    let report = lake.run_once(&[]);

    let loaded: Vec<&Input> = files.iter().filter(|f| !f.rejected()).collect();
    let st = lake.status();
    let counts = ["RECEIVED", "RUNNING", "FAILED", "DEAD", "LOADED", "REJECTED"].map(|s| count(&st, s));
    assert_eq!(counts, [0, 0, 0, 0, loaded.len() as u64, 1], "{point}: final states: {st}\nrestart: {report}");
    let attention = st["attention"].as_array().unwrap();
    assert_eq!(attention.len(), 1, "{point}: {st}");
    assert_eq!(attention[0]["state"], "REJECTED", "{point}: {st}");
    assert!(attention[0]["key"]["url"].as_str().unwrap().ends_with("/c.csv"), "{point}: {st}");
    loaded_exactly_once(point, &files, &|sql| wh.try_rows(&lake, sql));
}

/// Runs `case` for every point, each with its warehouse, in parallel.
fn matrix(cases: Vec<(&'static str, Box<dyn Warehouse + Send>)>) {
    in_parallel(cases, |p, wh| case(p, wh.as_ref()));
}

/// Runs `case` for each point and its argument, each in its own thread; reports every failing
/// point, not only the first.
pub(super) fn in_parallel<T: Send>(cases: Vec<(&'static str, T)>, case: impl Fn(&'static str, T) + Sync) {
    let n = cases.len();
    let case = &case;
    let failed: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.into_iter().map(|(p, arg)| (p, s.spawn(move || case(p, arg)))).collect();
        handles.into_iter().filter_map(|(p, h)| h.join().err().map(|e| format!("{p}: {}", panic_text(&e)))).collect()
    });
    assert!(failed.is_empty(), "{} of {n} points failed:\n{}", failed.len(), failed.join("\n"));
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// A point added to the job without a case here would go untested.
#[test]
fn every_fault_point_has_a_case() {
    let mut tested: Vec<&str> = POINTS.to_vec();
    tested.push("before-sqs-delete"); // postgres::a_worker_killed_before_the_sqs_delete_…
    let mut all = glueless_jobs::pipeline::faults::POINTS.to_vec();
    all.sort();
    tested.sort();
    assert_eq!(tested, all);
}

#[test]
fn a_crash_at_every_step_with_the_sqlite_warehouse_ends_loaded_exactly_once() {
    matrix(POINTS.iter().map(|&p| (p, Box::new(Sqlite) as Box<dyn Warehouse + Send>)).collect());
}

#[cfg(feature = "postgres")]
pub(super) mod postgres {
    use super::*;

    /// A PostgreSQL database per case, read with `tokio_postgres`.
    struct Postgres {
        url: String,
    }

    impl Warehouse for Postgres {
        fn config(&self) -> String {
            format!("[warehouse]\nurl = \"{}\"\n", self.url)
        }
        fn try_rows(&self, _lake: &Lake, sql: &str) -> Result<Vec<String>, String> {
            pg_query(&self.url, sql)
        }
    }

    /// The first column (text) of each row of `sql` on the database at `url`, or the error; not
    /// for use inside an async runtime.
    pub(in crate::reliability) fn pg_query(url: &str, sql: &str) -> Result<Vec<String>, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let rows = client.query(sql, &[]).await.map_err(|e| e.to_string())?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        })
    }

    /// The first column (text) of each row of `sql`.
    #[cfg(feature = "lambda")]
    async fn pg_rows(url: &str, sql: &str) -> Vec<String> {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    }

    #[test]
    fn a_crash_at_every_step_with_the_postgres_warehouse_ends_loaded_exactly_once() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let urls: Vec<String> = rt.block_on(async {
            let mut v = Vec::new();
            for p in POINTS {
                v.push(crate::support::postgres_database(&format!("fault_{p}")).await);
            }
            v
        });
        matrix(
            POINTS
                .iter()
                .zip(urls)
                .map(|(&p, url)| (p, Box::new(Postgres { url }) as Box<dyn Warehouse + Send>))
                .collect(),
        );
    }

    /// `glueless worker` (DynamoDB state on the emulator, PostgreSQL warehouse) killed in the
    /// dispatcher after its files are decided and before the SQS delete, and after the
    /// warehouse commit: the messages come back after their visibility timeout and the next
    /// worker sees the files done (or takes them up after the lease) without loading them twice.
    #[cfg(feature = "lambda")]
    #[test]
    fn a_worker_killed_before_the_sqs_delete_or_after_the_commit_loads_exactly_once() {
        use crate::aws_runtime::worker::{worker, worker_killed_at};
        use crate::aws_runtime::{Stack, contracts, queue_depth, rt, sales};
        use glueless_jobs::ports::FileState;

        let case = |point: &'static str| {
            rt().block_on(async {
                let stack = Stack::deploy(
                    &format!("fault-{point}"),
                    &[("DatasetPrefixes", "landing/sales/"), ("QueueVisibilityTimeoutSeconds", "2")],
                );
                let contracts = contracts();
                let warehouse = crate::support::postgres_database(&format!("fault_worker_{point}")).await;
                let env = stack.env_short_lease(contracts.path(), &warehouse);
                let good = stack.put("landing/sales/good.csv", &sales(1, 3, 1)).await;
                let broken = stack.put("landing/sales/broken.csv", &sales(20, 0, 3)).await;

                worker_killed_at(&env, point);
                assert!(queue_depth(&stack.queue_url).await >= 1, "{point}: the messages were not deleted");

                // The messages come back after their visibility timeout (and the claims lapse).
                tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
                let run = worker(&env, &["--format", "json"]);
                assert_eq!(run.code, 0, "{point}: {}", run.stderr);

                let rec = stack.record("landing/sales/good.csv", &good).await;
                assert_eq!(rec.state, FileState::Loaded, "{point}: {rec:?}");
                let rec = stack.record("landing/sales/broken.csv", &broken).await;
                assert_eq!(rec.state, FileState::Rejected, "{point}: {rec:?}");
                let states: Vec<FileState> = stack.records().await.iter().map(|r| r.state).collect();
                assert_eq!(states.len(), 2, "{point}: {states:?}");
                assert_eq!(pg_rows(&warehouse, FACTS).await, ["1|2|9.99", "2|2|9.99", "3|2|9.99"], "{point}");
                let ledger = pg_rows(&warehouse, LEDGER).await;
                assert_eq!(ledger, [stack.url("landing/sales/good.csv")], "{point}: one ledger row");
                assert_eq!(queue_depth(&stack.queue_url).await, 0, "{point}: every message deleted in the end");
                assert_eq!(queue_depth(&stack.dlq_url).await, 0, "{point}");
            })
        };
        in_parallel(vec![("before-sqs-delete", ()), ("after-commit", ())], |p, ()| case(p));
    }
}
