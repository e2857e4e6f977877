//! The warehouse port: load staged Parquet into a dataset's fact table exactly once.
//!
//! Every adapter (embedded SQLite, PostgreSQL, Redshift) meets the same contract, checked by
//! one acceptance suite (`tests/blackbox/acceptance/warehouse.rs`). One [`Warehouse::load`]
//! call is one transaction that
//!
//! 1. skips each file already in the ledger (`glueless_loads`): same URL and version, or the
//!    same content fingerprint as the URL's latest load (a re-upload of unchanged content);
//! 2. fills a fresh staging table from the remaining files' Parquet parts;
//! 3. when the contract has a `version_column`, drops staged rows that are not newer than the
//!    fact row with the same key (`staged.v <= fact.v`; a NULL version never wins over a row);
//! 4. keeps one staged row per key: the highest version, and among equals the row of the later
//!    file in the request (then the later row);
//! 5. upserts the rest into the fact table on the primary key (update every column, insert
//!    missing keys);
//! 6. writes one ledger row per loaded file,
//!
//! and commits; on any error nothing of it is visible. The fact table is created from
//! [`TableSpec`] if missing, and follows a contract that gained optional fields
//! ([`Warehouse::ensure_table`]). The algorithm and its statements are
//! written once, in [`super::load_plan`].
//!
//! Rows are compared across adapters in one canonical JSON form ([`Warehouse::fact_rows`]):
//! null; booleans; integers as numbers; floats as numbers; decimals as strings with exactly
//! `scale` digits after the point (`"12.50"`); dates `"2026-11-20"`; times
//! `"13:45:00.000000"`; datetimes in UTC `"2026-11-20T13:45:00.000000Z"`; strings as strings.

use super::{FileKey, Millis};
use arrow::datatypes::{DataType, TimeUnit};
use glueless_engine::Dataset;
use glueless_engine::store::Location;
pub use glueless_engine::validate::limits::WarehouseLimits;
use serde::Serialize;

/// A column type every warehouse can hold; the adapters map it to their own SQL types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SqlType {
    Text,
    Int64,
    Int32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Boolean,
    Date,
    /// Microseconds since midnight.
    Time,
    /// Microseconds since the epoch, UTC.
    Timestamp,
}

impl SqlType {
    /// The type for an Arrow column of the staged Parquet, if it has one.
    pub fn from_arrow(t: &DataType) -> Option<SqlType> {
        Some(match t {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Text,
            DataType::Int64 => SqlType::Int64,
            DataType::Int32 | DataType::Int16 | DataType::Int8 => SqlType::Int32,
            DataType::Float64 | DataType::Float32 => SqlType::Float64,
            DataType::Decimal128(p, s) => SqlType::Decimal { precision: *p, scale: *s },
            DataType::Boolean => SqlType::Boolean,
            DataType::Date32 => SqlType::Date,
            DataType::Time64(TimeUnit::Microsecond) => SqlType::Time,
            DataType::Timestamp(TimeUnit::Microsecond, _) => SqlType::Timestamp,
            _ => return None,
        })
    }
}

impl SqlType {
    /// The Arrow type a staged column of this type has (the inverse of [`SqlType::from_arrow`]).
    pub fn arrow_type(self) -> DataType {
        match self {
            SqlType::Text => DataType::Utf8,
            SqlType::Int64 => DataType::Int64,
            SqlType::Int32 => DataType::Int32,
            SqlType::Float64 => DataType::Float64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            SqlType::Boolean => DataType::Boolean,
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time64(TimeUnit::Microsecond),
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// One column of a fact table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

/// The fact table a dataset loads into, derived from its contract and transform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSpec {
    pub dataset: String,
    /// As written in the contract's `table` (may be `schema.table`).
    pub table: String,
    /// The columns of the staged Parquet, in order.
    pub columns: Vec<Column>,
    /// Indices into `columns`: the MERGE key.
    pub key: Vec<usize>,
    /// Index into `columns`: a row never overwrites one with a higher value here.
    pub version: Option<usize>,
}

impl TableSpec {
    pub fn from_dataset(d: &Dataset) -> Result<TableSpec, WarehouseError> {
        let c = &d.contract;
        let schema = d.output_schema();
        let mut columns = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let ty = SqlType::from_arrow(f.data_type()).ok_or_else(|| WarehouseError::Table {
                table: c.table.clone(),
                message: format!(
                    "column `{}` has type {} after the transform of {}, which no warehouse column is mapped to; CAST it to a contract type in load.transform",
                    f.name(),
                    f.data_type(),
                    c.source
                ),
                retryable: false,
            })?;
            columns.push(Column { name: f.name().clone(), ty, nullable: f.is_nullable() });
        }
        let find = |name: &str, what: &str| {
            columns.iter().position(|col| col.name == name).ok_or_else(|| WarehouseError::Table {
                table: c.table.clone(),
                message: format!(
                    "{what} `{name}` of {} is not a column after load.transform; keep it in the SELECT",
                    c.source
                ),
                retryable: false,
            })
        };
        if c.schema.primary_key.is_empty() {
            return Err(WarehouseError::Table {
                table: c.table.clone(),
                message: format!("{} has no schema.primaryKey, which the MERGE needs; add one", c.source),
                retryable: false,
            });
        }
        let key = c
            .schema
            .primary_key
            .iter()
            .map(|&i| find(&c.schema.fields[i].name, "primary-key field"))
            .collect::<Result<Vec<_>, _>>()?;
        let version = match c.load.version_column {
            Some(i) => Some(find(&c.schema.fields[i].name, "load.version_column")?),
            None => None,
        };
        Ok(TableSpec { dataset: c.name.clone(), table: c.table.clone(), columns, key, version })
    }
}

/// One file's staged output, ready to load.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub key: FileKey,
    /// Content fingerprint of the object (see `glueless_engine::Report::fingerprint`).
    pub fingerprint: String,
    /// The Parquet parts, in order; empty when the file had no valid rows.
    pub parts: Vec<Location>,
    pub rows: u64,
}

/// One transaction's worth of files of one dataset.
#[derive(Debug, Clone)]
pub struct LoadRequest<'a> {
    pub table: &'a TableSpec,
    /// Unique per call; written to the ledger.
    pub load_id: &'a str,
    /// In arrival order: on equal versions a later file wins.
    pub files: &'a [StagedFile],
    pub now: Millis,
}

/// What happened to one file of a [`LoadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FileLoad {
    /// Its rows went through this load (some may have lost to newer rows).
    Loaded { rows: u64 },
    /// The ledger already had it; nothing was done.
    AlreadyLoaded { load_id: String },
}

/// The result of one [`Warehouse::load`]: one entry per requested file, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadResult {
    pub files: Vec<FileLoad>,
    /// Staged rows dropped because the fact table (or the same load) had a newer version.
    pub rows_superseded: u64,
    /// Rows inserted or updated in the fact table.
    pub rows_merged: u64,
    /// The rows went straight into the fact table, without the staging steps (see
    /// [`crate::ports::load_plan`], "Straight into the table").
    pub direct: bool,
}

/// One row of the `glueless_loads` ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    pub object_url: String,
    pub object_version: String,
    pub fingerprint: String,
    pub load_id: String,
    pub dataset: String,
    pub table_name: String,
    pub rows_loaded: u64,
    pub loaded_at: Millis,
}

/// A warehouse that could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// `unreachable`: the server did not answer (refused, timed out, reset, shutting down, a
    /// name server that did not answer), so the same settings can work later; otherwise the
    /// settings are wrong (a URL that does not parse, a host name that does not exist,
    /// credentials or a database the server refuses). Either way a load that meets it is
    /// retried ([`WarehouseError::is_retryable`]): a password may be rotated in between.
    #[error("warehouse {target}: cannot connect: {message}")]
    Connect { target: String, message: String, unreachable: bool },
    #[error("table {table}: {message}")]
    Table { table: String, message: String, retryable: bool },
    #[error("cannot read the staged file {url}: {message}")]
    Staged { url: String, message: String },
    #[error("loading into {table} failed and was rolled back: {message}")]
    Load { table: String, message: String, cause: LoadCause },
}

/// Why a load failed, as far as the warehouse says: it decides what happens to the files of
/// the request (see `Pipeline::load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LoadCause {
    /// A passing condition (a lost connection, a serialization failure or deadlock, a lock
    /// wait that timed out, throttling, a server shutting down): the same load can succeed
    /// later without anyone changing anything.
    Transient,
    /// The warehouse refused rows of the request (a constraint, a trigger, a value it cannot
    /// hold, a staged file that does not fit): some file of the request is the cause, and the
    /// others can load without it.
    Rows,
    /// Anything else (a missing grant, a column gone from the table, a bug): someone has to
    /// change the warehouse or glueless; no file is to blame.
    Setup,
}

impl WarehouseError {
    /// Whether the same load can succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            WarehouseError::Connect { .. } | WarehouseError::Staged { .. } => true,
            WarehouseError::Table { retryable, .. } => *retryable,
            WarehouseError::Load { cause, .. } => *cause == LoadCause::Transient,
        }
    }

    /// Whether the warehouse could not be reached at all (see [`WarehouseError::Connect`]): at
    /// start, the difference between "try again later" and "change the settings".
    pub fn is_unreachable(&self) -> bool {
        matches!(self, WarehouseError::Connect { unreachable: true, .. })
    }

    /// Whether the warehouse refused rows of the request: some file is the culprit, and the
    /// other files can load without it.
    pub fn is_refusal(&self) -> bool {
        matches!(self, WarehouseError::Load { cause: LoadCause::Rows, .. })
    }

    /// A `Load` error of `table` with its cause.
    pub fn load(table: &str, message: impl Into<String>, cause: LoadCause) -> WarehouseError {
        WarehouseError::Load { table: table.to_string(), message: message.into(), cause }
    }

    /// Something that is not a table (`kind`: a view, a sequence, …) has the fact table's name.
    pub fn not_a_table(table: &str, kind: &str) -> WarehouseError {
        WarehouseError::Table {
            table: table.to_string(),
            message: format!(
                "`{table}` exists in the database as a {kind}, not a table, so rows cannot be merged into it; drop the {kind} or set another `table` in the contract"
            ),
            retryable: false,
        }
    }

    /// A load into a fact table that [`Warehouse::ensure_table`] did not create.
    pub fn no_table(table: &str) -> WarehouseError {
        WarehouseError::Table {
            table: table.to_string(),
            message: "the table does not exist; create it first (ensure_table)".into(),
            retryable: false,
        }
    }

    /// An existing fact table has no unique index on exactly the key columns (`quoted_key`,
    /// quoted and comma-separated), which the merge needs; `create` is the statement that adds one.
    pub fn no_unique_key(table: &str, quoted_key: &str, create: &str) -> WarehouseError {
        WarehouseError::Table {
            table: table.to_string(),
            message: format!(
                "the existing table has no PRIMARY KEY or UNIQUE index on exactly ({quoted_key}), which the merge needs; add one ({create}) or drop the table so that it is created again"
            ),
            retryable: false,
        }
    }
}

/// Loads staged files into fact tables, exactly once per file.
#[async_trait::async_trait]
pub trait Warehouse: Send + Sync {
    /// Where it is, for messages (never with secrets).
    fn describe(&self) -> String;

    /// The values its columns cannot hold exactly; validation turns such a value into a row
    /// error (rule `constraint-error`, constraint `warehouse`) instead of a refused load.
    fn limits(&self) -> WarehouseLimits;

    /// Creates the ledger and the fact table if missing (idempotent), and makes an existing
    /// table follow the contract where it can without losing or rewriting data: the
    /// comparison of [`crate::ports::load_plan::evolve`] decides; new optional fields become
    /// columns (`ALTER TABLE … ADD COLUMN`, each recorded in `glueless_schema_changes` in the
    /// same transaction, under the lock the loads take), and any other change is an error
    /// (not retryable) naming each change and the SQL an operator could run.
    async fn ensure_table(&self, table: &TableSpec) -> Result<(), WarehouseError>;

    /// What [`Warehouse::ensure_table`] would do to the table, by the same comparison, without
    /// changing anything (read-only).
    async fn plan_table(&self, table: &TableSpec) -> Result<crate::ports::load_plan::TableChange, WarehouseError> {
        Err(WarehouseError::Table {
            table: table.table.clone(),
            message: format!("{} cannot tell what a load would change", self.describe()),
            retryable: false,
        })
    }

    /// One transaction, as described in the module documentation.
    async fn load(&self, req: &LoadRequest<'_>) -> Result<LoadResult, WarehouseError>;

    /// Ledger rows, newest first; only those of one object URL when given.
    async fn ledger(&self, object_url: Option<&str>) -> Result<Vec<LedgerRow>, WarehouseError>;

    /// Every row of the fact table in the canonical form above, columns in spec order, rows
    /// ordered by the key.
    async fn fact_rows(&self, table: &TableSpec) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError>;
}
