//! What differs between the warehouses' SQL, and only that: names and types, the limits of a
//! dialect, the version comparison, the upsert form, the staging table's name and lifetime.
//! Everything else of a load is written once, in [`super::LoadPlan`].

use super::staged;
use crate::ports::warehouse::{SqlType, TableSpec};

/// `"name"`, with `"` doubled: one identifier whatever the name holds (every dialect quotes
/// every identifier, so column names with spaces, parentheses or quotes work and no name can
/// inject SQL).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'value'`, with `'` and `\` doubled: one string literal whatever the value holds (Redshift
/// reads backslash escapes in literals; the others never see a literal of a value).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// A contract's `table`, split into schema and name at the first dot (where the dialect has
/// schemas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// `schema.table` when both sides of the first dot are non-empty, else one name.
    pub fn parse(table: &str) -> TableName {
        match table.split_once('.') {
            Some((schema, name)) if !schema.is_empty() && !name.is_empty() => {
                TableName { schema: Some(schema.to_string()), name: name.to_string() }
            }
            _ => TableName { schema: None, name: table.to_string() },
        }
    }

    /// `"schema"."name"` or `"name"`.
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote(s), quote(&self.name)),
            None => quote(&self.name),
        }
    }
}

/// How staged rows reach the fact table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// `MERGE INTO fact USING staging … WHEN MATCHED THEN UPDATE … WHEN NOT MATCHED THEN
    /// INSERT …` (PostgreSQL 15+, Redshift).
    Merge,
    /// `INSERT INTO fact … SELECT … FROM staging ON CONFLICT (key) DO UPDATE SET …` (SQLite).
    OnConflict,
}

/// A warehouse's SQL dialect. Implementations are unit structs next to their adapter.
pub trait Dialect: Copy {
    /// For messages: `SQLite`, `PostgreSQL`, `Redshift`.
    fn name(&self) -> &'static str;

    /// The column type of a [`SqlType`] (fact table and staging table alike).
    fn column_type(&self, ty: SqlType) -> String;

    /// The fact table a contract's `table` names.
    fn table_name(&self, table: &str) -> TableName {
        TableName::parse(table)
    }

    /// Why this dialect cannot hold the spec, if it cannot (the message says what to change);
    /// the checks every dialect needs are done before.
    fn check(&self, _spec: &TableSpec) -> Result<(), String> {
        Ok(())
    }

    /// How the load's statements name the staging table.
    fn staging(&self) -> &'static str {
        "\"glueless_staging\""
    }

    /// The statement (or batch) that makes a fresh staging table of these column definitions.
    fn create_staging(&self, columns: &str) -> String {
        format!("CREATE TEMP TABLE \"glueless_staging\" ({columns})")
    }

    /// Column definitions the dialect adds after the bookkeeping columns, each starting with
    /// `, ` (none by default).
    fn extra_staging_columns(&self) -> &'static str {
        ""
    }

    /// What the dedupe sorts the staged version column `v` by (highest first).
    fn version_order(&self, v: usize) -> String {
        staged(v)
    }

    /// SQL that is true when the staged version `staged` is not newer than the fact row's
    /// `fact` (both non-NULL), for a version column of type `ty`.
    fn not_newer(&self, _ty: SqlType, staged: &str, fact: &str) -> String {
        format!("{staged} <= {fact}")
    }

    fn upsert(&self) -> Upsert {
        Upsert::Merge
    }

    /// Bound parameter `i` (1-based) of a statement.
    fn placeholder(&self, i: usize) -> String {
        format!("${i}")
    }

    /// How statements name the ledger `glueless_loads`.
    fn ledger(&self) -> &'static str {
        "\"glueless_loads\""
    }

    /// The ledger column that orders rows of the same `loaded_at` by recording.
    fn ledger_order(&self) -> &'static str;

    /// How statements name the schema ledger `glueless_schema_changes`.
    fn schema_ledger(&self) -> &'static str {
        "\"glueless_schema_changes\""
    }

    /// Whether two column names name the same column (exactly, by default).
    fn same_name(&self, a: &str, b: &str) -> bool {
        a == b
    }

    /// Whether a column the warehouse describes as `declared` holds `ty` as a column made for
    /// it would (by default: the same type name, after [`super::evolve::normalize_type`]).
    fn same_type(&self, declared: &str, ty: SqlType) -> bool {
        super::evolve::normalize_type(declared) == super::evolve::normalize_type(&self.column_type(ty))
    }

    /// Whether `ALTER TABLE … ALTER COLUMN … DROP NOT NULL` exists in the dialect.
    fn drops_not_null(&self) -> bool {
        true
    }
}
