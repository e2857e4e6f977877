//! When the contract changes: the one comparison of a [`TableSpec`] with the fact table as it
//! exists, which both [`crate::ports::Warehouse::ensure_table`] (before a load, applying what
//! it may) and [`crate::ports::Warehouse::plan_table`] (`glueless plan`, changing nothing)
//! use, so that the plan and the load cannot disagree.
//!
//! What the comparison decides ([`TableChange`]):
//!
//! - no table: **create** it ([`LoadPlan::create_table`]);
//! - contract fields the table lacks, every one optional (nullable, not in the key): **add
//!   columns**, one `ALTER TABLE … ADD COLUMN` each (older rows read NULL there), each recorded
//!   in the ledger `glueless_schema_changes` ([`LoadPlan::schema_ledger_ddl`]) in the same
//!   transaction;
//! - the table matches the contract: **nothing**;
//! - anything that would lose or rewrite data, or that loads would trip over: **refuse**,
//!   with one [`Refusal`] per change naming it and the SQL an operator could run; nothing is
//!   applied then, not even the columns that could be added. The changes refused
//!   ([`ChangeKind`]): a table column that is not in the contract (dropped, or renamed, which
//!   looks like a drop and an add), a column whose type is not the contract's, a key the table
//!   has no primary key or unique index for, a new required field, a field made required that
//!   the table holds NULLs for, a field made optional whose column is `NOT NULL`.
//!
//! Names compare as the dialect compares them ([`Dialect::same_name`]: SQLite and Redshift
//! without case), types as the dialect reads them back ([`Dialect::same_type`]: SQLite by type
//! affinity, the others by their type names and synonyms). Key columns are `NOT NULL` whatever
//! the contract says, so their nullability is not compared.

use super::{Dialect, LoadPlan, quote};
use crate::ports::warehouse::{Column, TableSpec};
use glueless_engine::text::{bounded, inert};
use serde::Serialize;
use std::fmt::Write as _;

/// The ledger of applied schema changes.
pub const SCHEMA_LEDGER: &str = "glueless_schema_changes";

/// How much of a name a refusal message shows.
const NAME_SHOWN: usize = 200;

/// One column of the fact table as the warehouse describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingColumn {
    pub name: String,
    /// Its type as the warehouse names it (`INTEGER`, `numeric(10,2)`, `character varying(65535)`).
    pub declared: String,
    pub nullable: bool,
}

/// The fact table as it exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingTable {
    pub columns: Vec<ExistingColumn>,
    /// The columns of its primary key and of each full unique index; `None` where the
    /// warehouse does not keep them (Redshift does not enforce keys; the load's dedupe does).
    pub unique_keys: Option<Vec<Vec<String>>>,
    /// The columns [`LoadPlan::null_checks`] asked about that hold a NULL.
    pub with_nulls: Vec<String>,
}

/// A change of the contract the warehouse table cannot follow by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A table column that is not in the contract: dropped from it, or renamed.
    DroppedColumn,
    /// A column whose type is not the contract's.
    TypeChanged,
    /// The contract's key has no primary key or unique index of the table.
    KeyChanged,
    /// A required field the table lacks: its older rows would have no value.
    NewRequiredColumn,
    /// A required field whose column holds NULLs.
    RequiredWithNulls,
    /// An optional field whose column is `NOT NULL`: rows without it would be refused.
    MadeOptional,
}

/// One refused change: what it is, and the SQL an operator could run to settle it (after
/// which the next load, or `glueless replay`, goes through).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub change: ChangeKind,
    pub column: Option<String>,
    pub message: String,
    pub sql: String,
}

/// What the next load does to a fact table before it loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TableChange {
    Create { ddl: String },
    AddColumns { columns: Vec<String>, ddl: Vec<String> },
    Nothing,
    Refuse { refusals: Vec<Refusal> },
}

impl TableChange {
    /// The error a load meets when the change is refused (`None` otherwise): every refusal,
    /// message and SQL.
    pub fn refused(&self, table: &str) -> Option<crate::ports::WarehouseError> {
        let TableChange::Refuse { refusals } = self else { return None };
        let mut message = format!(
            "the contract changed in {} way{} the table cannot follow without losing or rewriting data; nothing was loaded or altered:",
            refusals.len(),
            if refusals.len() == 1 { "" } else { "s" }
        );
        for r in refusals {
            let _ = write!(message, " {} (operator SQL: {})", r.message, r.sql);
        }
        Some(crate::ports::WarehouseError::Table { table: table.to_string(), message, retryable: false })
    }
}

/// A name as a message shows it: bounded, control characters escaped.
fn shown(name: &str) -> String {
    inert(&bounded(name, NAME_SHOWN)).into_owned()
}

/// `xxh3:<hex>` of the table spec (dataset, table, columns, key, version): which contract a
/// schema change was made for.
pub fn spec_fingerprint(spec: &TableSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    format!("xxh3:{:016x}", twox_hash::XxHash3_64::oneshot(&json))
}

/// A type name in one spelling: lower case, synonyms to one name, no spaces.
pub fn normalize_type(declared: &str) -> String {
    let mut t = declared.trim().to_ascii_lowercase();
    for (from, to) in [
        ("character varying", "varchar"),
        ("timestamp with time zone", "timestamptz"),
        ("time without time zone", "time"),
        ("decimal", "numeric"),
        ("float8", "double precision"),
        ("int8", "bigint"),
        ("int4", "integer"),
        ("bool", "boolean"),
        ("int", "integer"),
    ] {
        if t == from || t.starts_with(&format!("{from}(")) {
            t = format!("{to}{}", &t[from.len()..]);
        }
    }
    t.retain(|c| !c.is_whitespace());
    t
}

impl<D: Dialect> LoadPlan<'_, D> {
    fn existing<'e>(&self, table: &'e ExistingTable, name: &str) -> Option<&'e ExistingColumn> {
        table.columns.iter().find(|e| self.dialect.same_name(&e.name, name))
    }

    fn is_key(&self, i: usize) -> bool {
        self.spec.key.contains(&i)
    }

    /// The queries whose answer [`ExistingTable::with_nulls`] holds: for each required,
    /// non-key field whose column is nullable, `(column, SQL that returns a row when it holds a NULL)`.
    pub fn null_checks(&self, table: &ExistingTable) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, c) in self.spec.columns.iter().enumerate() {
            if c.nullable || self.is_key(i) {
                continue;
            }
            if let Some(e) = self.existing(table, &c.name).filter(|e| e.nullable) {
                out.push((
                    e.name.clone(),
                    format!("SELECT 1 FROM {} WHERE {} IS NULL LIMIT 1", self.fact, quote(&c.name)),
                ));
            }
        }
        out
    }

    /// The operator's statements that give column `c` the contract's type (or nullability):
    /// `ALTER COLUMN` where the dialect has it, else a new column, filled, swapped in.
    fn rebuild_column(&self, c: &Column) -> String {
        let (fact, name, ty) = (&self.fact, quote(&c.name), self.dialect.column_type(c.ty));
        let new = quote(&format!("{}_new", c.name));
        format!(
            "ALTER TABLE {fact} ADD COLUMN {new} {ty}; UPDATE {fact} SET {new} = CAST({name} AS {ty}); \
             ALTER TABLE {fact} DROP COLUMN {name}; ALTER TABLE {fact} RENAME COLUMN {new} TO {name};"
        )
    }

    /// The comparison (see the module documentation). `existing` is `None` when there is no
    /// table; its `with_nulls` must hold the answers of [`LoadPlan::null_checks`].
    pub fn evolution(&self, existing: Option<&ExistingTable>) -> TableChange {
        let Some(table) = existing else { return TableChange::Create { ddl: self.create_table() } };
        let (fact, spec) = (&self.fact, self.spec);
        let mut refusals = Vec::new();
        let mut refuse = |change, column: Option<&str>, message: String, sql: String| {
            refusals.push(Refusal { change, column: column.map(str::to_string), message, sql })
        };
        let mut add = Vec::new();
        for e in &table.columns {
            if !spec.columns.iter().any(|c| self.dialect.same_name(&e.name, &c.name)) {
                refuse(
                    ChangeKind::DroppedColumn,
                    Some(&e.name),
                    format!(
                        "column `{}` of the table is not in the contract (dropped, or renamed): keep the field in the contract, rename the column to the new name, or drop it (its values are lost)",
                        shown(&e.name)
                    ),
                    format!("ALTER TABLE {fact} DROP COLUMN {};", quote(&e.name)),
                );
            }
        }
        for (i, c) in spec.columns.iter().enumerate() {
            let ty = self.dialect.column_type(c.ty);
            let Some(e) = self.existing(table, &c.name) else {
                if c.nullable && !self.is_key(i) {
                    add.push(c);
                } else {
                    refuse(
                        ChangeKind::NewRequiredColumn,
                        Some(&c.name),
                        format!(
                            "the required field `{}` is not a column of the table, and its older rows would have no value: add the column and give the older rows a value",
                            shown(&c.name)
                        ),
                        format!(
                            "{} UPDATE {fact} SET {} = <value> WHERE {1} IS NULL;",
                            self.add_column(c),
                            quote(&c.name)
                        ),
                    );
                }
                continue;
            };
            if !self.dialect.same_type(&e.declared, c.ty) {
                refuse(
                    ChangeKind::TypeChanged,
                    Some(&c.name),
                    format!(
                        "column `{}` is {} in the table, but the contract makes it {ty}: convert the column (or keep the field's type)",
                        shown(&c.name),
                        shown(&e.declared)
                    ),
                    self.rebuild_column(c),
                );
            }
            if self.is_key(i) {
                continue;
            }
            if !c.nullable && table.with_nulls.iter().any(|n| self.dialect.same_name(n, &c.name)) {
                refuse(
                    ChangeKind::RequiredWithNulls,
                    Some(&c.name),
                    format!(
                        "the field `{}` is now required, but the table holds NULLs in it: give those rows a value (or keep the field optional)",
                        shown(&c.name)
                    ),
                    format!("UPDATE {fact} SET {} = <value> WHERE {0} IS NULL;", quote(&c.name)),
                );
            }
            if c.nullable && !e.nullable {
                refuse(
                    ChangeKind::MadeOptional,
                    Some(&c.name),
                    format!(
                        "the field `{}` is now optional, but its column is NOT NULL, which would refuse rows without it: let the column hold NULLs",
                        shown(&c.name)
                    ),
                    match self.dialect.drops_not_null() {
                        true => format!("ALTER TABLE {fact} ALTER COLUMN {} DROP NOT NULL;", quote(&c.name)),
                        false => self.rebuild_column(c),
                    },
                );
            }
        }
        if let Some(keys) = &table.unique_keys {
            let key: Vec<&str> = spec.key.iter().map(|&k| spec.columns[k].name.as_str()).collect();
            let same = |cols: &Vec<String>| {
                cols.len() == key.len() && key.iter().all(|k| cols.iter().any(|c| self.dialect.same_name(c, k)))
            };
            if !keys.iter().any(same) {
                let quoted = self.key_names();
                let had = match keys.first() {
                    Some(k) => format!("its primary key or first unique index is ({})", shown(&k.join(", "))),
                    None => "it has none".into(),
                };
                refuse(
                    ChangeKind::KeyChanged,
                    None,
                    format!(
                        "the table has no PRIMARY KEY or UNIQUE index on exactly ({}), the contract's key, which the merge needs ({had}); if the key changed, the rows may need deduplicating first",
                        shown(&quoted)
                    ),
                    format!("CREATE UNIQUE INDEX {} ON {fact} ({quoted});", quote(&format!("{}_key", self.name.name))),
                );
            }
        }
        if !refusals.is_empty() {
            return TableChange::Refuse { refusals };
        }
        if add.is_empty() {
            return TableChange::Nothing;
        }
        TableChange::AddColumns {
            columns: add.iter().map(|c| c.name.clone()).collect(),
            ddl: add.iter().map(|c| self.add_column(c)).collect(),
        }
    }

    /// The ledger of applied schema changes, created if missing.
    pub fn schema_ledger_ddl(&self) -> String {
        let (text, int) = (
            self.dialect.column_type(crate::ports::SqlType::Text),
            self.dialect.column_type(crate::ports::SqlType::Int64),
        );
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\"dataset\" {text} NOT NULL, \"table_name\" {text} NOT NULL, \
             \"ddl\" {text} NOT NULL, \"fingerprint\" {text} NOT NULL, \"changed_at\" {int} NOT NULL)",
            self.dialect.schema_ledger()
        )
    }

    /// One row of the schema ledger; `values` are placeholders or literals of the dataset,
    /// table, DDL, fingerprint ([`spec_fingerprint`]) and time (ms since the epoch).
    pub fn schema_change_insert(&self, values: [String; 5]) -> String {
        format!(
            "INSERT INTO {} (\"dataset\", \"table_name\", \"ddl\", \"fingerprint\", \"changed_at\") VALUES ({})",
            self.dialect.schema_ledger(),
            values.join(", ")
        )
    }

    /// [`LoadPlan::schema_change_insert`] with the dialect's placeholders 1 to 5.
    pub fn schema_change_insert_params(&self) -> String {
        self.schema_change_insert([1, 2, 3, 4, 5].map(|i| self.dialect.placeholder(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SqlType;

    #[derive(Debug, Clone, Copy)]
    struct Pg;

    impl Dialect for Pg {
        fn name(&self) -> &'static str {
            "pg"
        }
        fn column_type(&self, ty: SqlType) -> String {
            match ty {
                SqlType::Text => "text".into(),
                SqlType::Int64 => "bigint".into(),
                SqlType::Decimal { precision, scale } => format!("numeric({precision}, {scale})"),
                _ => "timestamptz".into(),
            }
        }
        fn ledger_order(&self) -> &'static str {
            "\"seq\""
        }
    }

    fn col(name: &str, ty: SqlType, nullable: bool) -> Column {
        Column { name: name.into(), ty, nullable }
    }

    fn spec(columns: Vec<Column>) -> TableSpec {
        TableSpec { dataset: "d".into(), table: "t".into(), columns, key: vec![0], version: None }
    }

    fn v1() -> Vec<Column> {
        vec![col("id", SqlType::Int64, false), col("name", SqlType::Text, true), col("at", SqlType::Timestamp, false)]
    }

    fn table(columns: &[(&str, &str, bool)]) -> ExistingTable {
        ExistingTable {
            columns: columns
                .iter()
                .map(|(n, d, null)| ExistingColumn { name: n.to_string(), declared: d.to_string(), nullable: *null })
                .collect(),
            unique_keys: Some(vec![vec!["id".into()]]),
            with_nulls: vec![],
        }
    }

    fn as_created() -> ExistingTable {
        table(&[("id", "bigint", false), ("name", "text", true), ("at", "timestamp with time zone", false)])
    }

    fn kinds(change: &TableChange) -> Vec<ChangeKind> {
        match change {
            TableChange::Refuse { refusals } => refusals.iter().map(|r| r.change).collect(),
            other => panic!("refused, got {other:?}"),
        }
    }

    #[test]
    fn type_names_have_one_spelling() {
        assert_eq!(normalize_type("numeric(10, 2)"), normalize_type("NUMERIC(10,2)"));
        assert_eq!(normalize_type("DECIMAL(10,2)"), "numeric(10,2)");
        assert_eq!(normalize_type("character varying(65535)"), normalize_type("VARCHAR(65535)"));
        assert_eq!(normalize_type("timestamp with time zone"), "timestamptz");
        assert_eq!(normalize_type("time without time zone"), "time");
        assert_eq!(normalize_type("int"), "integer");
        assert_ne!(normalize_type("bigint"), normalize_type("integer"));
    }

    #[test]
    fn create_nothing_and_add() {
        let s = spec(v1());
        let p = LoadPlan::new(&s, Pg).unwrap();
        assert!(matches!(p.evolution(None), TableChange::Create { ddl } if ddl.starts_with("CREATE TABLE")));
        assert_eq!(p.evolution(Some(&as_created())), TableChange::Nothing);
        let mut v2 = v1();
        v2.push(col("note \"x\"", SqlType::Text, true));
        let s = spec(v2);
        let p = LoadPlan::new(&s, Pg).unwrap();
        assert_eq!(
            p.evolution(Some(&as_created())),
            TableChange::AddColumns {
                columns: vec!["note \"x\"".into()],
                ddl: vec!["ALTER TABLE \"t\" ADD COLUMN \"note \"\"x\"\"\" text;".into()]
            }
        );
    }

    #[test]
    fn every_lossy_change_is_refused_with_its_sql() {
        let p_of = |columns| spec(columns);
        // Dropped (or renamed: a drop and an add of a required field).
        let s = p_of(vec![
            col("id", SqlType::Int64, false),
            col("at", SqlType::Timestamp, false),
            col("title", SqlType::Text, false),
        ]);
        let change = LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created()));
        assert_eq!(kinds(&change), [ChangeKind::DroppedColumn, ChangeKind::NewRequiredColumn]);
        let e = change.refused("t").unwrap().to_string();
        assert!(e.contains("ALTER TABLE \"t\" DROP COLUMN \"name\";"), "{e}");
        assert!(e.contains("ALTER TABLE \"t\" ADD COLUMN \"title\" text; UPDATE \"t\" SET \"title\" = <value>"), "{e}");
        // A type change.
        let s = p_of(vec![
            col("id", SqlType::Int64, false),
            col("name", SqlType::Int64, true),
            col("at", SqlType::Timestamp, false),
        ]);
        let change = LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created()));
        assert_eq!(kinds(&change), [ChangeKind::TypeChanged]);
        assert!(change.refused("t").unwrap().to_string().contains("CAST(\"name\" AS bigint)"));
        // Made required: refused only where the table holds NULLs.
        let s = p_of(vec![
            col("id", SqlType::Int64, false),
            col("name", SqlType::Text, false),
            col("at", SqlType::Timestamp, false),
        ]);
        let p = LoadPlan::new(&s, Pg).unwrap();
        let mut t = as_created();
        assert_eq!(p.null_checks(&t).len(), 1);
        assert!(p.null_checks(&t)[0].1.contains("WHERE \"name\" IS NULL"));
        assert_eq!(p.evolution(Some(&t)), TableChange::Nothing);
        t.with_nulls = vec!["name".into()];
        assert_eq!(kinds(&p.evolution(Some(&t))), [ChangeKind::RequiredWithNulls]);
        // Made optional while the column is NOT NULL.
        let s = p_of(vec![
            col("id", SqlType::Int64, false),
            col("name", SqlType::Text, true),
            col("at", SqlType::Timestamp, true),
        ]);
        let change = LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created()));
        assert_eq!(kinds(&change), [ChangeKind::MadeOptional]);
        assert!(change.refused("t").unwrap().to_string().contains("ALTER COLUMN \"at\" DROP NOT NULL"));
        // Another key.
        let mut s = spec(v1());
        s.key = vec![0, 2];
        let change = LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created()));
        assert_eq!(kinds(&change), [ChangeKind::KeyChanged]);
        assert!(
            change
                .refused("t")
                .unwrap()
                .to_string()
                .contains("CREATE UNIQUE INDEX \"t_key\" ON \"t\" (\"id\", \"at\");")
        );
        // A refused change keeps the addable columns from being added.
        let mut cols = v1();
        cols[1].ty = SqlType::Int64;
        cols.push(col("extra", SqlType::Text, true));
        let s = spec(cols);
        assert_eq!(kinds(&LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created()))), [ChangeKind::TypeChanged]);
    }

    #[test]
    fn hostile_names_are_quoted_in_sql_and_inert_in_messages() {
        let evil = "x\"; DROP TABLE t; --\n\u{1b}[31m";
        let mut cols = v1();
        cols.push(col(evil, SqlType::Text, false));
        let s = spec(cols);
        let change = LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created()));
        let TableChange::Refuse { refusals } = &change else { panic!("{change:?}") };
        assert!(
            refusals[0].sql.starts_with("ALTER TABLE \"t\" ADD COLUMN \"x\"\"; DROP TABLE t; --"),
            "{}",
            refusals[0].sql
        );
        assert!(
            !refusals[0].message.contains('\n') && !refusals[0].message.contains('\u{1b}'),
            "{}",
            refusals[0].message
        );
        let long = "n".repeat(5000);
        let mut cols = v1();
        cols.push(col(&long, SqlType::Text, false));
        let s = spec(cols);
        let TableChange::Refuse { refusals } = LoadPlan::new(&s, Pg).unwrap().evolution(Some(&as_created())) else {
            panic!()
        };
        assert!(refusals[0].message.len() < 600, "bounded: {}", refusals[0].message.len());
    }
}
