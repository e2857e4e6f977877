//! The [`Warehouse`] port on PostgreSQL 15 or later (feature `postgres`, on by default).
//!
//! It owns, in the database the URL names:
//!
//! - the fact table of each dataset, created by [`Warehouse::ensure_table`] from the
//!   [`TableSpec`] (and its schema, for a contract `table = "schema.table"`, when missing);
//! - the ledger `glueless_loads(object_url, object_version, fingerprint, load_id, dataset,
//!   table_name, rows_loaded, loaded_at /* ms since the epoch */, seq)`, primary key
//!   `(object_url, object_version)`: the columns of the SQLite ledger plus `seq`, an identity
//!   column that orders rows of the same millisecond by insertion. It is created (when missing)
//!   by the first `ensure_table` or load, **unqualified**: in the first schema of the
//!   connection's `search_path` (normally `public`), where unqualified fact tables go too. One
//!   ledger serves every dataset of the database. To keep glueless's tables in a schema of
//!   their own, set the search path in the URL:
//!   `postgres://glueless@db:5432/analytics?options=-csearch_path%3Dglueless`;
//! - a temporary staging table per load (`pg_temp.glueless_staging`, `ON COMMIT DROP`),
//!   private to the session.
//!
//! # Types
//!
//! | contract type | staged Parquet (Arrow) | [`SqlType`] | PostgreSQL column |
//! | --- | --- | --- | --- |
//! | `string` | Utf8 | `Text` | `text` |
//! | `integer` | Int64 | `Int64` | `bigint` |
//! | `year` | Int32 | `Int32` | `integer` |
//! | `number` | Float64 | `Float64` | `double precision` |
//! | `number` with `decimal = [p, s]` | Decimal128(p, s) | `Decimal` | `numeric(p, s)` (exact) |
//! | `boolean` | Boolean | `Boolean` | `boolean` |
//! | `date` | Date32 | `Date` | `date` |
//! | `time` | Time64(µs) | `Time` | `time` (without time zone) |
//! | `datetime` | Timestamp(µs, UTC) | `Timestamp` | `timestamptz` |
//!
//! Columns that are not nullable are `NOT NULL`; the key columns are the `PRIMARY KEY`. An
//! existing fact table is compared with the contract ([`crate::ports::load_plan::evolve`]):
//! new optional fields are added (`ALTER TABLE … ADD COLUMN`, with a row in
//! `glueless_schema_changes`, in `ensure_table`'s transaction, under the DDL lock and the
//! table's load lock); anything else that differs, or a table without a `PRIMARY KEY` or
//! `UNIQUE` index on exactly the key, is refused with the SQL an operator could run.
//!
//! # A load
//!
//! The algorithm and its statements are the load plan's ([`crate::ports::load_plan`]; the
//! SQL is in `tests/golden/postgres/`), in one transaction (`READ COMMITTED`). What is
//! PostgreSQL's own:
//!
//! - first a transaction-scoped advisory lock on the fact table
//!   (`pg_advisory_xact_lock(1735161189, <table oid>)`), so that loads into one table
//!   serialize — across processes and machines — and each sees the ledger and the fact rows
//!   the previous one committed; loads into different tables run side by side;
//! - the Parquet parts of the files to load are read batch by batch and streamed into the
//!   staging table with `COPY … FROM STDIN (FORMAT binary)` (never a whole file in memory);
//!   when no file to load has rows, there is no staging table and no `MERGE`;
//! - the rows go straight into the fact table ("Straight into the table" in the load plan) by
//!   the same binary `COPY`, under `SAVEPOINT glueless_direct`, when the table is empty or
//!   [`Appends`] says to try; a refused row rolls back to the savepoint and the parts are read
//!   again into the staging table;
//! - the upsert is a `MERGE`.
//!
//! Errors roll the whole transaction back. By SQLSTATE (see `sqlstate_cause`): a lost
//! connection, a serialization failure, a deadlock, a lock or statement timeout or a server
//! shutting down is a `Load` that passes ([`LoadCause::Transient`]); a data exception (22), an
//! integrity violation (23: NOT NULL, CHECK, UNIQUE) or a trigger's `RAISE` (P0) is a refusal
//! of rows ([`LoadCause::Rows`]: the pipeline finds the file); a missing or unreadable part is
//! `Staged`; anything else (a missing grant or column, a view where the table should be) needs
//! someone to act. Values PostgreSQL cannot store ([`WarehouseLimits::postgres`]: NUL in text,
//! dates before 4714-11-24 BC) are row errors of validation before they get here.
//!
//! # Names
//!
//! Every identifier is quoted (`"…"`, a `"` inside doubled), so column names with spaces,
//! parentheses or quotes work and no name can inject SQL; names are case-sensitive. A contract
//! `table = "sales.fact_orders"` is the table `"sales"."fact_orders"`; a name without a dot
//! goes to the `search_path`. Names longer than 63 bytes are refused (PostgreSQL would cut them).
//!
//! # Configuration and grants
//!
//! The `[warehouse]` keys, the URL's parameters and the grants the role needs are documented
//! for users in docs/warehouses.md ("PostgreSQL"). A password in the URL still works but is
//! never shown: [`Warehouse::describe`] and every error print the URL without it. One
//! connection is kept, checked with an empty query at the start of each call and opened again
//! when it broke; the calls of one process go through it one at a time.

use crate::adapters::staged_parquet::{Cells, PartReader};
use crate::ports::load_plan::{
    Appends, CheckedSpecs, Decision, Dialect, ExistingColumn, ExistingTable, LoadPlan, Recorded, TableChange, decide,
    quote, spec_fingerprint, staged,
};
use crate::ports::{
    LedgerRow, LoadCause, LoadRequest, LoadResult, SqlType, TableSpec, Warehouse, WarehouseError, WarehouseLimits,
};
use crate::settings::WarehouseSettings;
use arrow::array::Array;
use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

/// First key of glueless's advisory locks ("glue"); the second is a table's oid, or 0 for DDL.
const LOCK_SPACE: i32 = 0x676c_7565;
/// How long opening a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Days from 1970-01-01 (Arrow) to 2000-01-01 (PostgreSQL).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 (Arrow) to 2000-01-01 (PostgreSQL).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const DAY_MICROS: i64 = 86_400_000_000;
/// PostgreSQL's longest identifier (NAMEDATALEN - 1).
const MAX_NAME_BYTES: usize = 63;

const LEDGER: &str = "glueless_loads";
/// The savepoint of a COPY straight into an empty fact table.
const DIRECT: &str = "glueless_direct";
const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS glueless_loads (
    object_url text NOT NULL,
    object_version text NOT NULL,
    fingerprint text NOT NULL,
    load_id text NOT NULL,
    dataset text NOT NULL,
    table_name text NOT NULL,
    rows_loaded bigint NOT NULL,
    loaded_at bigint NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (object_url, object_version)
)";

/// The warehouse in a PostgreSQL database.
pub struct PostgresWarehouse {
    /// The URL without its password.
    target: String,
    config: Config,
    tls: Tls,
    client: tokio::sync::Mutex<Option<Client>>,
    /// The table specs checked against PostgreSQL's limits.
    checked: CheckedSpecs,
    /// When a load into a table with rows tries them straight into it.
    appends: Appends,
}

#[derive(Clone)]
enum Tls {
    Disable,
    Require(MakeRustlsConnect),
}

impl PostgresWarehouse {
    /// Connects to the database of `s.url` (the password from `s.password_file`, relative to
    /// `base_dir`, else from the variable `s.password_env`), with TLS when `s.tls = "require"`.
    pub async fn connect(s: &WarehouseSettings, base_dir: &Path) -> Result<PostgresWarehouse, WarehouseError> {
        let target = crate::redact::url(&s.url);
        let fail = |message: String| WarehouseError::Connect { target: target.clone(), message, unreachable: false };
        let mut config = Config::from_str(&s.url).map_err(|e| {
            fail(format!(
                "warehouse.url is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): {}",
                crate::redact::text(&chain(&e))
            ))
        })?;
        if !s.password_file.is_empty() {
            let path = base_dir.join(&s.password_file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| fail(format!("cannot read warehouse.password_file {}: {e}", path.display())))?;
            config.password(text.trim());
        } else if !s.password_env.is_empty()
            && let Ok(password) = std::env::var(&s.password_env)
        {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("glueless");
        }
        let tls = match s.tls.trim().to_ascii_lowercase().as_str() {
            "disable" | "" => {
                config.ssl_mode(SslMode::Disable);
                Tls::Disable
            }
            "require" => {
                config.ssl_mode(SslMode::Require);
                Tls::Require(rustls_connector(s, base_dir).map_err(fail)?)
            }
            other => {
                return Err(fail(format!(
                    "warehouse.tls = \"{other}\" is not one of \"disable\", \"require\"; set warehouse.tls (or GLUELESS__WAREHOUSE__TLS)"
                )));
            }
        };
        let w = PostgresWarehouse {
            target,
            config,
            tls,
            client: tokio::sync::Mutex::new(None),
            checked: CheckedSpecs::default(),
            appends: Appends::default(),
        };
        let client = w.open().await?;
        *w.client.lock().await = Some(client);
        Ok(w)
    }

    /// A new connection, its driver running on the runtime.
    async fn open(&self) -> Result<Client, WarehouseError> {
        let fail = |e: tokio_postgres::Error| WarehouseError::Connect {
            target: self.target.clone(),
            message: chain(&e),
            unreachable: is_unreachable(&e),
        };
        match &self.tls {
            Tls::Disable => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(fail)?;
                tokio::spawn(async move {
                    // Its end shows as a closed client, which the next call replaces.
                    let _ = connection.await;
                });
                Ok(client)
            }
            Tls::Require(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(fail)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
        }
    }

    /// The connection, held until the guard is dropped. A kept connection is checked with an
    /// empty query first (one round trip), so that one the server or the network dropped while
    /// it was idle is replaced instead of failing the call.
    async fn session(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, WarehouseError> {
        let mut guard = self.client.lock().await;
        let alive = match guard.as_ref() {
            Some(client) if !client.is_closed() => client.batch_execute("").await.is_ok(),
            _ => false,
        };
        if !alive {
            *guard = None;
            *guard = Some(self.open().await?);
        }
        Ok(guard)
    }

    fn lost(&self) -> WarehouseError {
        WarehouseError::Connect {
            target: self.target.clone(),
            message: "the connection is gone".into(),
            unreachable: true,
        }
    }
}

/// rustls with the system's roots and `ca_file`, and an explicit crypto provider (more than
/// one is compiled in, so the process default is ambiguous).
fn rustls_connector(s: &WarehouseSettings, base_dir: &Path) -> Result<MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if !s.ca_file.is_empty() {
        let path = base_dir.join(&s.ca_file);
        let pem = std::fs::read(&path).map_err(|e| format!("cannot read warehouse.ca_file {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("warehouse.ca_file {} is not PEM: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("warehouse.ca_file {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("warehouse.ca_file {} holds no CERTIFICATE", path.display()));
        }
    }
    if roots.is_empty() {
        return Err(
            "tls = \"require\" but the system has no CA certificates; set warehouse.ca_file to the server's CA (PEM)"
                .into(),
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error with its causes (tokio-postgres prints only the outermost one) or, from the
/// server, its message, SQLSTATE, detail and hint.
fn chain(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            let _ = write!(m, "; {detail}");
        }
        if let Some(hint) = db.hint() {
            let _ = write!(m, "; hint: {hint}");
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(m, ": {s}");
        source = s.source();
    }
    m
}

/// Whether a failed connection says that the server did not answer, so the same settings can
/// work later: a network error (refused, timed out, reset) other than a host name that does not
/// exist, or a server that is starting, shutting down or out of connections. Anything else (a
/// role, password or database the server refuses, TLS, the URL) is the settings' fault.
fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        // 08: connection exception; 53: insufficient resources; 57P01-57P03: shutting down,
        // or "the database system is starting up".
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("53") || code.starts_with("57P");
    }
    if e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return !host_not_found(io);
        }
        source = s.source();
    }
    false
}

/// A host name that the resolver says does not exist (rather than one it could not ask about):
/// a mistake in the URL. The standard library reports name lookups as text only
/// ("failed to lookup address information: …", getaddrinfo's own words).
fn host_not_found(e: &std::io::Error) -> bool {
    let m = e.to_string();
    ["Name or service not known", "No address associated with hostname", "nodename nor servname provided"]
        .iter()
        .any(|t| m.contains(t))
}

/// Why a statement failed, by SQLSTATE: a passing condition, rows the server refuses, or
/// something to fix in the database or glueless.
fn load_cause(e: &tokio_postgres::Error) -> LoadCause {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke, or the server did not answer in time.
        let gone = e.is_closed()
            || e.to_string() == "timeout waiting for server"
            || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        return if gone { LoadCause::Transient } else { LoadCause::Setup };
    };
    sqlstate_cause(code.code())
}

/// 08 connection, 40001 serialization failure, 40P01 deadlock, 40003 completion unknown (the
/// ledger makes a retry safe), 53 out of resources, 55P03 lock not available, 57014 canceled
/// (a statement or lock timeout), 57P01–57P03 and 57P05 shutting down or not yet up, 58030
/// I/O error: transient. 22 data exception (a NUL byte, a date out of range), 23 integrity
/// (NOT NULL, CHECK, UNIQUE, foreign key), 40002 a deferred constraint, P0 a trigger's
/// `RAISE`: the rows. The rest (42 a missing column or grant, …): setup.
fn sqlstate_cause(c: &str) -> LoadCause {
    match c {
        "40001" | "40P01" | "40003" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "57P05" | "58030" => {
            LoadCause::Transient
        }
        _ if c.starts_with("08") || c.starts_with("53") => LoadCause::Transient,
        "40002" => LoadCause::Rows,
        _ if c.starts_with("22") || c.starts_with("23") || c.starts_with("P0") => LoadCause::Rows,
        _ => LoadCause::Setup,
    }
}

fn is_transient(e: &tokio_postgres::Error) -> bool {
    load_cause(e) == LoadCause::Transient
}

fn load_error(table: &str, e: &tokio_postgres::Error) -> WarehouseError {
    WarehouseError::load(table, chain(e), load_cause(e))
}

fn table_error(table: &str, e: &tokio_postgres::Error) -> WarehouseError {
    WarehouseError::Table { table: table.to_string(), message: chain(e), retryable: is_transient(e) }
}

// ---------------------------------------------------------------------------------------------
// Names and DDL

/// PostgreSQL's dialect of the load plan.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "PostgreSQL"
    }

    fn column_type(&self, ty: SqlType) -> String {
        sql_type(ty)
    }

    /// Names PostgreSQL cannot keep: longer than 63 bytes (it would cut them), with a NUL, an
    /// empty schema or table name.
    fn check(&self, spec: &TableSpec) -> Result<(), String> {
        for c in &spec.columns {
            check_name(&c.name, "column")?;
        }
        let (schema, table) = match spec.table.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, spec.table.as_str()),
        };
        for part in schema.iter().chain([&table]) {
            if part.is_empty() {
                return Err(format!(
                    "`{}` is not a table name (`table` or `schema.table`); fix `table` in the contract",
                    spec.table
                ));
            }
            check_name(part, "table")?;
        }
        Ok(())
    }

    fn staging(&self) -> &'static str {
        "pg_temp.\"glueless_staging\""
    }

    /// Dropped at the commit; `DROP … IF EXISTS` first, for a session whose last load failed
    /// between the two.
    fn create_staging(&self, columns: &str) -> String {
        format!(
            "DROP TABLE IF EXISTS pg_temp.\"glueless_staging\";\nCREATE TEMP TABLE \"glueless_staging\" ({columns}) ON COMMIT DROP"
        )
    }

    /// Unquoted (the same lowercase name): the ledger is found through the `search_path`.
    fn ledger(&self) -> &'static str {
        "glueless_loads"
    }

    fn ledger_order(&self) -> &'static str {
        "\"seq\""
    }
}

/// How the staging table is filled: one binary COPY streamed from the parts.
fn fill_sql() -> String {
    format!("COPY {} FROM STDIN (FORMAT binary)", Postgres.staging())
}

/// For steps 3–5, this transaction only: `random_page_cost` at most 1.1. The steps join a staging
/// table (a batch: thousands of rows) to the fact table on its primary key. At the default 4 (a
/// model of spinning disks) the planner scans the whole fact table into a hash join instead of
/// probing the key's index, so every batch cost more as the table grew: 0.9 s per batch of
/// 20,000 rows at 3 million rows, against 32 ms through the index (EXPLAIN ANALYZE,
/// docs/performance.md). The planner still picks a hash join where the batch is as large as the
/// table. A server already tuned lower keeps its own value; `set_config(…, true)` is `SET LOCAL`.
const PROBE_BY_INDEX: &str =
    "SELECT set_config('random_page_cost', least(current_setting('random_page_cost')::float8, 1.1)::text, true)";

/// Statistics of the staging table for the planner of steps 3–5: of the columns they join,
/// partition and order on (the key and the version) only. Of every column, it cost as much as
/// the MERGE in a batch of small files (text columns are the dear ones).
fn analyze_sql(spec: &TableSpec) -> String {
    let columns: Vec<String> = spec.key.iter().chain(&spec.version).map(|&i| staged(i)).collect();
    format!("ANALYZE {} ({})", Postgres.staging(), columns.join(", "))
}

/// How rows go straight into an empty fact table: one binary COPY of the spec's columns.
fn direct_sql(plan: &LoadPlan<'_, Postgres>) -> String {
    format!("COPY {} ({}) FROM STDIN (FORMAT binary)", plan.fact, plan.column_names().join(", "))
}

/// The statements of one load into `spec`'s table, as reviewable text (the golden files).
pub fn load_sql(spec: &TableSpec) -> Result<String, WarehouseError> {
    let plan = LoadPlan::new(spec, Postgres)?;
    let mut sql = plan.render(&fill_sql());
    let _ = write!(
        sql,
        "\n-- 2-5 straight into the table, when it is empty or the last tries were not refused (a key it\n\
         -- has, a key twice, or anything else it refuses, rolls back to the savepoint and the load\n\
         -- takes steps 2-5)\n\n{};\n\n\
         SAVEPOINT {DIRECT};\n\n{};\n\nRELEASE SAVEPOINT {DIRECT};\n",
        plan.fact_has_rows(),
        direct_sql(&plan)
    );
    Ok(sql)
}

fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the {what} name `{name}` is {} bytes long; PostgreSQL keeps {MAX_NAME_BYTES}: use a shorter one",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err(format!(
            "the {what} name `{}` holds a NUL character, which PostgreSQL refuses",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// The PostgreSQL type of a column type.
fn sql_type(ty: SqlType) -> String {
    match ty {
        SqlType::Text => "text".into(),
        SqlType::Int64 => "bigint".into(),
        SqlType::Int32 => "integer".into(),
        SqlType::Float64 => "double precision".into(),
        SqlType::Decimal { precision, scale } => format!("numeric({precision}, {scale})"),
        SqlType::Boolean => "boolean".into(),
        SqlType::Date => "date".into(),
        SqlType::Time => "time".into(),
        SqlType::Timestamp => "timestamptz".into(),
    }
}

/// Creates the ledger when it is missing (checking first, so a role without `CREATE` works
/// once it exists). Takes the DDL lock when it creates.
async fn ensure_ledger(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    let exists: bool = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&LEDGER]).await?.get(0);
    if !exists {
        tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_SPACE]).await?;
        tx.batch_execute(LEDGER_DDL).await?;
    }
    Ok(())
}

/// The oid and `relkind` of what the (quoted) name resolves to, if anything.
async fn relation(tx: &Transaction<'_>, name: &str) -> Result<Option<(u32, i8)>, tokio_postgres::Error> {
    let row = tx.query_opt("SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = to_regclass($1)", &[&name]).await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

fn is_table(relkind: i8) -> bool {
    matches!(relkind as u8, b'r' | b'p')
}

fn not_a_table(table: &str, relkind: i8) -> WarehouseError {
    let kind = match relkind as u8 {
        b'v' => "view",
        b'm' => "materialized view",
        b'f' => "foreign table",
        b'S' => "sequence",
        b'i' | b'I' => "index",
        b'c' => "composite type",
        _ => "relation that is not a table",
    };
    WarehouseError::not_a_table(table, kind)
}

/// The fact table as it is (`None` when there is none), with the answers of the plan's NULL
/// checks; with `lock`, first the advisory lock the loads into it take, so that no load runs
/// between this read and the end of the transaction.
async fn existing_table(
    tx: &Transaction<'_>,
    plan: &LoadPlan<'_, Postgres>,
    lock: bool,
) -> Result<Option<ExistingTable>, WarehouseError> {
    let t = plan.spec.table.as_str();
    let err = |e: tokio_postgres::Error| table_error(t, &e);
    let oid = match relation(tx, &plan.fact).await.map_err(err)? {
        None => return Ok(None),
        Some((_, kind)) if !is_table(kind) => return Err(not_a_table(t, kind)),
        Some((oid, _)) => oid,
    };
    if lock {
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_SPACE, &(oid as i32)]).await.map_err(err)?;
    }
    let columns = tx
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| ExistingColumn { name: r.get(0), declared: r.get(1), nullable: r.get(2) })
        .collect();
    // The key columns of every valid, unique, non-partial index (a primary key is one), the
    // primary key first.
    let unique_keys = tx
        .query(
            "SELECT array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          WHERE k.n <= i.indnkeyatts ORDER BY k.n)
             FROM pg_index i
             WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
             ORDER BY i.indisprimary DESC",
            &[&oid],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut table = ExistingTable { columns, unique_keys: Some(unique_keys), with_nulls: vec![] };
    for (column, sql) in plan.null_checks(&table) {
        if tx.query_opt(&sql, &[]).await.map_err(err)?.is_some() {
            table.with_nulls.push(column);
        }
    }
    Ok(Some(table))
}

/// Creates the fact table, or adds the contract's new optional columns and records each in the
/// schema ledger (in the caller's transaction, under the DDL lock and the table's load lock),
/// or refuses.
async fn ensure_table_in(tx: &Transaction<'_>, plan: &LoadPlan<'_, Postgres>) -> Result<(), WarehouseError> {
    let spec = plan.spec;
    let t = spec.table.as_str();
    let err = |e: tokio_postgres::Error| table_error(t, &e);
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_SPACE]).await.map_err(err)?;
    ensure_ledger(tx).await.map_err(err)?;
    if let Some(schema) = &plan.name.schema {
        let exists = tx.query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[schema]).await.map_err(err)?;
        if exists.is_none() {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema))).await.map_err(err)?;
        }
    }
    let change = plan.evolution(existing_table(tx, plan, true).await?.as_ref());
    match &change {
        TableChange::Create { ddl } => tx.batch_execute(ddl).await.map_err(err)?,
        TableChange::AddColumns { ddl, .. } => {
            tx.batch_execute(&plan.schema_ledger_ddl()).await.map_err(err)?;
            let record = tx.prepare(&plan.schema_change_insert_params()).await.map_err(err)?;
            let fingerprint = spec_fingerprint(spec);
            for statement in ddl {
                tx.batch_execute(statement).await.map_err(err)?;
                crate::pipeline::faults::point("before-schema-ledger");
                let params: [&(dyn ToSql + Sync); 5] =
                    [&spec.dataset, &spec.table, statement, &fingerprint, &crate::ports::now_ms()];
                tx.execute(&record, &params).await.map_err(err)?;
            }
        }
        TableChange::Nothing => {}
        TableChange::Refuse { .. } => return Err(change.refused(t).expect("a refusal")),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The port

#[async_trait::async_trait]
impl Warehouse for PostgresWarehouse {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn limits(&self) -> WarehouseLimits {
        WarehouseLimits::postgres()
    }

    async fn ensure_table(&self, table: &TableSpec) -> Result<(), WarehouseError> {
        let plan = self.checked.plan(table, Postgres)?;
        let t = table.table.as_str();
        let mut guard = self.session().await?;
        let client = guard.as_mut().ok_or_else(|| self.lost())?;
        let tx = client.transaction().await.map_err(|e| table_error(t, &e))?;
        ensure_table_in(&tx, &plan).await?;
        tx.commit().await.map_err(|e| table_error(t, &e))
    }

    async fn plan_table(&self, table: &TableSpec) -> Result<TableChange, WarehouseError> {
        let plan = self.checked.plan(table, Postgres)?;
        let t = table.table.as_str();
        let mut guard = self.session().await?;
        let client = guard.as_mut().ok_or_else(|| self.lost())?;
        let tx = client.build_transaction().read_only(true).start().await.map_err(|e| table_error(t, &e))?;
        let change = plan.evolution(existing_table(&tx, &plan, false).await?.as_ref());
        tx.rollback().await.map_err(|e| table_error(t, &e))?;
        Ok(change)
    }

    async fn load(&self, req: &LoadRequest<'_>) -> Result<LoadResult, WarehouseError> {
        let plan = self.checked.plan(req.table, Postgres)?;
        // Read and encoded while another load may hold the connection.
        let prepared = Prepared::read(req, &self.appends).await;
        let mut guard = self.session().await?;
        let client = guard.as_mut().ok_or_else(|| self.lost())?;
        let t = req.table.table.as_str();
        let tx = client.transaction().await.map_err(|e| load_error(t, &e))?;
        let result = load_in(&tx, req, &plan, &self.appends, prepared.as_ref()).await?;
        tx.commit().await.map_err(|e| load_error(t, &e))?;
        Ok(result)
    }

    async fn ledger(&self, object_url: Option<&str>) -> Result<Vec<LedgerRow>, WarehouseError> {
        let mut guard = self.session().await?;
        let client = guard.as_mut().ok_or_else(|| self.lost())?;
        let err = |e: tokio_postgres::Error| table_error(LEDGER, &e);
        let exists: bool =
            client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&LEDGER]).await.map_err(err)?.get(0);
        if !exists {
            // Nothing was ever loaded into this database.
            return Ok(vec![]);
        }
        let rows = client
            .query(
                "SELECT object_url, object_version, fingerprint, load_id, dataset, table_name, rows_loaded, loaded_at
                 FROM glueless_loads WHERE $1::text IS NULL OR object_url = $1
                 ORDER BY loaded_at DESC, seq DESC",
                &[&object_url],
            )
            .await
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| LedgerRow {
                object_url: r.get(0),
                object_version: r.get(1),
                fingerprint: r.get(2),
                load_id: r.get(3),
                dataset: r.get(4),
                table_name: r.get(5),
                rows_loaded: r.get::<_, i64>(6).max(0) as u64,
                loaded_at: r.get(7),
            })
            .collect())
    }

    async fn fact_rows(&self, table: &TableSpec) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
        let fact = self.checked.plan(table, Postgres)?.fact;
        let t = table.table.as_str();
        let err = |e: tokio_postgres::Error| table_error(t, &e);
        let mut guard = self.session().await?;
        let client = guard.as_mut().ok_or_else(|| self.lost())?;
        // Text keys in byte order (as SQLite's), whatever the database's collation.
        let keys: Vec<String> = table
            .key
            .iter()
            .map(|&k| {
                let c = &table.columns[k];
                match c.ty {
                    SqlType::Text => format!("{} COLLATE \"C\"", quote(&c.name)),
                    _ => quote(&c.name),
                }
            })
            .collect();
        let select = |text: &[bool]| {
            let cols: Vec<String> = table
                .columns
                .iter()
                .zip(text)
                .map(|(c, &as_text)| if as_text { format!("{}::text", quote(&c.name)) } else { quote(&c.name) })
                .collect();
            format!("SELECT {} FROM {} ORDER BY {}", cols.join(", "), fact, keys.join(", "))
        };
        let mut as_text = vec![false; table.columns.len()];
        let mut stmt = client.prepare(&select(&as_text)).await.map_err(err)?;
        // Columns of a type the canonical form does not read (a table made by hand) as text.
        for (i, c) in stmt.columns().iter().enumerate() {
            as_text[i] = !readable(c.type_());
        }
        if as_text.iter().any(|&b| b) {
            stmt = client.prepare(&select(&as_text)).await.map_err(err)?;
        }
        let rows = client.query(&stmt, &[]).await.map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(table.columns.len());
            for (i, c) in table.columns.iter().enumerate() {
                let raw: Option<Raw<'_>> = row.try_get(i).map_err(err)?;
                let value = match raw {
                    None => serde_json::Value::Null,
                    Some(raw) => {
                        canonical(row.columns()[i].type_(), raw.0, c.ty).map_err(|message| WarehouseError::Table {
                            table: t.to_string(),
                            message: format!("column `{}`: {message}", c.name),
                            retryable: false,
                        })?
                    }
                };
                values.push(value);
            }
            out.push(values);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Load

async fn load_in(
    tx: &Transaction<'_>,
    req: &LoadRequest<'_>,
    plan: &LoadPlan<'_, Postgres>,
    appends: &Appends,
    prepared: Option<&Prepared>,
) -> Result<LoadResult, WarehouseError> {
    let spec = req.table;
    let t = spec.table.as_str();
    let err = |e: tokio_postgres::Error| load_error(t, &e);
    ensure_ledger(tx).await.map_err(err)?;
    let oid = match relation(tx, &plan.fact).await.map_err(err)? {
        None => return Err(WarehouseError::no_table(t)),
        Some((_, kind)) if !is_table(kind) => return Err(not_a_table(t, kind)),
        Some((oid, _)) => oid,
    };
    // 0. One load per table at a time; the oid's bits as the second key.
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_SPACE, &(oid as i32)]).await.map_err(err)?;

    // 1. The ledger decision. The queries of all files go out together (tokio-postgres
    // pipelines what is polled at once on one connection): one round trip, not two per file.
    let same_version = tx.prepare(&plan.ledger_same_version()).await.map_err(err)?;
    let latest = tx.prepare(&plan.ledger_latest()).await.map_err(err)?;
    let recorded = futures::future::try_join_all(req.files.iter().map(|f| {
        let (same_version, latest) = (&same_version, &latest);
        async move {
            let (same, last) = futures::future::try_join(
                tx.query_opt(same_version, &[&f.key.url, &f.key.version]),
                tx.query_opt(latest, &[&f.key.url]),
            )
            .await?;
            Ok::<_, tokio_postgres::Error>(Recorded {
                same_version: same.map(|r| r.get(0)),
                latest: last.map(|r| (r.get(0), r.get(1))),
            })
        }
    }))
    .await
    .map_err(err)?;
    let decisions = decide(req.load_id, req.files.iter().map(|f| (&f.key, f.fingerprint.as_str())), &recorded);

    let mut rows_per_file = vec![0u64; req.files.len()];
    let mut result =
        LoadResult { files: Vec::with_capacity(req.files.len()), rows_superseded: 0, rows_merged: 0, direct: false };
    let any_rows = req.files.iter().zip(&decisions).any(|(f, d)| d.is_load() && !f.parts.is_empty());
    let direct = any_rows && copy_direct(tx, req, plan, appends, &decisions, prepared, &mut rows_per_file).await?;
    result.direct = direct;
    if direct {
        result.rows_merged = rows_per_file.iter().sum();
    }
    if any_rows && !direct {
        // 2. A fresh staging table, filled by a binary COPY streamed from the parts.
        tx.batch_execute(&plan.create_staging()).await.map_err(err)?;
        let staged = copy_in(tx, &fill_sql(), true, req, &decisions, &mut rows_per_file).await?;
        if staged > 0 {
            tx.batch_execute(&analyze_sql(spec)).await.map_err(err)?;
        }

        // 3–5. Drop what is not newer, keep one row per key, merge.
        tx.batch_execute(PROBE_BY_INDEX).await.map_err(err)?;
        for step in plan.steps() {
            let rows = tx.execute(&step.sql, &[]).await.map_err(err)?;
            step.counts.add(rows, &mut result);
        }
    }
    crate::pipeline::faults::point("before-ledger");

    // 6. The ledger, one row per loaded file, the inserts pipelined as the queries of step 1.
    let insert = tx.prepare(&plan.ledger_insert()).await.map_err(err)?;
    let rows_loaded: Vec<i64> = rows_per_file.iter().map(|&rows| rows as i64).collect();
    let inserts =
        req.files.iter().zip(&decisions).zip(&rows_loaded).filter(|((_, d), _)| d.is_load()).map(|((f, _), rows)| {
            let params: [&(dyn ToSql + Sync); 8] =
                [&f.key.url, &f.key.version, &f.fingerprint, &req.load_id, &spec.dataset, &spec.table, rows, &req.now];
            let insert = &insert;
            async move { tx.execute(insert, &params).await }
        });
    futures::future::try_join_all(inserts).await.map_err(err)?;
    result.files.extend(decisions.iter().zip(&rows_per_file).map(|(d, &rows)| d.file_load(rows)));
    Ok(result)
}

/// Steps 2–5 in one statement: a binary COPY of the rows straight into the fact table
/// (PostgreSQL writes a COPY's rows a page at a time, where the MERGE inserts them one by one),
/// when the table is empty or [`Appends`] says to try. Steps 3–5 would insert every staged row
/// as it is when no staged key is in the table and none comes twice: the table's unique key
/// refuses any other, and then (or on anything else the COPY meets but a lost connection or a
/// missing part) the load rolls back to the savepoint before it and takes steps 2–5. True when
/// the rows went in.
async fn copy_direct(
    tx: &Transaction<'_>,
    req: &LoadRequest<'_>,
    plan: &LoadPlan<'_, Postgres>,
    appends: &Appends,
    decisions: &[Decision],
    prepared: Option<&Prepared>,
    rows_per_file: &mut [u64],
) -> Result<bool, WarehouseError> {
    let t = req.table.table.as_str();
    let err = |e: tokio_postgres::Error| load_error(t, &e);
    let has_rows = tx.query_opt(&plan.fact_has_rows(), &[]).await.map_err(err)?.is_some();
    if has_rows && !appends.try_now(t) {
        return Ok(false);
    }
    tx.batch_execute(&format!("SAVEPOINT {DIRECT}")).await.map_err(err)?;
    let sql = direct_sql(plan);
    let copy = match prepared {
        Some(p) => copy_prepared(tx, &sql, req, p, decisions, rows_per_file).await,
        None => copy_in(tx, &sql, false, req, decisions, rows_per_file).await,
    };
    let copied = match copy {
        Err(e) if e.is_retryable() => return Err(e),
        copied => copied.is_ok(),
    };
    if has_rows {
        appends.record(t, copied);
    }
    if copied {
        tx.batch_execute(&format!("RELEASE SAVEPOINT {DIRECT}")).await.map_err(err)?;
    } else {
        tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {DIRECT}")).await.map_err(err)?;
        rows_per_file.fill(0);
    }
    Ok(copied)
}

/// PostgreSQL's binary COPY: this header (signature, flags, no extension), then the rows,
/// then the trailer.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// A streamed COPY sends its rows in pieces of about this size.
const COPY_CHUNK: usize = 1 << 16;

/// Runs the binary COPY `sql` of the spec's columns (and, with `bookkeeping`, each row's file
/// position and row number) from the parts, read batch by batch as the rows go; returns the
/// rows it wrote.
async fn copy_in(
    tx: &Transaction<'_>,
    sql: &str,
    bookkeeping: bool,
    req: &LoadRequest<'_>,
    decisions: &[Decision],
    rows_per_file: &mut [u64],
) -> Result<u64, WarehouseError> {
    let t = req.table.table.as_str();
    let err = |e: tokio_postgres::Error| load_error(t, &e);
    let mut sink = std::pin::pin!(tx.copy_in::<_, Bytes>(sql).await.map_err(err)?);
    let mut out = BytesMut::with_capacity(2 * COPY_CHUNK);
    out.extend_from_slice(COPY_HEADER);
    // The row number grows over the whole load (unique in it), in request order.
    let mut row_number = 0i64;
    for (i, file) in req.files.iter().enumerate() {
        if !decisions.get(i).is_some_and(Decision::is_load) {
            continue;
        }
        for part in &file.parts {
            let mut reader = PartReader::open(req.table, part, SqlType::arrow_type).await?;
            while let Some(batch) = reader.next().await {
                let (columns, rows) = batch?;
                let numbering = bookkeeping.then_some((i as i32, &mut row_number));
                encode_rows(&mut out, req.table, file, &columns, rows, numbering)?;
                rows_per_file[i] += rows as u64;
                if out.len() >= COPY_CHUNK {
                    sink.send(out.split().freeze()).await.map_err(err)?;
                }
            }
        }
    }
    out.extend_from_slice(COPY_TRAILER);
    sink.send(out.freeze()).await.map_err(err)?;
    sink.finish().await.map_err(err)
}

/// The rows of a load's files as binary COPY rows (no bookkeeping), read from the parts and
/// encoded before the load takes the connection and the table's lock, while other batches
/// are in the warehouse: the straight-in COPY then only sends them. Per file of the request:
/// its rows and how many.
struct Prepared {
    files: Vec<(Bytes, u64)>,
}

impl Prepared {
    /// The most a load reads ahead, in encoded bytes; a larger load streams from its parts.
    const MAX_BYTES: usize = 32 << 20;

    /// Reads and encodes the files of `req`, when the load will try its rows straight into
    /// the table ([`Appends::would_try`]) and they come to at most [`Prepared::MAX_BYTES`].
    /// `None` otherwise, and when a part cannot be read or a value cannot be sent: the load
    /// then streams from the parts and meets the same problem where it always did (before
    /// the COPY, or rolled back to the savepoint), with the same error.
    async fn read(req: &LoadRequest<'_>, appends: &Appends) -> Option<Prepared> {
        // Each row takes at least its field count and a length per field.
        let least_row = 2 + 4 * req.table.columns.len() as u64;
        let rows: u64 = req.files.iter().map(|f| f.rows).sum();
        if rows == 0 || rows.saturating_mul(least_row) > Self::MAX_BYTES as u64 || !appends.would_try(&req.table.table)
        {
            return None;
        }
        let mut files = Vec::with_capacity(req.files.len());
        let mut total = 0;
        for file in req.files {
            let mut out = BytesMut::new();
            let mut n = 0u64;
            for part in &file.parts {
                let mut reader = PartReader::open(req.table, part, SqlType::arrow_type).await.ok()?;
                while let Some(batch) = reader.next().await {
                    let (columns, rows) = batch.ok()?;
                    encode_rows(&mut out, req.table, file, &columns, rows, None).ok()?;
                    n += rows as u64;
                    if total + out.len() > Self::MAX_BYTES {
                        return None;
                    }
                }
            }
            total += out.len();
            files.push((out.freeze(), n));
        }
        Some(Prepared { files })
    }
}

/// The straight-in COPY `sql` of the prepared rows of the files to load; returns the rows it
/// wrote.
async fn copy_prepared(
    tx: &Transaction<'_>,
    sql: &str,
    req: &LoadRequest<'_>,
    prepared: &Prepared,
    decisions: &[Decision],
    rows_per_file: &mut [u64],
) -> Result<u64, WarehouseError> {
    let err = |e: tokio_postgres::Error| load_error(&req.table.table, &e);
    let mut sink = std::pin::pin!(tx.copy_in::<_, Bytes>(sql).await.map_err(err)?);
    sink.feed(Bytes::from_static(COPY_HEADER)).await.map_err(err)?;
    for (i, (rows, n)) in prepared.files.iter().enumerate() {
        if decisions.get(i).is_some_and(Decision::is_load) {
            sink.feed(rows.clone()).await.map_err(err)?;
            rows_per_file[i] = *n;
        }
    }
    sink.send(Bytes::from_static(COPY_TRAILER)).await.map_err(err)?;
    sink.finish().await.map_err(err)
}

/// Appends `rows` rows of a part's batch (`columns`, in spec order) of `file` to `out` as
/// binary COPY rows: the field count, then each field's length (-1 for NULL) and bytes. With
/// `numbering` (the file's position in the load and the load's row counter), each row's file
/// position and row number follow the spec's columns.
fn encode_rows(
    out: &mut BytesMut,
    spec: &TableSpec,
    file: &crate::ports::StagedFile,
    columns: &[arrow::array::ArrayRef],
    rows: usize,
    mut numbering: Option<(i32, &mut i64)>,
) -> Result<(), WarehouseError> {
    let t = spec.table.as_str();
    // A staged value of this file that cannot be sent as its column's type.
    let bad = |message: String| {
        WarehouseError::load(t, format!("staging file {} failed: {message}", file.key.url), LoadCause::Rows)
    };
    let cells = columns
        .iter()
        .zip(&spec.columns)
        .map(|(a, c)| {
            Cells::new(a, c.ty)
                .ok_or_else(|| bad(format!("column `{}` is of type {}, not {:?}", c.name, a.data_type(), c.ty)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let fields = spec.columns.len() + if numbering.is_some() { 2 } else { 0 };
    let fields = i16::try_from(fields).map_err(|_| bad(format!("{fields} columns are more than a COPY row holds")))?;
    for r in 0..rows {
        out.put_i16(fields);
        for (c, col) in cells.iter().zip(&spec.columns) {
            put_value(out, &c.value(r).map_err(|e| bad(format!("column `{}`: {e}", col.name)))?);
        }
        if let Some((file_pos, row_number)) = numbering.as_mut() {
            put_value(out, &Value::Int32(*file_pos));
            put_value(out, &Value::Int64(**row_number));
            **row_number += 1;
        }
    }
    Ok(())
}

/// One field of a binary COPY row: its length and bytes, or -1 for NULL.
fn put_value(out: &mut BytesMut, v: &Value<'_>) {
    if matches!(v, Value::Null) {
        out.put_i32(-1);
        return;
    }
    let at = out.len();
    out.put_i32(0);
    // The type is the column's, which the value already is in ([`Value`]): never an error.
    let _ = v.to_sql(&Type::UNKNOWN, out);
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

impl<'a> Cells<'a> {
    /// The cell at `row` in PostgreSQL's terms (epochs of 2000-01-01).
    fn value(&self, row: usize) -> Result<Value<'a>, String> {
        if self.is_null(row) {
            return Ok(Value::Null);
        }
        Ok(match self {
            Cells::Text(a) => Value::Text(a.value(row)),
            Cells::Int64(a) => Value::Int64(a.value(row)),
            Cells::Int32(a) => Value::Int32(a.value(row)),
            Cells::Float(a) => Value::Float(a.value(row)),
            Cells::Decimal(a, scale) => Value::Numeric(a.value(row), *scale),
            Cells::Bool(a) => Value::Bool(a.value(row)),
            Cells::Date(a) => {
                let days = a.value(row);
                Value::Date(
                    days.checked_sub(PG_EPOCH_DAYS)
                        .ok_or_else(|| format!("date {days} days from 1970-01-01 is out of range"))?,
                )
            }
            Cells::Time(a) => {
                let micros = a.value(row);
                if !(0..=DAY_MICROS).contains(&micros) {
                    return Err(format!("time of {micros} µs after midnight is out of range"));
                }
                Value::Time(micros)
            }
            Cells::Timestamp(a) => {
                let micros = a.value(row);
                Value::Timestamp(
                    micros
                        .checked_sub(PG_EPOCH_MICROS)
                        .ok_or_else(|| format!("datetime of {micros} µs since the epoch is out of range"))?,
                )
            }
        })
    }
}

/// One value of a binary COPY row, already in PostgreSQL's form; its type is the column's.
#[derive(Debug)]
enum Value<'a> {
    Null,
    Text(&'a str),
    Int64(i64),
    Int32(i32),
    Float(f64),
    /// Unscaled value and scale.
    Numeric(i128, i8),
    Bool(bool),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 2000-01-01 00:00 UTC.
    Timestamp(i64),
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => return Ok(IsNull::Yes),
            Value::Text(s) => out.extend_from_slice(s.as_bytes()),
            Value::Int64(v) | Value::Time(v) | Value::Timestamp(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Int32(v) | Value::Date(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Float(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Bool(v) => out.extend_from_slice(&[*v as u8]),
            Value::Numeric(v, scale) => out.extend_from_slice(&numeric_bytes(*v, *scale)),
        }
        Ok(IsNull::No)
    }

    // The COPY's column types come from the spec, as the values do.
    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// PostgreSQL's binary NUMERIC of `v` unscaled at `scale`: ndigits, weight, sign, dscale,
/// then base-10000 digits, most significant first, without leading or trailing zero digits.
fn numeric_bytes(v: i128, scale: i8) -> Vec<u8> {
    let mut digits = v.unsigned_abs().to_string();
    let dscale = if scale < 0 {
        if v != 0 {
            digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
        0
    } else {
        scale as usize
    };
    let (int, frac) = if digits.len() > dscale {
        let (i, f) = digits.split_at(digits.len() - dscale);
        (i.to_string(), f.to_string())
    } else {
        (String::new(), format!("{}{digits}", "0".repeat(dscale - digits.len())))
    };
    let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let all = format!("{int}{frac}");
    let mut groups: Vec<i16> =
        all.as_bytes().chunks(4).map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + (d - b'0') as i16)).collect();
    let mut weight = (int.len() / 4) as i32 - 1;
    let lead = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..lead);
    weight -= lead as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let sign: u16 = if v < 0 && !groups.is_empty() { 0x4000 } else { 0 };
    if groups.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading back

/// A value as PostgreSQL sent it (binary), read by [`canonical`].
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Raw<'a>, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Whether [`canonical`] reads the binary form of a type (others are selected as text).
fn readable(ty: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::DATE,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
    ]
    .contains(ty)
}

fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.get(..N).and_then(|b| b.try_into().ok()).ok_or_else(|| format!("{} bytes instead of {N}", raw.len()))
}

/// A binary value in the canonical JSON form of the port (see `ports::warehouse`).
fn canonical(pg: &Type, raw: &[u8], ty: SqlType) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    let float = |f: f64| serde_json::Number::from_f64(f).map_or_else(|| J::String(f.to_string()), J::Number);
    let int = |i: i64| if ty == SqlType::Float64 { float(i as f64) } else { J::from(i) };
    Ok(match *pg {
        Type::BOOL => J::Bool(be::<1>(raw)?[0] != 0),
        Type::INT2 => int(i16::from_be_bytes(be(raw)?) as i64),
        Type::INT4 => int(i32::from_be_bytes(be(raw)?) as i64),
        Type::INT8 => int(i64::from_be_bytes(be(raw)?)),
        Type::FLOAT4 => float(f32::from_be_bytes(be(raw)?) as f64),
        Type::FLOAT8 => float(f64::from_be_bytes(be(raw)?)),
        Type::NUMERIC => {
            let scale = match ty {
                SqlType::Decimal { scale, .. } => scale.max(0) as usize,
                _ => 0,
            };
            J::String(numeric_text(raw, scale)?)
        }
        Type::DATE => J::String(match i32::from_be_bytes(be(raw)?) {
            i32::MAX => "infinity".into(),
            i32::MIN => "-infinity".into(),
            days => chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
                .and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(days as i64)))
                .ok_or_else(|| format!("date {days} days from 2000-01-01 is out of range"))?
                .format("%Y-%m-%d")
                .to_string(),
        }),
        Type::TIME => {
            let micros = i64::from_be_bytes(be(raw)?);
            let s = micros / 1_000_000;
            J::String(format!("{:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, micros % 1_000_000))
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => J::String(match i64::from_be_bytes(be(raw)?) {
            i64::MAX => "infinity".into(),
            i64::MIN => "-infinity".into(),
            micros => micros
                .checked_add(PG_EPOCH_MICROS)
                .and_then(chrono::DateTime::from_timestamp_micros)
                .ok_or_else(|| format!("datetime of {micros} µs since 2000-01-01 is out of range"))?
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
        }),
        _ => J::String(String::from_utf8_lossy(raw).into_owned()),
    })
}

/// The text of a binary NUMERIC with at least `min_scale` digits after the point.
fn numeric_text(raw: &[u8], min_scale: usize) -> Result<String, String> {
    let ndigits = i16::from_be_bytes(be(raw)?).max(0) as usize;
    let weight = i16::from_be_bytes(be(&raw[2..])?) as i64;
    let sign = u16::from_be_bytes(be(&raw[4..])?);
    let dscale = u16::from_be_bytes(be(&raw[6..])?) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(i16::from_be_bytes(be(&raw[8 + 2 * i..])?) as i64);
    }
    let group = |i: i64| if (0..ndigits as i64).contains(&i) { digits[i as usize] } else { 0 };
    let mut out = String::new();
    if sign == 0x4000 && !digits.is_empty() {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", group(0));
        for i in 1..=weight {
            let _ = write!(out, "{:04}", group(i));
        }
    }
    let scale = dscale.max(min_scale);
    if scale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(scale + 4);
        let mut i = weight + 1;
        while frac.len() < scale {
            let _ = write!(frac, "{:04}", group(i));
            i += 1;
        }
        frac.truncate(scale);
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_say_who_is_to_blame() {
        for c in ["08006", "40001", "40P01", "55P03", "57014", "57P01", "53300"] {
            assert_eq!(sqlstate_cause(c), LoadCause::Transient, "{c}");
        }
        // A NUL byte, a date out of range, NOT NULL, CHECK, UNIQUE, a trigger's RAISE.
        for c in ["22021", "22008", "23502", "23514", "23505", "P0001", "40002"] {
            assert_eq!(sqlstate_cause(c), LoadCause::Rows, "{c}");
        }
        // A missing column or grant, a bug in the SQL.
        for c in ["42703", "42501", "42601", "XX000", "57P04"] {
            assert_eq!(sqlstate_cause(c), LoadCause::Setup, "{c}");
        }
    }

    fn round_trip(v: i128, scale: i8) -> String {
        numeric_text(&numeric_bytes(v, scale), scale.max(0) as usize).unwrap()
    }

    #[test]
    fn copy_rows_are_framed_as_postgres_reads_them() {
        use arrow::array::{ArrayRef, Int64Array, StringArray};
        let col = |name: &str, ty, nullable| crate::ports::warehouse::Column { name: name.into(), ty, nullable };
        let spec = TableSpec {
            dataset: "d".into(),
            table: "t".into(),
            columns: vec![col("id", SqlType::Int64, false), col("note", SqlType::Text, true)],
            key: vec![0],
            version: None,
        };
        let file = crate::ports::StagedFile {
            key: crate::ports::FileKey { url: "file:///x.csv".into(), version: "v".into() },
            fingerprint: String::new(),
            parts: vec![],
            rows: 2,
        };
        let columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from(vec![7, -1])), Arc::new(StringArray::from(vec![Some("h\u{e9}"), None]))];
        let mut out = BytesMut::new();
        encode_rows(&mut out, &spec, &file, &columns, 2, None).unwrap();
        let mut want: Vec<u8> = Vec::new();
        // Row 1: two fields, an 8-byte integer, 3 bytes of UTF-8.
        want.extend(2i16.to_be_bytes());
        want.extend(8i32.to_be_bytes());
        want.extend(7i64.to_be_bytes());
        want.extend(3i32.to_be_bytes());
        want.extend("h\u{e9}".as_bytes());
        // Row 2: NULL is a length of -1 and no bytes.
        want.extend(2i16.to_be_bytes());
        want.extend(8i32.to_be_bytes());
        want.extend((-1i64).to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        assert_eq!(&out[..], &want[..]);

        // With the bookkeeping, the file position and the load's row number follow.
        let (mut out, mut row_number) = (BytesMut::new(), 41i64);
        encode_rows(&mut out, &spec, &file, &columns, 1, Some((3, &mut row_number))).unwrap();
        assert_eq!(row_number, 42);
        assert_eq!(&out[..2], 4i16.to_be_bytes());
        let tail: Vec<u8> =
            [&4i32.to_be_bytes()[..], &3i32.to_be_bytes(), &8i32.to_be_bytes(), &41i64.to_be_bytes()].concat();
        assert!(out.ends_with(&tail), "{out:?}");
        // The header is the signature, no flags, no extension.
        assert_eq!(COPY_HEADER.len(), 19);
        assert!(COPY_HEADER.starts_with(b"PGCOPY\n\xff\r\n\0") && COPY_HEADER[11..].iter().all(|&b| b == 0));
    }

    #[test]
    fn numerics_are_exact_in_both_directions() {
        assert_eq!(round_trip(1250, 2), "12.50");
        assert_eq!(round_trip(-5, 2), "-0.05");
        assert_eq!(round_trip(0, 2), "0.00");
        assert_eq!(round_trip(7, 0), "7");
        assert_eq!(round_trip(7, -2), "700");
        assert_eq!(round_trip(12345678901234567890, 2), "123456789012345678.90");
        assert_eq!(round_trip(10000, 0), "10000");
        assert_eq!(round_trip(1, 8), "0.00000001");
        assert_eq!(round_trip(-100000000, 4), "-10000.0000");
        let max = 10i128.pow(38) - 1;
        assert_eq!(round_trip(max, 10), format!("{}.{}", "9".repeat(28), "9".repeat(10)));
        // 12.50: one digit group before the point, one after; 0.05: weight -1.
        assert_eq!(numeric_bytes(1250, 2), [0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88]);
        assert_eq!(numeric_bytes(-5, 2), [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4]);
        assert_eq!(numeric_bytes(0, 2), [0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(crate::redact::url("postgres://db/x"), "postgres://db/x");
        assert_eq!(crate::redact::url("postgres://me:s3cret@db:5432/x"), "postgres://me@db:5432/x");
        assert_eq!(
            crate::redact::url("postgresql://me:p%40ss@h1,h2/x?password=s3cret&sslmode=disable"),
            "postgresql://me@h1,h2/x?password=…&sslmode=disable"
        );
        let kv = crate::redact::url("host=db user=me password=s3cret dbname=x port=5433");
        assert_eq!(kv, "host=db user=me password=… dbname=x port=5433");
        assert!(!crate::redact::url("host=db password='s 3cret'").contains("3cret"));
    }

    /// Issue 11: tokio-postgres percent-decodes parameter names, so `p%61ssword` is the
    /// password; the redaction must hide it too.
    #[test]
    fn an_encoded_password_parameter_is_used_and_hidden() {
        let url = "postgres://me@db/x?sslmode=disable&p%61ssword=s3cret";
        let c = Config::from_str(url).unwrap();
        assert_eq!(c.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(crate::redact::url(url), "postgres://me@db/x?sslmode=disable&p%61ssword=…");
    }

    #[test]
    fn identifiers_are_quoted_whole() {
        assert_eq!(quote(r#"unit "price" (EUR)"#), r#""unit ""price"" (EUR)""#);
        let spec = |table: &str| TableSpec {
            dataset: "d".into(),
            table: table.into(),
            columns: vec![crate::ports::warehouse::Column { name: "id".into(), ty: SqlType::Int64, nullable: false }],
            key: vec![0],
            version: None,
        };
        let plan = |table: &str| LoadPlan::new(&spec(table), Postgres).map(|p| p.fact);
        assert_eq!(plan("a.b").unwrap(), r#""a"."b""#);
        assert_eq!(plan(r#"x"; DROP TABLE y; --"#).unwrap(), r#""x""; DROP TABLE y; --""#);
        assert!(plan(".b").is_err());
        assert!(plan("b.").is_err());
        assert!(plan(&"t".repeat(64)).is_err());
        assert!(plan(&format!("s.{}", "t".repeat(64))).unwrap_err().to_string().contains("63"));
    }

    #[test]
    fn canonical_temporal_forms() {
        let date = canonical(&Type::DATE, &(-PG_EPOCH_DAYS + 20_412).to_be_bytes(), SqlType::Date).unwrap();
        assert_eq!(date, "2025-11-20");
        let time = canonical(&Type::TIME, &49_500_000_001i64.to_be_bytes(), SqlType::Time).unwrap();
        assert_eq!(time, "13:45:00.000001");
        let ts = canonical(&Type::TIMESTAMPTZ, &(-PG_EPOCH_MICROS).to_be_bytes(), SqlType::Timestamp).unwrap();
        assert_eq!(ts, "1970-01-01T00:00:00.000000Z");
    }
}
