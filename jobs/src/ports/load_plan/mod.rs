//! The load plan: the one algorithm by which every warehouse loads staged files exactly once,
//! written once. A [`Dialect`] per warehouse supplies only what differs (names and types, its
//! limits, the version comparison, the upsert form); each adapter keeps its transport and what
//! is truly its own (SQLite's connection thread, PostgreSQL's advisory lock and binary COPY,
//! Redshift's `LOCK`, COPY from S3 and Data API batches).
//!
//! # The algorithm
//!
//! One [`crate::ports::Warehouse::load`] is one transaction:
//!
//! 1. **Decide** ([`decide`], a pure function): a file is already loaded when the ledger has
//!    its URL and version, or when its fingerprint is that of its URL's latest ledger row (a
//!    re-upload of unchanged content), or when an earlier file of the same request is the
//!    same URL and version or the same content; the ledger rows come from
//!    [`LoadPlan::ledger_same_version`] and [`LoadPlan::ledger_latest`] (or, on Redshift, one
//!    read of the request's URLs).
//! 2. **Stage** the other files' rows into a fresh temporary table
//!    ([`LoadPlan::create_staging`]): the spec's columns as `c0, c1, …` (so that no fact
//!    column name can clash with the bookkeeping), then the bookkeeping columns, named the same
//!    in every dialect: `"glueless_file"`, the file's position in the request, and
//!    `"glueless_row"`, a row number unique in the load that grows in request order. How rows
//!    get there is the adapter's: bound parameters (SQLite), a binary COPY (PostgreSQL), COPY
//!    from the staged Parquet on S3 (Redshift).
//! 3. With a `version_column`, **drop staged rows not newer** than the fact row with their key
//!    (`staged IS NULL OR (fact IS NOT NULL AND staged <= fact)`: a NULL version never wins
//!    over a row, a row whose version is NULL loses to any staged version). Without one, when
//!    every column is the key, drop staged rows whose key is in the table: they change nothing.
//! 4. **Keep one row per key**: the highest version (NULL lowest), then the later file, then
//!    the later row (`MERGE` refuses a source with one key twice).
//! 5. **Upsert** on the key ([`Upsert`]): update every other column, insert missing keys.
//! 6. **One ledger row per loaded file** ([`LoadPlan::ledger_insert`]), with the rows read from
//!    its parts.
//!
//! [`LoadPlan::steps`] are steps 3–5, in order, each saying which count of
//! [`crate::ports::LoadResult`] its affected rows go to.
//!
//! # Straight into the table
//!
//! When no staged key is in the fact table and no key comes twice in the load, steps 2–5
//! insert every staged row as it is. So a load first tries its rows straight into the table
//! (SQLite: one bound `INSERT` per row; PostgreSQL: a binary `COPY`), under a savepoint: the
//! table's primary key (or unique index on the key, which `ensure_table` requires) refuses the
//! first row that breaks the condition, and then the load rolls back to the savepoint and takes
//! steps 2–5 after all. Every row of an accepted attempt is merged (`rows_superseded` 0, but
//! for SQLite's empty table below) and the result says `direct`. Tables that only gain keys (orders, events) never stage; a table
//! that refused an attempt is tried again only after a growing number of loads ([`Appends`]),
//! so tables whose loads keep updating keys stage at once. Into an empty table SQLite's attempt
//! is an upsert that keeps the row step 4 would keep, so only a row refused for another reason
//! sends it to the staging steps. Redshift always stages: its rows come from S3 by `COPY`, and
//! a failed `COPY` would cost more than the staging steps save.
//!
//! # Why one transaction
//!
//! The fact rows and the ledger rows that say they were loaded must appear together or not at
//! all: fact rows without their ledger row would be merged again by the retry (harmless for an
//! upsert of the same rows, but not once a newer file changed them in between: the retry would
//! bring the older rows back), and a ledger row without its fact rows would make the retry skip
//! a file whose rows never arrived. So the decision, the staging, the deletes, the upsert and
//! the ledger rows run in one transaction, and the decision reads the ledger under the lock
//! that serializes loads into the table (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory
//! lock; on Redshift the decision runs before the lock to skip the COPYs, and a guard under
//! `LOCK TABLE glueless_loads` drops what another load recorded meanwhile).
//!
//! # Validation
//!
//! [`LoadPlan::new`] checks a [`TableSpec`] (indices in range, a key; then the dialect's
//! limits: name lengths, NUL characters, decimal precisions, reserved names) and every
//! statement is made from the checked plan. Each adapter keeps the specs it checked in a
//! [`CheckedSpecs`], so a table's spec is checked once per warehouse (at `ensure_table`, which
//! the pipeline calls before it loads), not again at every load: a later call with the same
//! spec reuses the check, a different spec for the table is checked anew.
//!
//! # When the contract changes
//!
//! [`evolve`]: the one comparison of a spec with the table as it exists, which `ensure_table`
//! applies (create, add the new optional columns with a `glueless_schema_changes` row, or
//! refuse) and `plan_table` only reports.

pub mod dialect;
pub mod evolve;

pub use dialect::{Dialect, TableName, Upsert, literal, quote};
pub use evolve::{ChangeKind, ExistingColumn, ExistingTable, Refusal, SCHEMA_LEDGER, TableChange, spec_fingerprint};

use crate::ports::FileKey;
use crate::ports::warehouse::{Column, FileLoad, LoadResult, SqlType, TableSpec, WarehouseError};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Mutex;

/// Staging column: the file's position in the request.
pub const FILE_COLUMN: &str = "\"glueless_file\"";
/// Staging column: a row number unique in the load, growing in request order.
pub const ROW_COLUMN: &str = "\"glueless_row\"";

/// Staging column of spec column `i`.
pub fn staged(i: usize) -> String {
    format!("c{i}")
}

// ---------------------------------------------------------------------------------------------
// 1. The decision

/// What a load does with one file of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Read its parts and load them.
    Load,
    /// The ledger (or an earlier file of this request, then `load_id` is this load's) already
    /// has it: nothing to do.
    AlreadyLoaded { load_id: String },
}

impl Decision {
    pub fn is_load(&self) -> bool {
        *self == Decision::Load
    }

    /// The port's answer for the file: `rows` read from its parts when it was loaded.
    pub fn file_load(&self, rows: u64) -> FileLoad {
        match self {
            Decision::Load => FileLoad::Loaded { rows },
            Decision::AlreadyLoaded { load_id } => FileLoad::AlreadyLoaded { load_id: load_id.clone() },
        }
    }
}

/// What the ledger holds about one file of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The load that recorded the file's URL and version.
    pub same_version: Option<String>,
    /// The URL's latest ledger row: its fingerprint and load.
    pub latest: Option<(String, String)>,
}

impl Recorded {
    /// From the ledger rows `(url, version, fingerprint, load_id)`, newest first.
    pub fn from_rows<'r>(
        key: &FileKey,
        rows: impl IntoIterator<Item = (&'r str, &'r str, &'r str, &'r str)>,
    ) -> Recorded {
        let mut out = Recorded::default();
        for (url, version, fingerprint, load_id) in rows {
            if url != key.url {
                continue;
            }
            if out.latest.is_none() {
                out.latest = Some((fingerprint.to_string(), load_id.to_string()));
            }
            if version == key.version {
                out.same_version = Some(load_id.to_string());
                break;
            }
        }
        out
    }
}

/// The ledger decision for each file of a request (`files`: key and fingerprint, in request
/// order; `recorded`: what the ledger holds about each, same order), for the load `load_id`.
pub fn decide<'f>(
    load_id: &str,
    files: impl IntoIterator<Item = (&'f FileKey, &'f str)>,
    recorded: &[Recorded],
) -> Vec<Decision> {
    let mut this_load: HashSet<&FileKey> = HashSet::new();
    let mut latest_here: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(recorded.len());
    for ((key, fingerprint), r) in files.into_iter().zip(recorded) {
        let found = if this_load.contains(key) {
            Some(load_id.to_string())
        } else if let Some(id) = &r.same_version {
            Some(id.clone())
        } else if let Some(fp) = latest_here.get(key.url.as_str()) {
            (*fp == fingerprint).then(|| load_id.to_string())
        } else {
            r.latest.as_ref().filter(|(fp, _)| fp == fingerprint).map(|(_, id)| id.clone())
        };
        out.push(match found {
            Some(load_id) => Decision::AlreadyLoaded { load_id },
            None => {
                this_load.insert(key);
                latest_here.insert(&key.url, fingerprint);
                Decision::Load
            }
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 2–5 straight into the table

/// When a load tries its rows straight into a fact table that has rows (module documentation,
/// "Straight into the table"): always, until the table refuses such an attempt; then that
/// table's next 1, 2, 4, … up to [`Appends::MAX_SKIP`] loads stage at once before one tries
/// again, and an accepted attempt starts over. A table whose every load updates keys so wastes
/// at most one attempt in `MAX_SKIP + 1` loads. One per warehouse, in memory: a new process
/// starts by trying.
#[derive(Debug, Default)]
pub struct Appends {
    /// By table: loads still to stage at once, and how many the next refusal skips.
    tables: Mutex<HashMap<String, (u32, u32)>>,
}

impl Appends {
    /// The most loads a refused table skips before it is tried again.
    pub const MAX_SKIP: u32 = 64;

    /// Whether this load into `table` tries the rows straight into it (a `false` counts as
    /// one skipped load).
    pub fn try_now(&self, table: &str) -> bool {
        match self.tables.lock().expect("lock").get_mut(table) {
            Some((skip, _)) if *skip > 0 => {
                *skip -= 1;
                false
            }
            _ => true,
        }
    }

    /// Whether the next load into `table` will try, without counting it: a load that reads its
    /// rows ahead for the attempt asks this first.
    pub fn would_try(&self, table: &str) -> bool {
        self.tables.lock().expect("lock").get(table).is_none_or(|(skip, _)| *skip == 0)
    }

    /// What the attempt of a load into `table` came to.
    pub fn record(&self, table: &str, accepted: bool) {
        let mut tables = self.tables.lock().expect("lock");
        if accepted {
            tables.remove(table);
        } else {
            let (skip, next) = tables.entry(table.to_string()).or_default();
            *skip = (*next).max(1);
            *next = (*skip * 2).min(Self::MAX_SKIP);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2–6. The statements

/// Which count of the load result a step's affected rows go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// `rows_superseded`: staged rows that lost to a newer one.
    Superseded,
    /// `rows_merged`: rows inserted or updated in the fact table.
    Merged,
    /// Neither.
    Nothing,
}

impl Counts {
    /// Adds a step's affected `rows` to its count.
    pub fn add(self, rows: u64, result: &mut LoadResult) {
        match self {
            Counts::Superseded => result.rows_superseded += rows,
            Counts::Merged => result.rows_merged += rows,
            Counts::Nothing => {}
        }
    }
}

/// One statement of steps 3–5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it does, for the golden files.
    pub what: &'static str,
    pub sql: String,
    pub counts: Counts,
}

/// A [`TableSpec`] checked against a dialect, and every statement made from it.
#[derive(Debug, Clone)]
pub struct LoadPlan<'a, D: Dialect> {
    pub spec: &'a TableSpec,
    pub dialect: D,
    pub name: TableName,
    /// The fact table, as the statements name it.
    pub fact: String,
}

/// The specs one warehouse has checked, by table (see the module documentation).
#[derive(Debug, Default)]
pub struct CheckedSpecs {
    by_table: Mutex<HashMap<String, TableSpec>>,
}

impl CheckedSpecs {
    /// The plan of `spec`: checked by [`LoadPlan::new`] unless this very spec was checked
    /// before (for the same dialect: one `CheckedSpecs` per warehouse).
    pub fn plan<'a, D: Dialect>(&self, spec: &'a TableSpec, dialect: D) -> Result<LoadPlan<'a, D>, WarehouseError> {
        if self.by_table.lock().expect("lock").get(&spec.table) == Some(spec) {
            return Ok(LoadPlan::checked(spec, dialect));
        }
        let plan = LoadPlan::new(spec, dialect)?;
        self.by_table.lock().expect("lock").insert(spec.table.clone(), spec.clone());
        Ok(plan)
    }
}

impl<'a, D: Dialect> LoadPlan<'a, D> {
    /// Checks `spec` (what every dialect needs, then `dialect`'s limits): the one place a spec
    /// is refused.
    pub fn new(spec: &'a TableSpec, dialect: D) -> Result<LoadPlan<'a, D>, WarehouseError> {
        let bad = |message: String| WarehouseError::Table { table: spec.table.clone(), message, retryable: false };
        if spec.columns.is_empty() {
            return Err(bad("the table spec has no columns".into()));
        }
        if spec.key.is_empty() {
            return Err(bad("the table spec has no key, which the MERGE needs; set schema.primaryKey".into()));
        }
        let n = spec.columns.len();
        if let Some(i) = spec.key.iter().chain(spec.version.iter()).find(|&&i| i >= n) {
            return Err(bad(format!("the table spec refers to column {i}, but it has {n} columns")));
        }
        dialect.check(spec).map_err(bad)?;
        Ok(LoadPlan::checked(spec, dialect))
    }

    /// A plan of a spec that [`LoadPlan::new`] accepted for this dialect before.
    fn checked(spec: &'a TableSpec, dialect: D) -> LoadPlan<'a, D> {
        let name = dialect.table_name(&spec.table);
        let fact = name.sql();
        LoadPlan { spec, dialect, name, fact }
    }

    fn col(&self, i: usize) -> &Column {
        &self.spec.columns[i]
    }

    /// The fact columns, quoted, in spec order.
    pub fn column_names(&self) -> Vec<String> {
        self.spec.columns.iter().map(|c| quote(&c.name)).collect()
    }

    /// The key columns, quoted, comma-separated.
    pub fn key_names(&self) -> String {
        self.spec.key.iter().map(|&k| quote(&self.col(k).name)).collect::<Vec<_>>().join(", ")
    }

    /// `c0 <type>, c1 <type>, …`: the staged columns with their types.
    pub fn typed_columns(&self) -> String {
        let typed: Vec<String> = self
            .spec
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} {}", staged(i), self.dialect.column_type(c.ty)))
            .collect();
        typed.join(", ")
    }

    /// `c0, c1, …`.
    pub fn plain_columns(&self) -> String {
        (0..self.spec.columns.len()).map(staged).collect::<Vec<_>>().join(", ")
    }

    /// `<fact>."k" = <staged>.c<k> AND …` over the key.
    pub fn key_match(&self, fact: &str, staging: &str) -> String {
        let terms: Vec<String> = self
            .spec
            .key
            .iter()
            .map(|&k| format!("{fact}.{} = {staging}.{}", quote(&self.col(k).name), staged(k)))
            .collect();
        terms.join(" AND ")
    }

    /// The fact table, created if missing: every spec column (`NOT NULL` when not nullable or
    /// in the key), the key as the `PRIMARY KEY`.
    pub fn create_table(&self) -> String {
        let mut sql = format!("CREATE TABLE IF NOT EXISTS {} (\n", self.fact);
        for (i, c) in self.spec.columns.iter().enumerate() {
            let not_null = if !c.nullable || self.spec.key.contains(&i) { " NOT NULL" } else { "" };
            let _ = writeln!(sql, "  {} {}{not_null},", quote(&c.name), self.dialect.column_type(c.ty));
        }
        let _ = write!(sql, "  PRIMARY KEY ({})\n)", self.key_names());
        sql
    }

    /// The statement that adds a missing column (for the message that names it).
    pub fn add_column(&self, c: &Column) -> String {
        format!("ALTER TABLE {} ADD COLUMN {} {};", self.fact, quote(&c.name), self.dialect.column_type(c.ty))
    }

    /// Every fact row, columns in spec order, ordered by the key.
    pub fn select_all(&self) -> String {
        format!("SELECT {} FROM {} ORDER BY {}", self.column_names().join(", "), self.fact, self.key_names())
    }

    /// Step 1: the load that recorded a URL (parameter 1) and version (parameter 2).
    pub fn ledger_same_version(&self) -> String {
        let p = |i| self.dialect.placeholder(i);
        format!(
            "SELECT \"load_id\" FROM {} WHERE \"object_url\" = {} AND \"object_version\" = {}",
            self.dialect.ledger(),
            p(1),
            p(2)
        )
    }

    /// Step 1: the fingerprint and load of a URL's (parameter 1) latest ledger row.
    pub fn ledger_latest(&self) -> String {
        format!(
            "SELECT \"fingerprint\", \"load_id\" FROM {} WHERE \"object_url\" = {}\n  ORDER BY \"loaded_at\" DESC, {} DESC LIMIT 1",
            self.dialect.ledger(),
            self.dialect.placeholder(1),
            self.dialect.ledger_order()
        )
    }

    /// Step 2: a fresh staging table.
    pub fn create_staging(&self) -> String {
        let d = &self.dialect;
        self.dialect.create_staging(&format!(
            "{}, {FILE_COLUMN} {} NOT NULL, {ROW_COLUMN} {} NOT NULL{}",
            self.typed_columns(),
            d.column_type(SqlType::Int32),
            d.column_type(SqlType::Int64),
            d.extra_staging_columns()
        ))
    }

    /// Steps 3–5, in order.
    pub fn steps(&self) -> Vec<Step> {
        let (spec, st, fact) = (self.spec, self.dialect.staging(), &self.fact);
        let n = spec.columns.len();
        let mut out = Vec::with_capacity(4);
        if let Some(v) = spec.version {
            let s = format!("s.{}", staged(v));
            let f = format!("f.{}", quote(&self.col(v).name));
            out.push(Step {
                what: "3. staged rows not newer than the fact row with their key",
                sql: format!(
                    "DELETE FROM {st} WHERE {ROW_COLUMN} IN (\n  SELECT s.{ROW_COLUMN} FROM {st} AS s\n  \
                     JOIN {fact} AS f ON {}\n  WHERE {s} IS NULL OR ({f} IS NOT NULL AND {}))",
                    self.key_match("f", "s"),
                    self.dialect.not_newer(self.col(v).ty, &s, &f)
                ),
                counts: Counts::Superseded,
            });
        } else if spec.key.len() == n {
            out.push(Step {
                what: "3. every column is the key: a staged row whose key is in the table changes nothing",
                sql: format!(
                    "DELETE FROM {st} WHERE {ROW_COLUMN} IN (\n  SELECT s.{ROW_COLUMN} FROM {st} AS s\n  \
                     JOIN {fact} AS f ON {})",
                    self.key_match("f", "s")
                ),
                counts: Counts::Nothing,
            });
        }
        let partition: Vec<String> = spec.key.iter().map(|&k| staged(k)).collect();
        let order = match spec.version {
            Some(v) => {
                format!("{} DESC NULLS LAST, {FILE_COLUMN} DESC, {ROW_COLUMN} DESC", self.dialect.version_order(v))
            }
            None => format!("{FILE_COLUMN} DESC, {ROW_COLUMN} DESC"),
        };
        out.push(Step {
            what: "4. one row per key: the highest version, then the later file, then the later row",
            sql: format!(
                "DELETE FROM {st} WHERE {ROW_COLUMN} IN (\n  SELECT {ROW_COLUMN} FROM (\n    \
                 SELECT {ROW_COLUMN}, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {order}) AS \"glueless_rank\"\n    \
                 FROM {st}) AS d\n  WHERE d.\"glueless_rank\" > 1)",
                partition.join(", ")
            ),
            counts: Counts::Superseded,
        });
        out.push(Step { what: "5. the upsert on the key", sql: self.upsert(), counts: Counts::Merged });
        out
    }

    fn upsert(&self) -> String {
        let (spec, st, fact) = (self.spec, self.dialect.staging(), &self.fact);
        let n = spec.columns.len();
        let others: Vec<usize> = (0..n).filter(|i| !spec.key.contains(i)).collect();
        let names = self.column_names().join(", ");
        match self.dialect.upsert() {
            Upsert::Merge => {
                let mut updates: Vec<String> =
                    others.iter().map(|&i| format!("{} = s.{}", quote(&self.col(i).name), staged(i))).collect();
                if updates.is_empty() {
                    // MERGE needs its WHEN MATCHED clause (Redshift); setting the key to itself
                    // changes nothing, and step 3 left no staged row whose key is in the table.
                    let k = spec.key[0];
                    updates.push(format!("{} = s.{}", quote(&self.col(k).name), staged(k)));
                }
                let values: Vec<String> = (0..n).map(|i| format!("s.{}", staged(i))).collect();
                format!(
                    "MERGE INTO {fact}\n  USING {st} AS s\n  ON {}\n  WHEN MATCHED THEN UPDATE SET {}\n  \
                     WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({})",
                    self.key_match(fact, "s"),
                    updates.join(", "),
                    values.join(", ")
                )
            }
            Upsert::OnConflict => {
                let updates: Vec<String> =
                    others.iter().map(|&i| format!("{0} = excluded.{0}", quote(&self.col(i).name))).collect();
                let action = if updates.is_empty() {
                    "NOTHING".to_string()
                } else {
                    format!("UPDATE SET {}", updates.join(", "))
                };
                // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint.
                format!(
                    "INSERT INTO {fact} ({names})\n  SELECT {} FROM {st} WHERE true\n  ON CONFLICT ({}) DO {action}",
                    self.plain_columns(),
                    self.key_names()
                )
            }
        }
    }

    /// Whether the fact table has a row: no row back means it is empty (a load into an empty
    /// table can skip steps 2–5 where the adapter can insert the rows straight into it).
    pub fn fact_has_rows(&self) -> String {
        format!("SELECT 1 FROM {} LIMIT 1", self.fact)
    }

    /// Step 6: one ledger row (parameters: URL, version, fingerprint, load id, dataset, table,
    /// rows read, loaded at).
    pub fn ledger_insert(&self) -> String {
        let params: Vec<String> = (1..=8).map(|i| self.dialect.placeholder(i)).collect();
        format!(
            "INSERT INTO {} (\"object_url\", \"object_version\", \"fingerprint\", \"load_id\", \"dataset\", \
             \"table_name\", \"rows_loaded\", \"loaded_at\")\n  VALUES ({})",
            self.dialect.ledger(),
            params.join(", ")
        )
    }

    /// The whole load as reviewable text (the golden files), with `fill`, the adapter's
    /// statement that fills the staging table.
    pub fn render(&self, fill: &str) -> String {
        let mut out = format!(
            "-- {} load of `{}` into {}: one transaction\n\n-- 1. the ledger decision, per file\n\n",
            self.dialect.name(),
            self.spec.dataset,
            self.fact
        );
        let _ = writeln!(out, "{};\n\n{};\n", self.ledger_same_version(), self.ledger_latest());
        let _ = writeln!(
            out,
            "-- 2. a fresh staging table, filled by the adapter\n\n{};\n\n{fill};\n",
            self.create_staging()
        );
        for step in self.steps() {
            let _ = writeln!(out, "-- {}\n\n{};\n", step.what, step.sql);
        }
        let _ = writeln!(out, "-- 6. one ledger row per loaded file\n\n{};", self.ledger_insert());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::warehouse::Column;

    fn key(url: &str, version: &str) -> FileKey {
        FileKey { url: url.into(), version: version.into() }
    }

    fn recorded(same_version: Option<&str>, latest: Option<(&str, &str)>) -> Recorded {
        Recorded {
            same_version: same_version.map(str::to_string),
            latest: latest.map(|(fp, id)| (fp.to_string(), id.to_string())),
        }
    }

    fn already(id: &str) -> Decision {
        Decision::AlreadyLoaded { load_id: id.into() }
    }

    #[test]
    fn the_ledger_decides_by_version_then_by_the_latest_fingerprint() {
        let files = [(key("a", "v1"), "fp1"), (key("b", "v2"), "fp2"), (key("c", "v3"), "fp3"), (key("d", "v1"), "x")];
        let got = decide(
            "L9",
            files.iter().map(|(k, fp)| (k, *fp)),
            &[
                // The same URL and version: already, whatever the fingerprint.
                recorded(Some("L1"), Some(("other", "L1"))),
                // A new version whose content is the URL's latest: already, by that load.
                recorded(None, Some(("fp2", "L2"))),
                // A new version with other content: load.
                recorded(None, Some(("fp-old", "L3"))),
                // Never seen: load.
                recorded(None, None),
            ],
        );
        assert_eq!(got, [already("L1"), already("L2"), Decision::Load, Decision::Load]);
    }

    #[test]
    fn an_earlier_file_of_the_request_counts_as_loaded_by_this_load() {
        let files = [
            (key("a", "v1"), "fp1"),
            (key("a", "v1"), "fp1"),
            // Same URL, new version, same content as the earlier file: already (this load).
            (key("a", "v2"), "fp1"),
            // Same URL, new content: load, even though the ledger's latest has this content,
            // since the earlier file of the request is now the URL's latest.
            (key("a", "v3"), "fp-ledger"),
        ];
        let none = recorded(None, Some(("fp-ledger", "L0")));
        let got = decide("L9", files.iter().map(|(k, fp)| (k, *fp)), &[none.clone(), none.clone(), none.clone(), none]);
        assert_eq!(got, [Decision::Load, already("L9"), already("L9"), Decision::Load]);
    }

    #[test]
    fn ledger_rows_newest_first_give_the_latest_and_the_same_version() {
        let rows = [("a", "v3", "f3", "L3"), ("b", "v1", "fb", "Lb"), ("a", "v2", "f2", "L2"), ("a", "v1", "f1", "L1")];
        assert_eq!(Recorded::from_rows(&key("a", "v2"), rows), recorded(Some("L2"), Some(("f3", "L3"))));
        assert_eq!(Recorded::from_rows(&key("a", "v9"), rows), recorded(None, Some(("f3", "L3"))));
        assert_eq!(Recorded::from_rows(&key("z", "v1"), rows), recorded(None, None));
    }

    #[derive(Debug, Clone, Copy)]
    struct Plain;

    impl Dialect for Plain {
        fn name(&self) -> &'static str {
            "plain"
        }
        fn column_type(&self, ty: SqlType) -> String {
            format!("{ty:?}").to_uppercase()
        }
        fn check(&self, spec: &TableSpec) -> Result<(), String> {
            if spec.table.contains('!') { Err("no `!` here".into()) } else { Ok(()) }
        }
        fn ledger_order(&self) -> &'static str {
            "\"seq\""
        }
    }

    fn spec(key: Vec<usize>, version: Option<usize>) -> TableSpec {
        let col = |name: &str| Column { name: name.into(), ty: SqlType::Int64, nullable: true };
        TableSpec { dataset: "d".into(), table: "s.t".into(), columns: vec![col("id"), col("v")], key, version }
    }

    #[test]
    fn a_spec_is_checked_once_with_the_dialect_limits() {
        assert!(LoadPlan::new(&spec(vec![0], Some(1)), Plain).is_ok());
        let err = |s: TableSpec| LoadPlan::new(&s, Plain).unwrap_err().to_string();
        assert!(err(spec(vec![], None)).contains("no key"));
        assert!(err(spec(vec![0], Some(2))).contains("refers to column 2"));
        assert!(err(TableSpec { table: "a!".into(), ..spec(vec![0], None) }).contains("no `!` here"));
        assert!(err(TableSpec { columns: vec![], ..spec(vec![], None) }).contains("no columns"));
    }

    /// [`Plain`] that counts the specs it checks.
    #[derive(Debug, Clone, Copy)]
    struct Counting(&'static std::sync::atomic::AtomicUsize);

    impl Dialect for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn column_type(&self, ty: SqlType) -> String {
            Plain.column_type(ty)
        }
        fn check(&self, spec: &TableSpec) -> Result<(), String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Plain.check(spec)
        }
        fn ledger_order(&self) -> &'static str {
            Plain.ledger_order()
        }
    }

    #[test]
    fn a_warehouse_checks_a_table_spec_once_and_a_changed_one_again() {
        static CHECKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let checks = || CHECKS.load(std::sync::atomic::Ordering::SeqCst);
        let (checked, d) = (CheckedSpecs::default(), Counting(&CHECKS));
        let s = spec(vec![0], Some(1));
        let first = checked.plan(&s, d).unwrap();
        for _ in 0..3 {
            let copy = s.clone();
            let again = checked.plan(&copy, d).unwrap();
            assert_eq!((again.fact.as_str(), again.steps()), (first.fact.as_str(), first.steps()));
        }
        assert_eq!(checks(), 1, "the same spec is checked once");
        // A different spec for the same table is checked, and refused when it is wrong.
        assert!(checked.plan(&spec(vec![0], Some(2)), d).unwrap_err().to_string().contains("refers to column 2"));
        let wrong = TableSpec { table: "a!".into(), ..spec(vec![0], None) };
        assert!(checked.plan(&wrong, d).unwrap_err().to_string().contains("no `!` here"));
        assert!(checked.plan(&wrong, d).is_err(), "a refused spec is never taken as checked");
        let other = spec(vec![0, 1], None);
        assert_eq!(checked.plan(&other, d).unwrap().steps()[0].counts, Counts::Nothing);
        assert_eq!(checks(), 4);
        // A second warehouse checks for itself.
        CheckedSpecs::default().plan(&s, d).unwrap();
        assert_eq!(checks(), 5);
    }

    #[test]
    fn a_refused_table_skips_one_then_twice_as_many_loads_up_to_the_cap() {
        let appends = Appends::default();
        // The loads tried (true) or staged at once (false) when every try is refused.
        let mut ways = Vec::new();
        for _ in 0..200 {
            let now = appends.try_now("t");
            if now {
                appends.record("t", false);
            }
            ways.push(now);
        }
        let tried: Vec<usize> = ways.iter().enumerate().filter(|&(_, &w)| w).map(|(i, _)| i).collect();
        let gaps: Vec<usize> = tried.windows(2).map(|w| w[1] - w[0] - 1).collect();
        assert_eq!(gaps[..7], [1, 2, 4, 8, 16, 32, 64]);
        assert!(gaps[7..].iter().all(|&g| g == Appends::MAX_SKIP as usize), "{gaps:?}");
        // Other tables are not held back; an accepted try starts over.
        assert!(appends.try_now("other"));
        while !appends.try_now("t") {}
        appends.record("t", true);
        assert!(appends.try_now("t") && appends.try_now("t"));
    }

    #[test]
    fn the_steps_depend_on_the_version_and_the_key() {
        let s = spec(vec![0], Some(1));
        let p = LoadPlan::new(&s, Plain).unwrap();
        let counts: Vec<Counts> = p.steps().iter().map(|s| s.counts).collect();
        assert_eq!(counts, [Counts::Superseded, Counts::Superseded, Counts::Merged]);
        assert!(p.steps()[0].sql.contains("s.c1 IS NULL OR (f.\"v\" IS NOT NULL AND s.c1 <= f.\"v\")"));
        assert!(
            p.steps()[1].sql.contains("ORDER BY c1 DESC NULLS LAST, \"glueless_file\" DESC, \"glueless_row\" DESC")
        );
        let s = spec(vec![0], None);
        let counts: Vec<Counts> = LoadPlan::new(&s, Plain).unwrap().steps().iter().map(|s| s.counts).collect();
        assert_eq!(counts, [Counts::Superseded, Counts::Merged]);
        let s = spec(vec![0, 1], None);
        let p = LoadPlan::new(&s, Plain).unwrap();
        let steps = p.steps();
        assert_eq!(steps[0].counts, Counts::Nothing, "an all-key table drops rows already there");
        assert!(steps[2].sql.contains("WHEN MATCHED THEN UPDATE SET \"id\" = s.c0"), "{}", steps[2].sql);
        assert!(p.create_staging().contains("\"glueless_file\" INT32 NOT NULL, \"glueless_row\" INT64 NOT NULL"));
    }
}
