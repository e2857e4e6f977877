//! The [`Warehouse`] port on an embedded SQLite database file: the default warehouse, which
//! needs no server.
//!
//! The file is opened in WAL mode with a 10 s busy timeout, so readers never block a load and
//! several processes can load into the same file: each [`Warehouse::load`] is one
//! `BEGIN IMMEDIATE` transaction, so loads serialize (a load that waits longer than the busy
//! timeout fails with a retryable error).
//!
//! # Types
//!
//! | contract type | staged Parquet (Arrow) | [`SqlType`] | SQLite column | stored as |
//! | --- | --- | --- | --- | --- |
//! | `string` | Utf8 | `Text` | `TEXT` | the string |
//! | `integer` | Int64 | `Int64` | `INTEGER` | the integer |
//! | `year` | Int32 | `Int32` | `INTEGER` | the integer |
//! | `number` | Float64 | `Float64` | `REAL` | the float |
//! | `number` with `decimal = [p, s]` | Decimal128(p, s) | `Decimal` | `TEXT` | the exact decimal with `s` digits after the point: `12.50`, `-0.05` |
//! | `boolean` | Boolean | `Boolean` | `INTEGER` | `0` or `1` |
//! | `date` | Date32 | `Date` | `TEXT` | `YYYY-MM-DD` |
//! | `time` | Time64(µs) | `Time` | `TEXT` | `HH:MM:SS.ffffff` |
//! | `datetime` | Timestamp(µs, UTC) | `Timestamp` | `TEXT` | `YYYY-MM-DD HH:MM:SS.ffffff`, in UTC |
//!
//! SQLite has no exact decimal type, so decimals are kept as text and never rounded; query
//! them as numbers with `CAST(x AS REAL)` (exact up to about 15 significant digits) or
//! `sum(CAST(x AS REAL))`. Dates, times and datetimes are fixed-width text that sorts in time
//! order (for years 0000–9999) and that SQLite's date and time functions read:
//! `WHERE order_ts >= datetime('now', '-1 day')` works because the datetime form is
//! SQLite's own, with a space between date and time and no zone (always UTC).
//! [`Warehouse::fact_rows`] turns these back into the canonical JSON form of the port
//! (datetimes as `2026-11-20T13:45:00.000000Z`).
//!
//! Columns that are not nullable are `NOT NULL`; the key columns are the `PRIMARY KEY` (and
//! `NOT NULL`, as in standard SQL). A `version_column` compares with `>` on these forms; a
//! decimal version compares exactly (as a number, then by its digits).
//!
//! # A load
//!
//! The algorithm and its statements are the load plan's ([`crate::ports::load_plan`]; the
//! SQL is in `tests/golden/sqlite/`), in one `BEGIN IMMEDIATE` transaction. What is SQLite's
//! own: the ledger is read per file with bound parameters; the Parquet parts of the files to
//! load are read batch by batch (the async Parquet reader sends record batches over a bounded
//! channel to the thread that owns the connection) and bound row by row into
//! `temp.glueless_staging`; a decimal version (text) compares exactly (as REAL, then by sign,
//! length and digits) and sorts by `glueless_sort`, a fixed-width text of its unscaled value;
//! the upsert is `INSERT … SELECT … ON CONFLICT (key) DO UPDATE SET` every other column. The
//! rows go straight into the fact table instead ("Straight into the table" in the load plan)
//! with the same binding: into an empty table without triggers as an upsert that keeps what
//! step 4 would keep, into any other as a plain `INSERT` under `SAVEPOINT glueless_append`;
//! when the table refuses a row of it (a constraint), the load rolls back to the savepoint and
//! asks the reader for the parts again, for the staging table.
//!
//! Errors: a busy or locked database (or a full disk, an I/O error) is a `Load` that passes
//! ([`LoadCause::Transient`]); a missing or unreadable part is `Staged`; a constraint (NOT
//! NULL, CHECK, UNIQUE, a trigger's `RAISE`), a type mismatch, a value too big or a part whose
//! columns do not fit the spec is a refusal of rows ([`LoadCause::Rows`]: the pipeline finds
//! the file); anything else (a view where the table should be) needs someone to act.
//! Values SQLite cannot store exactly ([`WarehouseLimits::sqlite`]: NaN, dates outside years
//! 0000–9999) are row errors of validation before they get here. An existing fact table is
//! compared with the contract ([`crate::ports::load_plan::evolve`]: types by SQLite's affinity,
//! names without ASCII case): new optional fields are added, with a row in
//! `glueless_schema_changes`, in `ensure_table`'s `BEGIN IMMEDIATE` transaction; anything else,
//! or no `PRIMARY KEY` or `UNIQUE` index on exactly the key columns, is refused.
//!
//! # Names
//!
//! Every identifier is quoted (`"…"`, a `"` inside doubled), so column names with spaces,
//! parentheses or quotes work and no name can inject SQL. SQLite has no schemas inside one
//! file, so a contract's `table = "schema.table"` names one table whose name contains the
//! dot: query it as `SELECT * FROM "schema.table"`.
//!
//! # Tables
//!
//! - the fact table of each dataset, created by [`Warehouse::ensure_table`];
//! - the ledger `glueless_loads(object_url, object_version, fingerprint, load_id, dataset,
//!   table_name, rows_loaded, loaded_at /* ms since the epoch */)`, primary key
//!   `(object_url, object_version)`, created when the file is opened;
//! - the ledger of added columns `glueless_schema_changes(dataset, table_name, ddl,
//!   fingerprint, changed_at)`, created when the first column is added;
//! - a `TEMP` staging table per load (`temp.glueless_staging`), private to the connection.

use crate::adapters::staged_parquet::{Cells, PartReader};
use crate::ports::load_plan::{
    Appends, CheckedSpecs, Decision, Dialect, ExistingColumn, ExistingTable, LoadPlan, Recorded, TableChange,
    TableName, Upsert, decide, quote, spec_fingerprint,
};
use crate::ports::{
    FileKey, LedgerRow, LoadCause, LoadRequest, LoadResult, Millis, SqlType, TableSpec, Warehouse, WarehouseError,
    WarehouseLimits,
};
use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use rusqlite::types::{Null, ValueRef};
use rusqlite::{Connection, OptionalExtension, Statement, TransactionBehavior};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a load waits for another one holding the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Batches in flight between the Parquet reader and the SQLite thread.
const CHANNEL_BATCHES: usize = 2;
/// Page cache of the database file and of the temporary staging table, each (KiB; SQLite's
/// default is 2 MiB). A load of a million rows with the default cache spends most of its time
/// reading and writing back the same pages (`pread`/`pwrite`); this bounds the memory a load
/// adds at 64 MiB and changes nothing of durability (`synchronous` stays SQLite's default).
const CACHE_KIB: u32 = 32 * 1024;

const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS main.glueless_loads (
    object_url TEXT NOT NULL,
    object_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    load_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    table_name TEXT NOT NULL,
    rows_loaded INTEGER NOT NULL,
    loaded_at INTEGER NOT NULL,
    PRIMARY KEY (object_url, object_version)
)";

/// The warehouse in one SQLite file.
pub struct SqliteWarehouse {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// The table specs checked against SQLite's limits.
    checked: Arc<CheckedSpecs>,
    /// When a load into a table with rows tries them straight into it.
    appends: Arc<Appends>,
}

impl SqliteWarehouse {
    /// Opens (or creates) the database file, switches it to WAL and creates the ledger.
    pub fn open(path: &Path) -> Result<SqliteWarehouse, WarehouseError> {
        let target = describe(path);
        let connect = |e: rusqlite::Error| WarehouseError::Connect {
            target: target.clone(),
            unreachable: super::sqlite_is_busy(&e),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(connect)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(connect)?;
        let mode: String =
            super::sqlite_busy_retry(BUSY_TIMEOUT, || conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)))
                .map_err(connect)?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(WarehouseError::Connect {
                target,
                message: format!(
                    "cannot switch the journal to WAL (it stays `{mode}`); is the file on a network share?"
                ),
                unreachable: false,
            });
        }
        conn.execute_batch(&format!("PRAGMA main.cache_size = -{CACHE_KIB}; PRAGMA temp.cache_size = -{CACHE_KIB};"))
            .map_err(connect)?;
        super::sqlite_busy_retry(BUSY_TIMEOUT, || conn.execute_batch(LEDGER_DDL)).map_err(connect)?;
        Ok(SqliteWarehouse {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            checked: Arc::default(),
            appends: Arc::default(),
        })
    }

    /// Opens the database file read-only, for [`Warehouse::plan_table`] (`glueless plan`):
    /// nothing is created or changed, not even the ledger; a file that does not exist yet is
    /// an empty in-memory database (every table would be created).
    pub fn open_read_only(path: &Path) -> Result<SqliteWarehouse, WarehouseError> {
        use rusqlite::OpenFlags;
        let connect = |e: rusqlite::Error| WarehouseError::Connect {
            target: describe(path),
            unreachable: super::sqlite_is_busy(&e),
            message: e.to_string(),
        };
        let conn = if path.exists() {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        } else {
            Connection::open_in_memory()
        }
        .map_err(connect)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(connect)?;
        Ok(SqliteWarehouse {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            checked: Arc::default(),
            appends: Arc::default(),
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        table: &str,
        f: impl FnOnce(&mut Connection) -> Result<T, WarehouseError> + Send + 'static,
    ) -> Result<T, WarehouseError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&conn))).await.map_err(|e| join_error(table, e))?
    }
}

fn describe(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock dropped its transaction, which rolled it back: the
    // connection is fine to use again.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn join_error(table: &str, e: tokio::task::JoinError) -> WarehouseError {
    let cause = if e.is_panic() { LoadCause::Setup } else { LoadCause::Transient };
    WarehouseError::load(table, format!("the SQLite thread stopped: {e}"), cause)
}

/// Whether another connection holding the file is the cause (worth another try).
fn busy_hint(e: &rusqlite::Error) -> String {
    if super::sqlite_is_busy(e) {
        format!("{e} (another process held the database for more than {} s; try again)", BUSY_TIMEOUT.as_secs())
    } else {
        e.to_string()
    }
}

/// Busy, locked, a full disk or an I/O error pass; a constraint (NOT NULL, CHECK, UNIQUE, a
/// trigger's `RAISE`), a type mismatch or a value too big is the rows' doing; the rest is not.
fn load_cause(e: &rusqlite::Error) -> LoadCause {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        _ if super::sqlite_is_busy(e) => LoadCause::Transient,
        Some(C::DiskFull | C::SystemIoFailure) => LoadCause::Transient,
        Some(C::ConstraintViolation | C::TypeMismatch | C::TooBig) => LoadCause::Rows,
        _ => LoadCause::Setup,
    }
}

fn load_error(table: &str, e: rusqlite::Error) -> WarehouseError {
    WarehouseError::load(table, busy_hint(&e), load_cause(&e))
}

fn table_error(table: &str, e: rusqlite::Error) -> WarehouseError {
    WarehouseError::Table { table: table.to_string(), message: busy_hint(&e), retryable: super::sqlite_is_busy(&e) }
}

/// SQLite's dialect of the load plan.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

impl Dialect for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn column_type(&self, ty: SqlType) -> String {
        sql_type(ty).into()
    }

    /// SQLite has no schemas inside one file: a dotted contract name is one table name with
    /// the dot, in `main`.
    fn table_name(&self, table: &str) -> TableName {
        TableName { schema: Some("main".into()), name: table.into() }
    }

    fn staging(&self) -> &'static str {
        "temp.\"glueless_staging\""
    }

    fn create_staging(&self, columns: &str) -> String {
        format!("DROP TABLE IF EXISTS temp.\"glueless_staging\";\nCREATE TEMP TABLE \"glueless_staging\" ({columns})")
    }

    /// A key that sorts like the version: the value itself, but for a decimal (kept as text) a
    /// fixed-width text of its unscaled integer offset to be non-negative.
    fn extra_staging_columns(&self) -> &'static str {
        ", \"glueless_sort\""
    }

    fn version_order(&self, _v: usize) -> String {
        "\"glueless_sort\"".into()
    }

    /// Decimals are text: compared exactly, as numbers.
    fn not_newer(&self, ty: SqlType, staged: &str, fact: &str) -> String {
        match ty {
            SqlType::Decimal { .. } => format!("NOT {}", decimal_greater(staged, fact)),
            _ => format!("{staged} <= {fact}"),
        }
    }

    fn upsert(&self) -> Upsert {
        Upsert::OnConflict
    }

    fn placeholder(&self, i: usize) -> String {
        format!("?{i}")
    }

    fn ledger(&self) -> &'static str {
        "main.\"glueless_loads\""
    }

    fn ledger_order(&self) -> &'static str {
        "rowid"
    }

    fn schema_ledger(&self) -> &'static str {
        "main.\"glueless_schema_changes\""
    }

    /// SQLite compares names without ASCII case.
    fn same_name(&self, a: &str, b: &str) -> bool {
        a.eq_ignore_ascii_case(b)
    }

    /// By type affinity: a column declared `BIGINT` or `VARCHAR(20)` holds what `INTEGER` or
    /// `TEXT` would.
    fn same_type(&self, declared: &str, ty: SqlType) -> bool {
        affinity(declared) == affinity(sql_type(ty))
    }

    /// SQLite has no `ALTER COLUMN`.
    fn drops_not_null(&self) -> bool {
        false
    }
}

/// SQLite's type affinity of a declared type (its rules, in their order).
fn affinity(declared: &str) -> &'static str {
    let d = declared.to_ascii_uppercase();
    if d.contains("INT") {
        "INTEGER"
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        "TEXT"
    } else if d.contains("BLOB") || d.is_empty() {
        "BLOB"
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// The declared SQLite type of a column type.
fn sql_type(ty: SqlType) -> &'static str {
    match ty {
        SqlType::Int64 | SqlType::Int32 | SqlType::Boolean => "INTEGER",
        SqlType::Float64 => "REAL",
        SqlType::Text | SqlType::Decimal { .. } | SqlType::Date | SqlType::Time | SqlType::Timestamp => "TEXT",
    }
}

/// How the SQLite thread fills the staging table: one bound row at a time.
fn fill_sql(plan: &LoadPlan<'_, Sqlite>) -> String {
    format!("INSERT INTO {} VALUES ({})", Sqlite.staging(), placeholders(plan.spec.columns.len() + 3))
}

/// `?1, ?2, …, ?n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| Sqlite.placeholder(i)).collect::<Vec<_>>().join(", ")
}

/// How rows go straight into an empty fact table, one bound row at a time: an upsert in which
/// a row replaces the one of its key that came before it in the load when step 4 would keep it
/// (its version is not lower; NULL is the lowest), so that the table ends as steps 2–5 leave it.
fn direct_sql(plan: &LoadPlan<'_, Sqlite>) -> String {
    let spec = plan.spec;
    let others: Vec<String> = (0..spec.columns.len())
        .filter(|i| !spec.key.contains(i))
        .map(|i| format!("{0} = excluded.{0}", quote(&spec.columns[i].name)))
        .collect();
    let action = match spec.version {
        _ if others.is_empty() => "NOTHING".to_string(),
        None => format!("UPDATE SET {}", others.join(", ")),
        Some(v) => {
            let c = &spec.columns[v];
            let (kept, incoming) =
                (format!("{}.{}", plan.fact, quote(&c.name)), format!("excluded.{}", quote(&c.name)));
            format!(
                "UPDATE SET {}\n  WHERE {kept} IS NULL OR ({incoming} IS NOT NULL AND {})",
                others.join(", "),
                Sqlite.not_newer(c.ty, &kept, &incoming)
            )
        }
    };
    format!(
        "INSERT INTO {} ({}) VALUES ({})\n  ON CONFLICT ({}) DO {action}",
        plan.fact,
        plan.column_names().join(", "),
        placeholders(spec.columns.len()),
        plan.key_names()
    )
}

/// How rows go straight into a fact table that has rows: a plain insert, which its key
/// refuses when it has the row's key or the load had it before.
fn append_sql(plan: &LoadPlan<'_, Sqlite>) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        plan.fact,
        plan.column_names().join(", "),
        placeholders(plan.spec.columns.len())
    )
}

/// The statements of one load into `spec`'s table, as reviewable text (the golden files).
pub fn load_sql(spec: &TableSpec) -> Result<String, WarehouseError> {
    let plan = LoadPlan::new(spec, Sqlite)?;
    let mut sql = plan.render(&fill_sql(&plan));
    let _ = write!(
        sql,
        "\n-- 2-5 when the fact table is empty and has no trigger: the rows straight into it\n\n{};\n\n{};\n\n\
         -- 2-5 into a table with rows: the rows straight into it (a key it has, or one that comes\n\
         -- twice, rolls back to the savepoint and the load takes steps 2-5)\n\n\
         SAVEPOINT {APPEND};\n\n{};\n\nRELEASE {APPEND};\n",
        plan.fact_has_rows(),
        direct_sql(&plan),
        append_sql(&plan)
    );
    Ok(sql)
}

/// `table`, `view`, … when something of that name exists in the file.
fn object_kind(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT type FROM main.sqlite_master WHERE name = ?1 COLLATE NOCASE ORDER BY type = 'table' DESC LIMIT 1",
        [name],
        |r| r.get(0),
    )
    .optional()
}

/// The fact table as it is in the file (`None` when there is none), with the answers of the
/// plan's NULL checks.
fn existing_table(conn: &Connection, plan: &LoadPlan<'_, Sqlite>) -> Result<Option<ExistingTable>, WarehouseError> {
    let t = plan.spec.table.as_str();
    let err = |e: rusqlite::Error| table_error(t, e);
    match object_kind(conn, t).map_err(err)? {
        None => return Ok(None),
        Some(kind) if kind != "table" => return Err(WarehouseError::not_a_table(t, &kind)),
        Some(_) => {}
    }
    let columns = conn
        .prepare(r#"SELECT name, type, "notnull" FROM pragma_table_info(?1, 'main') ORDER BY cid"#)
        .and_then(|mut stmt| {
            stmt.query_map([t], |r| {
                Ok(ExistingColumn { name: r.get(0)?, declared: r.get(1)?, nullable: r.get::<_, i64>(2)? == 0 })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    let mut table =
        ExistingTable { columns, unique_keys: Some(unique_keys(conn, t).map_err(err)?), with_nulls: vec![] };
    for (column, sql) in plan.null_checks(&table) {
        if conn.query_row(&sql, [], |_| Ok(())).optional().map_err(err)?.is_some() {
            table.with_nulls.push(column);
        }
    }
    Ok(Some(table))
}

/// Creates the fact table, or adds the contract's new optional columns and records each in the
/// schema ledger, in one `BEGIN IMMEDIATE` transaction (the lock the loads take), or refuses.
fn ensure_table_blocking(conn: &mut Connection, plan: &LoadPlan<'_, Sqlite>) -> Result<(), WarehouseError> {
    let spec = plan.spec;
    let t = spec.table.as_str();
    let err = |e: rusqlite::Error| table_error(t, e);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
    tx.execute_batch(LEDGER_DDL).map_err(err)?;
    let change = plan.evolution(existing_table(&tx, plan)?.as_ref());
    match &change {
        TableChange::Create { ddl } => tx.execute_batch(ddl).map_err(err)?,
        TableChange::AddColumns { ddl, .. } => {
            tx.execute_batch(&plan.schema_ledger_ddl()).map_err(err)?;
            let fingerprint = spec_fingerprint(spec);
            let mut record = tx.prepare(&plan.schema_change_insert_params()).map_err(err)?;
            for statement in ddl {
                tx.execute_batch(statement).map_err(err)?;
                crate::pipeline::faults::point("before-schema-ledger");
                record
                    .execute(rusqlite::params![
                        spec.dataset,
                        spec.table,
                        statement,
                        fingerprint,
                        crate::ports::now_ms()
                    ])
                    .map_err(err)?;
            }
        }
        TableChange::Nothing => {}
        TableChange::Refuse { .. } => return Err(change.refused(t).expect("a refusal")),
    }
    tx.commit().map_err(err)
}

/// What [`ensure_table_blocking`] would do, in a read transaction that is rolled back.
fn plan_table_blocking(conn: &mut Connection, plan: &LoadPlan<'_, Sqlite>) -> Result<TableChange, WarehouseError> {
    let t = plan.spec.table.as_str();
    let tx = conn.transaction().map_err(|e| table_error(t, e))?;
    let change = plan.evolution(existing_table(&tx, plan)?.as_ref());
    tx.rollback().map_err(|e| table_error(t, e))?;
    Ok(change)
}

/// The columns of the primary key and of every full unique index of `table`.
fn unique_keys(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let names = |sql: &str, arg: &str| -> rusqlite::Result<Vec<Option<String>>> {
        conn.prepare(sql)?.query_map([arg], |r| r.get(0))?.collect()
    };
    let mut out = Vec::new();
    let pk = names("SELECT name FROM pragma_table_info(?1, 'main') WHERE pk > 0 ORDER BY pk", table)?;
    if !pk.is_empty() {
        out.push(pk.into_iter().flatten().collect());
    }
    for index in names(r#"SELECT name FROM pragma_index_list(?1, 'main') WHERE "unique" AND NOT partial"#, table)? {
        let Some(index) = index else { continue };
        let cols = names("SELECT name FROM pragma_index_info(?1, 'main')", &index)?;
        // An index on an expression has a NULL name: it is not a key of columns.
        if cols.iter().all(Option::is_some) {
            out.push(cols.into_iter().flatten().collect());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Load: the async side reads the Parquet parts and sends their columns to the thread that owns
// the connection and the transaction.

/// What the SQLite thread asks of the async side: read the parts of the files to load into
/// `batches`, then say `Done`. A load asks twice when the table refused its rows straight into
/// it; dropping the receiver ends a pass early.
struct Pass {
    decisions: Decisions,
    batches: mpsc::Sender<Msg>,
}

/// From the Parquet reader to the SQLite thread.
enum Msg {
    /// Rows of the file at this position in the request: the spec's columns, in spec order,
    /// already of the Arrow type of their [`SqlType`].
    Batch { file: usize, columns: Vec<ArrayRef>, rows: usize },
    /// Every part was read: finish and commit.
    Done,
}

/// What the load does with each file of the request.
type Decisions = Vec<Decision>;

#[async_trait::async_trait]
impl Warehouse for SqliteWarehouse {
    fn describe(&self) -> String {
        describe(&self.path)
    }

    fn limits(&self) -> WarehouseLimits {
        WarehouseLimits::sqlite()
    }

    async fn ensure_table(&self, table: &TableSpec) -> Result<(), WarehouseError> {
        let (spec, checked) = (table.clone(), self.checked.clone());
        self.blocking(&table.table, move |conn| ensure_table_blocking(conn, &checked.plan(&spec, Sqlite)?)).await
    }

    async fn plan_table(&self, table: &TableSpec) -> Result<TableChange, WarehouseError> {
        let (spec, checked) = (table.clone(), self.checked.clone());
        self.blocking(&table.table, move |conn| plan_table_blocking(conn, &checked.plan(&spec, Sqlite)?)).await
    }

    async fn load(&self, req: &LoadRequest<'_>) -> Result<LoadResult, WarehouseError> {
        let spec = req.table.clone();
        let files: Vec<(FileKey, String)> = req.files.iter().map(|f| (f.key.clone(), f.fingerprint.clone())).collect();
        let load = Load {
            load_id: req.load_id.to_string(),
            now: req.now,
            with_parts: req.files.iter().map(|f| !f.parts.is_empty()).collect(),
            appends: self.appends.clone(),
        };
        let (passes_tx, mut passes) = mpsc::channel::<Pass>(1);
        let (conn, checked) = (self.conn.clone(), self.checked.clone());
        let worker = tokio::task::spawn_blocking(move || {
            load_blocking(&mut lock(&conn), &checked.plan(&spec, Sqlite)?, &files, &load, passes_tx)
        });

        // When the thread fails, its error comes out of the join below.
        let mut streamed = Ok(());
        while let Some(pass) = passes.recv().await {
            streamed = stream_parts(req, &pass.decisions, &pass.batches).await;
            if streamed.is_err() {
                break;
            }
            // A closed channel means the thread ended the pass or stopped with an error.
            let _ = pass.batches.send(Msg::Done).await;
        }
        drop(passes);
        let result = worker.await.map_err(|e| join_error(&req.table.table, e))?;
        streamed?;
        result
    }

    async fn ledger(&self, object_url: Option<&str>) -> Result<Vec<LedgerRow>, WarehouseError> {
        let url = object_url.map(str::to_string);
        self.blocking("glueless_loads", move |conn| {
            let t = "glueless_loads";
            let mut stmt = conn
                .prepare(
                    "SELECT object_url, object_version, fingerprint, load_id, dataset, table_name, rows_loaded, loaded_at
                     FROM main.glueless_loads WHERE ?1 IS NULL OR object_url = ?1
                     ORDER BY loaded_at DESC, rowid DESC",
                )
                .map_err(|e| table_error(t, e))?;
            let rows = stmt
                .query_map([url], |r| {
                    Ok(LedgerRow {
                        object_url: r.get(0)?,
                        object_version: r.get(1)?,
                        fingerprint: r.get(2)?,
                        load_id: r.get(3)?,
                        dataset: r.get(4)?,
                        table_name: r.get(5)?,
                        rows_loaded: r.get::<_, i64>(6)?.max(0) as u64,
                        loaded_at: r.get(7)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| table_error(t, e))?;
            Ok(rows)
        })
        .await
    }

    async fn fact_rows(&self, table: &TableSpec) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
        let (spec, checked) = (table.clone(), self.checked.clone());
        self.blocking(&table.table, move |conn| fact_rows_blocking(conn, &checked.plan(&spec, Sqlite)?)).await
    }
}

/// Reads the parts of the files to load, in request order, batch by batch.
async fn stream_parts(
    req: &LoadRequest<'_>,
    decisions: &Decisions,
    tx: &mpsc::Sender<Msg>,
) -> Result<(), WarehouseError> {
    for (i, file) in req.files.iter().enumerate() {
        if !decisions.get(i).is_some_and(Decision::is_load) {
            continue;
        }
        for part in &file.parts {
            let mut reader = PartReader::open(req.table, part, arrow_type).await?;
            while let Some(batch) = reader.next().await {
                let (columns, rows) = batch?;
                if tx.send(Msg::Batch { file: i, columns, rows }).await.is_err() {
                    // The SQLite thread stopped with an error; the caller reports it.
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The type the SQLite thread reads a column type as: both integer widths as 64-bit, since
/// SQLite has one INTEGER.
fn read_type(ty: SqlType) -> SqlType {
    match ty {
        SqlType::Int32 => SqlType::Int64,
        ty => ty,
    }
}

fn arrow_type(ty: SqlType) -> DataType {
    read_type(ty).arrow_type()
}

impl Cells<'_> {
    /// Binds the cell at `row` to parameter `param` (text forms are built in `buf`).
    fn bind(&self, stmt: &mut Statement<'_>, param: usize, row: usize, buf: &mut String) -> Result<(), String> {
        if self.is_null(row) {
            return stmt.raw_bind_parameter(param, Null).map_err(|e| e.to_string());
        }
        buf.clear();
        let r = match self {
            Cells::Text(a) => stmt.raw_bind_parameter(param, a.value(row)),
            Cells::Int64(a) => stmt.raw_bind_parameter(param, a.value(row)),
            Cells::Int32(a) => stmt.raw_bind_parameter(param, a.value(row)),
            Cells::Float(a) => stmt.raw_bind_parameter(param, a.value(row)),
            Cells::Bool(a) => stmt.raw_bind_parameter(param, a.value(row) as i64),
            Cells::Decimal(a, scale) => {
                decimal_text(buf, a.value(row), *scale);
                stmt.raw_bind_parameter(param, buf.as_str())
            }
            Cells::Date(a) => {
                date_text(buf, a.value(row))?;
                stmt.raw_bind_parameter(param, buf.as_str())
            }
            Cells::Time(a) => {
                time_text(buf, a.value(row))?;
                stmt.raw_bind_parameter(param, buf.as_str())
            }
            Cells::Timestamp(a) => {
                timestamp_text(buf, a.value(row))?;
                stmt.raw_bind_parameter(param, buf.as_str())
            }
        };
        r.map_err(|e| e.to_string())
    }

    /// Binds a key that sorts like the value: the value itself, but for a decimal a
    /// fixed-width text of its unscaled integer offset to be non-negative.
    fn bind_sort_key(
        &self,
        stmt: &mut Statement<'_>,
        param: usize,
        row: usize,
        buf: &mut String,
    ) -> Result<(), String> {
        match self {
            Cells::Decimal(a, _) if !a.is_null(row) => {
                buf.clear();
                let offset = (a.value(row) as u128) ^ (1u128 << 127);
                let _ = write!(buf, "{offset:039}");
                stmt.raw_bind_parameter(param, buf.as_str()).map_err(|e| e.to_string())
            }
            _ => self.bind(stmt, param, row, buf),
        }
    }
}

/// `v` unscaled at `scale`, with exactly `scale` digits after the point.
fn decimal_text(out: &mut String, v: i128, scale: i8) {
    if scale <= 0 {
        let _ = write!(out, "{v}");
        if v != 0 {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
        return;
    }
    let scale = scale as usize;
    let digits = v.unsigned_abs().to_string();
    if v < 0 {
        out.push('-');
    }
    if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
}

fn date_text(out: &mut String, days: i32) -> Result<(), String> {
    let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(days as i64)))
        .ok_or_else(|| format!("date {days} days from 1970-01-01 is out of range"))?;
    ymd_text(out, d);
    Ok(())
}

/// `YYYY-MM-DD`, digit by digit (a `strftime` per value was a few per cent of a load); a year
/// outside 0000–9999 (validation keeps them out of SQLite) as chrono writes it.
fn ymd_text(out: &mut String, d: chrono::NaiveDate) {
    use chrono::Datelike;
    match u32::try_from(d.year()) {
        Ok(year) if year <= 9999 => {
            digits(out, year, 4);
            out.push('-');
            digits(out, d.month(), 2);
            out.push('-');
            digits(out, d.day(), 2);
        }
        _ => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
    }
}

/// `v` in exactly `width` decimal digits (`v` has no more).
fn digits(out: &mut String, v: u32, width: u32) {
    for p in (0..width).rev() {
        out.push(char::from(b'0' + (v / 10u32.pow(p) % 10) as u8));
    }
}

fn time_text(out: &mut String, micros: i64) -> Result<(), String> {
    if !(0..86_400_000_000).contains(&micros) {
        return Err(format!("time of {micros} µs after midnight is out of range"));
    }
    let s = micros / 1_000_000;
    let _ = write!(out, "{:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, micros % 1_000_000);
    Ok(())
}

fn timestamp_text(out: &mut String, micros: i64) -> Result<(), String> {
    use chrono::Timelike;
    let t = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| format!("datetime of {micros} µs since the epoch is out of range"))?;
    ymd_text(out, t.date_naive());
    out.push(' ');
    digits(out, t.hour(), 2);
    out.push(':');
    digits(out, t.minute(), 2);
    out.push(':');
    digits(out, t.second(), 2);
    out.push('.');
    digits(out, micros.rem_euclid(1_000_000) as u32, 6);
    Ok(())
}

/// SQL that is true when decimal text `a` is greater than decimal text `b` (both canonical,
/// same scale): as REAL first, then exactly by sign, length and digits when the REALs tie.
fn decimal_greater(a: &str, b: &str) -> String {
    format!(
        "(CAST({a} AS REAL) > CAST({b} AS REAL) OR (CAST({a} AS REAL) = CAST({b} AS REAL) AND \
         CASE WHEN (substr({a}, 1, 1) = '-') <> (substr({b}, 1, 1) = '-') THEN substr({b}, 1, 1) = '-' \
         WHEN substr({a}, 1, 1) = '-' THEN length({a}) < length({b}) OR (length({a}) = length({b}) AND {a} < {b}) \
         ELSE length({a}) > length({b}) OR (length({a}) = length({b}) AND {a} > {b}) END))"
    )
}

/// What one load needs besides its plan and files.
struct Load {
    load_id: String,
    now: Millis,
    /// Per file of the request: whether it has parts to read.
    with_parts: Vec<bool>,
    appends: Arc<Appends>,
}

/// How [`fill`] writes each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Into the staging table, with the bookkeeping columns ([`fill_sql`]).
    Staging,
    /// Into the empty fact table, as steps 2–5 would leave it ([`direct_sql`]).
    Upsert,
    /// Into the fact table as it is ([`append_sql`]); the table may refuse a row.
    Append,
}

fn load_blocking(
    conn: &mut Connection,
    plan: &LoadPlan<'_, Sqlite>,
    files: &[(FileKey, String)],
    load: &Load,
    passes: mpsc::Sender<Pass>,
) -> Result<LoadResult, WarehouseError> {
    let spec = plan.spec;
    let t = spec.table.as_str();
    let err = |e: rusqlite::Error| load_error(t, e);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
    tx.execute_batch(LEDGER_DDL).map_err(err)?;
    match object_kind(&tx, t).map_err(err)? {
        Some(kind) if kind == "table" => {}
        Some(kind) => return Err(WarehouseError::not_a_table(t, &kind)),
        None => return Err(WarehouseError::no_table(t)),
    }

    // 1. The ledger decision.
    let decisions = {
        let mut same_version = tx.prepare(&plan.ledger_same_version()).map_err(err)?;
        let mut latest = tx.prepare(&plan.ledger_latest()).map_err(err)?;
        let mut recorded = Vec::with_capacity(files.len());
        for (key, _) in files {
            recorded.push(Recorded {
                same_version: same_version.query_row([&key.url, &key.version], |r| r.get(0)).optional().map_err(err)?,
                latest: latest.query_row([&key.url], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(err)?,
            });
        }
        decide(&load.load_id, files.iter().map(|(k, fp)| (k, fp.as_str())), &recorded)
    };
    // One reading of the parts (a pass), in the order of the request.
    let pass = || -> Result<mpsc::Receiver<Msg>, WarehouseError> {
        let (batches, rx) = mpsc::channel::<Msg>(CHANNEL_BATCHES);
        passes.blocking_send(Pass { decisions: decisions.clone(), batches }).map_err(|_| aborted(t))?;
        Ok(rx)
    };

    let mut result =
        LoadResult { files: Vec::with_capacity(files.len()), rows_superseded: 0, rows_merged: 0, direct: false };
    let any_rows = decisions.iter().zip(&load.with_parts).any(|(d, &parts)| d.is_load() && parts);
    let rows_per_file = if !any_rows {
        // Nothing to read: no staging table, no upsert; only the ledger.
        vec![0; files.len()]
    } else if let Some(rows_per_file) = straight_in(&tx, plan, files, load, &pass, &mut result)? {
        result.direct = true;
        rows_per_file
    } else {
        // 2. A fresh staging table, filled from the parts the async side reads.
        tx.execute_batch(&plan.create_staging()).map_err(err)?;
        let filled = fill(&tx, plan, Fill::Staging, files, &mut pass()?)?.expect("staging is not refused");

        // 3–5. Drop what is not newer, keep one row per key, upsert.
        for step in plan.steps() {
            let rows = tx.execute(&step.sql, []).map_err(err)? as u64;
            step.counts.add(rows, &mut result);
        }
        tx.execute_batch(&format!("DROP TABLE {}", Sqlite.staging())).map_err(err)?;
        filled.rows_per_file
    };
    crate::pipeline::faults::point("before-ledger");

    // 6. The ledger.
    {
        let mut ledger = tx.prepare(&plan.ledger_insert()).map_err(err)?;
        for (((key, fingerprint), decision), &rows) in files.iter().zip(&decisions).zip(&rows_per_file) {
            if decision.is_load() {
                ledger
                    .execute(rusqlite::params![
                        key.url,
                        key.version,
                        fingerprint,
                        load.load_id,
                        spec.dataset,
                        spec.table,
                        rows as i64,
                        load.now
                    ])
                    .map_err(err)?;
            }
            result.files.push(decision.file_load(rows));
        }
    }
    tx.commit().map_err(err)?;
    Ok(result)
}

/// The savepoint of an attempt straight into a table with rows.
const APPEND: &str = "glueless_append";

/// Steps 2–5 straight into the fact table, when that is tried ("Straight into the table" in the
/// load plan): into an empty table without triggers the upsert of [`direct_sql`], into any other
/// (when [`Appends`] says to try) plain inserts under a savepoint, rolled back when the table
/// refuses a row. The rows read per file when the rows went in (`result` has their counts),
/// `None` when the load takes the staging steps.
fn straight_in(
    tx: &rusqlite::Transaction<'_>,
    plan: &LoadPlan<'_, Sqlite>,
    files: &[(FileKey, String)],
    load: &Load,
    pass: &impl Fn() -> Result<mpsc::Receiver<Msg>, WarehouseError>,
    result: &mut LoadResult,
) -> Result<Option<Vec<u64>>, WarehouseError> {
    let t = plan.spec.table.as_str();
    let err = |e: rusqlite::Error| load_error(t, e);
    let (has_rows, triggers) = fact_state(tx, plan).map_err(err)?;
    if !has_rows && !triggers {
        // The transaction holds the write lock, so the table stays empty but for this load's rows.
        let filled = fill(tx, plan, Fill::Upsert, files, &mut pass()?)?.expect("an upsert is not refused");
        let kept: i64 = tx.query_row(&format!("SELECT count(*) FROM {}", plan.fact), [], |r| r.get(0)).map_err(err)?;
        result.rows_merged = kept as u64;
        result.rows_superseded = filled.rows_per_file.iter().sum::<u64>().saturating_sub(kept as u64);
        return Ok(Some(filled.rows_per_file));
    }
    if !load.appends.try_now(t) {
        return Ok(None);
    }
    tx.execute_batch(&format!("SAVEPOINT {APPEND}")).map_err(err)?;
    let filled = fill(tx, plan, Fill::Append, files, &mut pass()?)?;
    load.appends.record(t, filled.is_some());
    match filled {
        Some(filled) => {
            tx.execute_batch(&format!("RELEASE {APPEND}")).map_err(err)?;
            result.rows_merged = filled.changed;
            Ok(Some(filled.rows_per_file))
        }
        None => {
            tx.execute_batch(&format!("ROLLBACK TO {APPEND}; RELEASE {APPEND}")).map_err(err)?;
            Ok(None)
        }
    }
}

/// Whether the fact table has a row, and whether it has a trigger (which could tell the upsert
/// of a repeated key into an empty table from the staging steps).
fn fact_state(tx: &rusqlite::Transaction<'_>, plan: &LoadPlan<'_, Sqlite>) -> rusqlite::Result<(bool, bool)> {
    let has_rows = tx.query_row(&plan.fact_has_rows(), [], |_| Ok(())).optional()?.is_some();
    let triggers: i64 = tx.query_row(
        "SELECT count(*) FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE",
        [&plan.spec.table],
        |r| r.get(0),
    )?;
    Ok((has_rows, triggers > 0))
}

/// What [`fill`] wrote.
struct Filled {
    /// Rows read, per file of the request.
    rows_per_file: Vec<u64>,
    /// Rows the statements inserted or changed.
    changed: u64,
}

/// Runs the statement of `how` for every row of the batches the async side sends until it
/// says `Done`, binding the spec's columns and, for the staging table, the file position, row
/// number and sort key. `None` when the table refused a row of an [`Fill::Append`] (a
/// constraint: a key it has, or one that came twice); the caller rolls back what it wrote.
fn fill(
    tx: &rusqlite::Transaction<'_>,
    plan: &LoadPlan<'_, Sqlite>,
    how: Fill,
    files: &[(FileKey, String)],
    rx: &mut mpsc::Receiver<Msg>,
) -> Result<Option<Filled>, WarehouseError> {
    let spec = plan.spec;
    let t = spec.table.as_str();
    let err = |e: rusqlite::Error| load_error(t, e);
    let n = spec.columns.len();
    let mut filled = Filled { rows_per_file: vec![0u64; files.len()], changed: 0 };
    let mut row_number = 0i64;
    let sql = match how {
        Fill::Staging => fill_sql(plan),
        Fill::Upsert => direct_sql(plan),
        Fill::Append => append_sql(plan),
    };
    let mut insert = tx.prepare(&sql).map_err(err)?;
    let mut buf = String::new();
    loop {
        let (file, columns, rows) = match rx.blocking_recv() {
            None => return Err(aborted(t)),
            Some(Msg::Done) => return Ok(Some(filled)),
            Some(Msg::Batch { file, columns, rows }) => (file, columns, rows),
        };
        // A staged value this file's rows cannot be written as.
        let bad = |message: String| {
            let message = format!("staging file {} failed: {message}", files[file].0.url);
            WarehouseError::load(t, message, LoadCause::Rows)
        };
        let cells = columns
            .iter()
            .zip(&spec.columns)
            .map(|(a, c)| {
                Cells::new(a, read_type(c.ty))
                    .ok_or_else(|| bad(format!("column `{}` is of type {}, not {:?}", c.name, a.data_type(), c.ty)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if cells.len() != n {
            return Err(bad(format!("{} columns instead of {n}", cells.len())));
        }
        for r in 0..rows {
            for (j, c) in cells.iter().enumerate() {
                c.bind(&mut insert, j + 1, r, &mut buf).map_err(&bad)?;
            }
            if how == Fill::Staging {
                insert.raw_bind_parameter(n + 1, file as i64).map_err(err)?;
                insert.raw_bind_parameter(n + 2, row_number).map_err(err)?;
                match spec.version {
                    Some(v) => cells[v].bind_sort_key(&mut insert, n + 3, r, &mut buf).map_err(&bad)?,
                    None => insert.raw_bind_parameter(n + 3, Null).map_err(err)?,
                }
            }
            match insert.raw_execute() {
                Ok(changed) => filled.changed += changed as u64,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if how == Fill::Append && e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(err(e)),
            }
            row_number += 1;
            filled.rows_per_file[file] += 1;
        }
    }
}

fn aborted(table: &str) -> WarehouseError {
    WarehouseError::load(table, "the load was abandoned before all staged files were read", LoadCause::Transient)
}

// ---------------------------------------------------------------------------------------------
// Reading back.

fn fact_rows_blocking(
    conn: &mut Connection,
    plan: &LoadPlan<'_, Sqlite>,
) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
    let spec = plan.spec;
    let t = spec.table.as_str();
    let sql = plan.select_all();
    let mut stmt = conn.prepare(&sql).map_err(|e| table_error(t, e))?;
    let mut out = stmt
        .query_map([], |r| spec.columns.iter().enumerate().map(|(i, c)| Ok(canonical(r.get_ref(i)?, c.ty))).collect())
        .and_then(|rows| rows.collect::<Result<Vec<Vec<serde_json::Value>>, _>>())
        .map_err(|e| table_error(t, e))?;
    // Text order is not number order for decimals: sort those keys as numbers.
    if spec.key.iter().any(|&k| matches!(spec.columns[k].ty, SqlType::Decimal { .. })) {
        out.sort_by(|a, b| {
            spec.key
                .iter()
                .map(|&k| compare_cells(&a[k], &b[k], spec.columns[k].ty))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    Ok(out)
}

fn compare_cells(a: &serde_json::Value, b: &serde_json::Value, ty: SqlType) -> std::cmp::Ordering {
    use serde_json::Value as J;
    use std::cmp::Ordering;
    let unscaled = |s: &str| s.replace('.', "").parse::<i128>().ok();
    match (a, b) {
        (J::Null, J::Null) => Ordering::Equal,
        (J::Null, _) => Ordering::Less,
        (_, J::Null) => Ordering::Greater,
        (J::String(x), J::String(y)) => match (ty, unscaled(x), unscaled(y)) {
            (SqlType::Decimal { .. }, Some(x), Some(y)) => x.cmp(&y),
            _ => x.cmp(y),
        },
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        },
        (J::Bool(x), J::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// A stored value in the canonical JSON form of the port.
fn canonical(v: ValueRef<'_>, ty: SqlType) -> serde_json::Value {
    use serde_json::Value as J;
    let float = |f: f64| serde_json::Number::from_f64(f).map_or_else(|| J::String(f.to_string()), J::Number);
    match (v, ty) {
        (ValueRef::Null, _) => J::Null,
        (ValueRef::Integer(i), SqlType::Boolean) => J::Bool(i != 0),
        (ValueRef::Integer(i), SqlType::Float64) => float(i as f64),
        (ValueRef::Integer(i), SqlType::Decimal { scale, .. }) => {
            let mut s = String::new();
            match (i as i128).checked_mul(10i128.pow(scale.clamp(0, 38) as u32)) {
                Some(v) => decimal_text(&mut s, v, scale),
                None => s = i.to_string(),
            }
            J::String(s)
        }
        (ValueRef::Integer(i), _) => J::from(i),
        (ValueRef::Real(f), SqlType::Decimal { scale, .. }) => J::String(format!("{f:.*}", scale.max(0) as usize)),
        (ValueRef::Real(f), _) => float(f),
        (ValueRef::Text(t), SqlType::Timestamp) => {
            let s = String::from_utf8_lossy(t);
            match chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f") {
                Ok(d) => J::String(d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
                Err(_) => J::String(s.into_owned()),
            }
        }
        (ValueRef::Text(t), _) => J::String(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Blob(b), _) => J::String(String::from_utf8_lossy(b).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        let text = |v: i128, s: i8| {
            let mut out = String::new();
            decimal_text(&mut out, v, s);
            out
        };
        assert_eq!(text(1250, 2), "12.50");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(0, 2), "0.00");
        assert_eq!(text(7, 0), "7");
        assert_eq!(text(7, -2), "700");
        assert_eq!(text(i128::MIN + 1, 3).len(), 40 + 1);
    }

    #[test]
    fn temporal_text_forms() {
        let mut s = String::new();
        date_text(&mut s, 20_412).unwrap();
        assert_eq!(s, "2025-11-20");
        s.clear();
        time_text(&mut s, 49_500_000_001).unwrap();
        assert_eq!(s, "13:45:00.000001");
        s.clear();
        timestamp_text(&mut s, 0).unwrap();
        assert_eq!(s, "1970-01-01 00:00:00.000000");
        // Before the epoch, the fraction still counts up from the second.
        for (micros, text) in [
            (-1, "1969-12-31 23:59:59.999999"),
            (1_763_646_300_123_456, "2025-11-20 13:45:00.123456"),
            (-62_135_596_800_000_000, "0001-01-01 00:00:00.000000"),
            (253_402_300_799_999_999, "9999-12-31 23:59:59.999999"),
        ] {
            s.clear();
            timestamp_text(&mut s, micros).unwrap();
            assert_eq!(s, text);
            let chrono = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            assert_eq!(s, chrono.format("%Y-%m-%d %H:%M:%S%.6f").to_string(), "as chrono writes it");
        }
        s.clear();
        date_text(&mut s, -719_528).unwrap();
        assert_eq!(s, "0000-01-01");
        assert!(time_text(&mut s, -1).is_err());
    }

    #[test]
    fn sqlite_errors_say_who_is_to_blame() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL CHECK (qty > 0));
             CREATE TRIGGER no13 BEFORE INSERT ON t WHEN NEW.qty = 13 BEGIN SELECT RAISE(ABORT, 'no 13'); END;",
        )
        .unwrap();
        let cause = |sql: &str| load_cause(&conn.execute_batch(sql).expect_err(sql));
        assert_eq!(cause("INSERT INTO t VALUES (1, NULL)"), LoadCause::Rows);
        assert_eq!(cause("INSERT INTO t VALUES (1, -1)"), LoadCause::Rows);
        assert_eq!(cause("INSERT INTO t VALUES (1, 13)"), LoadCause::Rows);
        assert_eq!(cause("INSERT INTO t (nope) VALUES (1)"), LoadCause::Setup);
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert_eq!(load_cause(&busy), LoadCause::Transient);
    }

    #[test]
    fn declared_types_compare_by_affinity() {
        for (declared, ty) in [
            ("BIGINT", SqlType::Int64),
            ("int", SqlType::Boolean),
            ("VARCHAR(20)", SqlType::Text),
            ("TEXT", SqlType::Timestamp),
            ("DOUBLE", SqlType::Float64),
        ] {
            assert!(Sqlite.same_type(declared, ty), "{declared} holds {ty:?}");
        }
        assert!(!Sqlite.same_type("REAL", SqlType::Int64));
        assert!(!Sqlite.same_type("TEXT", SqlType::Float64));
        assert!(!Sqlite.same_type("", SqlType::Text), "no type is BLOB affinity");
        assert!(Sqlite.same_name("ID", "id") && !Sqlite.same_name("id", "ids"));
    }

    #[test]
    fn identifiers_are_quoted_whole() {
        assert_eq!(quote(r#"unit "price" (EUR)"#), r#""unit ""price"" (EUR)""#);
        assert_eq!(quote("logistics.fact"), "\"logistics.fact\"");
    }

    #[test]
    fn decimal_comparison_is_numeric() {
        let conn = Connection::open_in_memory().unwrap();
        let gt = |a: &str, b: &str| -> bool {
            conn.query_row(&format!("SELECT {}", decimal_greater("?1", "?2")), [a, b], |r| r.get(0)).unwrap()
        };
        assert!(gt("10.00", "9.50"));
        assert!(!gt("9.50", "10.00"));
        assert!(gt("-9.50", "-10.00"));
        assert!(gt("0.00", "-0.01"));
        assert!(!gt("1.00", "1.00"));
        assert!(gt("12345678901234567.01", "12345678901234567.00"));
        assert!(gt("-12345678901234567.00", "-12345678901234567.01"));
    }
}
