//! The SQL of the Redshift warehouse: DDL, queries, and the statements of one load, as pure
//! functions of a [`TableSpec`] (no AWS SDK here, so it builds without the `redshift` feature
//! and the generated SQL is checked by golden files in `tests/golden/redshift/`).
//!
//! # Types
//!
//! | [`SqlType`] | Redshift column |
//! | --- | --- |
//! | `Text` | `VARCHAR(65535)` |
//! | `Int64` | `BIGINT` |
//! | `Int32` | `INTEGER` |
//! | `Float64` | `DOUBLE PRECISION` |
//! | `Decimal(p, s)` | `DECIMAL(p, s)` (p ≤ 38, 0 ≤ s ≤ p) |
//! | `Boolean` | `BOOLEAN` |
//! | `Date` | `DATE` |
//! | `Time` | `TIME` |
//! | `Timestamp` | `TIMESTAMPTZ` |
//!
//! # Names
//!
//! Every identifier is quoted (`"…"`, a `"` inside doubled) and every value is a string literal
//! (`'…'`, a `'` doubled and a `\` doubled, as Redshift reads backslash escapes in literals), so
//! no contract name or file URL can inject SQL. A contract `table = "schema.table"` is the
//! table `"schema"."table"` (split at the first dot; the schema is created if missing); an
//! unqualified name and the ledger `glueless_loads` are in the first schema of the search path.
//! Redshift folds identifiers to lower case unless `enable_case_sensitive_identifier` is on, so
//! two contract columns that differ only in case are refused. Tables named `glueless_…` are
//! reserved for glueless.
//!
//! # A load
//!
//! One load is a read, then two phases on one Data API session:
//!
//! 0. **Decide** (a plain `ExecuteStatement`, [`ledger_query`]): the ledger rows of the
//!    request's URLs; the adapter skips each file whose URL and version are there, or whose
//!    fingerprint is that of the URL's latest ledger row (or of an earlier file of the request
//!    with the same URL), like the embedded warehouse.
//! 1. **Stage** (one or more `BatchExecuteStatement`s, [`LoadSql::staging`]): temporary tables
//!    only, so nothing is visible to anyone else and a failure here leaves nothing behind. A
//!    table `glueless_files` lists the files to load; per file with rows, a table
//!    `glueless_copy_<n>` whose columns are the Parquet columns in order (COPY from Parquet
//!    binds columns by position and needs as many table columns as file columns), filled by
//!    `COPY … FROM 's3://…' IAM_ROLE … FORMAT AS PARQUET` (with `MANIFEST` when the file has
//!    several parts, or when another object's key starts with the part's key: a COPY from one
//!    key is a prefix match); then one `INSERT` moves every copied row into `glueless_staging`
//!    with its file's position in the request and a row number, and `glueless_counts` keeps
//!    the rows read per file (for the ledger). Each file of the request has a table of its own
//!    because COPY cannot say which file a row came from, and "the later file wins" needs it.
//!    Temporary tables outlive the batch that made them as long as the session lives, which
//!    is why the load keeps one session; the staging needs two statements per file, more
//!    than the 40 statements one batch may hold for a full micro-batch of files, so it is
//!    split into batches of at most [`MAX_BATCH_STATEMENTS`].
//! 2. **Commit** (one `BatchExecuteStatement`, [`LoadSql::commit`]: one transaction):
//!    1. `LOCK TABLE glueless_loads`: loads serialize here (only here: the slow COPYs ran
//!       before), so the ledger read below sees every load committed before this one;
//!    2. the guard: files that another load recorded since step 0 (same URL and version, or
//!       the fingerprint of the URL's now latest row) are deleted from `glueless_files`, and
//!       their staged rows from `glueless_staging`;
//!    3. (3–5 are the load plan's statements, [`crate::ports::load_plan`], as in every
//!       dialect) with a `version_column`: staged rows not newer than the fact row with their key
//!       (one exists, and `staged.v IS NULL OR (fact.v IS NOT NULL AND staged.v <= fact.v)`);
//!    4. one row per key: highest version (NULL lowest), then later file, then later row
//!       number (COPY keeps no row order, so among rows of one file with the same key and
//!       version the survivor is unspecified);
//!    5. `MERGE INTO fact USING glueless_staging`: exactly one `WHEN MATCHED THEN UPDATE`
//!       (every non-key column) and one `WHEN NOT MATCHED THEN INSERT`, without extra
//!       conditions and with a table as the source (Redshift's rules), which is why 3 and 4
//!       are deletes before it;
//!    6. one ledger row per file still in `glueless_files`, numbered after the ledger's
//!       highest `ledger_seq` (the tie-break of "latest" between rows with the same
//!       `loaded_at`).
//!
//! Never a `TRUNCATE` (Redshift commits on it). Exactly once: the commit batch is one
//! transaction, so the fact rows and their ledger rows appear together or not at all; and
//! under the lock the guard sees every earlier load, so a file loaded meanwhile by a
//! concurrent duplicate load is dropped from this one instead of merged twice (and were the
//! lock ever not taken first, Redshift's serializable isolation would abort one of the two
//! instead: a retryable error). The adapter reads the ledger back after the commit to tell
//! which files this load recorded.

use crate::ports::load_plan::{Counts, Dialect, LoadPlan, TableChange};
pub use crate::ports::load_plan::{TableName, literal, quote};
use crate::ports::{SqlType, TableSpec, WarehouseError};
use std::fmt::Write as _;

/// The ledger table.
pub const LEDGER: &str = "glueless_loads";
/// The most statements one `BatchExecuteStatement` takes.
pub const MAX_BATCH_STATEMENTS: usize = 40;

const FILES: &str = "\"glueless_files\"";
const STAGING: &str = "\"glueless_staging\"";
const COUNTS: &str = "\"glueless_counts\"";

/// Redshift's dialect of the load plan.
#[derive(Debug, Clone, Copy)]
pub struct Redshift;

impl Dialect for Redshift {
    fn name(&self) -> &'static str {
        "Redshift"
    }

    fn column_type(&self, ty: SqlType) -> String {
        column_type(ty)
    }

    /// Reserved names, empty names and NUL characters, decimals Redshift cannot hold, and
    /// column names that differ only in case (Redshift folds them).
    fn check(&self, spec: &TableSpec) -> Result<(), String> {
        let table = TableName::parse(&spec.table);
        if table.name.to_ascii_lowercase().starts_with("glueless_") {
            return Err(format!(
                "table names starting with `glueless_` are reserved for glueless; rename `{}`",
                spec.table
            ));
        }
        if spec.table.contains('\0') || spec.columns.iter().any(|c| c.name.is_empty() || c.name.contains('\0')) {
            return Err("a table or column name is empty or holds a NUL character, which Redshift refuses".into());
        }
        for (i, c) in spec.columns.iter().enumerate() {
            if let SqlType::Decimal { precision, scale } = c.ty
                && (precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision)
            {
                return Err(format!(
                    "column `{}` is DECIMAL({precision},{scale}); Redshift holds precisions 1 to 38 and scales 0 to the precision",
                    c.name
                ));
            }
            if let Some(other) = spec.columns[..i].iter().find(|o| o.name.to_lowercase() == c.name.to_lowercase()) {
                return Err(format!(
                    "columns `{}` and `{}` differ only in case, which Redshift folds; rename one",
                    other.name, c.name
                ));
            }
        }
        Ok(())
    }

    fn ledger_order(&self) -> &'static str {
        "\"ledger_seq\""
    }

    /// Redshift folds names to lower case.
    fn same_name(&self, a: &str, b: &str) -> bool {
        a.to_lowercase() == b.to_lowercase()
    }

    /// Redshift's `ALTER COLUMN` changes a VARCHAR's size or an encoding only.
    fn drops_not_null(&self) -> bool {
        false
    }
}

/// The Redshift column type of a [`SqlType`].
pub fn column_type(ty: SqlType) -> String {
    match ty {
        SqlType::Text => "VARCHAR(65535)".into(),
        SqlType::Int64 => "BIGINT".into(),
        SqlType::Int32 => "INTEGER".into(),
        SqlType::Float64 => "DOUBLE PRECISION".into(),
        SqlType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        SqlType::Boolean => "BOOLEAN".into(),
        SqlType::Date => "DATE".into(),
        SqlType::Time => "TIME".into(),
        SqlType::Timestamp => "TIMESTAMPTZ".into(),
    }
}

/// The ledger, created if missing.
pub fn ledger_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  \"object_url\" VARCHAR(65535) NOT NULL,\n  \"object_version\" VARCHAR(65535) NOT NULL,\n  \
         \"fingerprint\" VARCHAR(65535) NOT NULL,\n  \"load_id\" VARCHAR(65535) NOT NULL,\n  \"dataset\" VARCHAR(65535) NOT NULL,\n  \
         \"table_name\" VARCHAR(65535) NOT NULL,\n  \"rows_loaded\" BIGINT NOT NULL,\n  \"loaded_at\" BIGINT NOT NULL,\n  \
         \"ledger_seq\" BIGINT NOT NULL,\n  PRIMARY KEY (\"object_url\", \"object_version\")\n)",
        quote(LEDGER)
    )
}

/// What [`crate::ports::Warehouse::ensure_table`] runs, in one batch (one transaction): the
/// ledger, the schema of a qualified name, and what the comparison decided
/// ([`crate::ports::load_plan::evolve`]): the fact table (the key is declared as the `PRIMARY
/// KEY`, which Redshift does not enforce: the load's dedupe keeps it unique), or, under
/// `LOCK TABLE glueless_loads` (the lock every load's commit takes first), one `ALTER TABLE …
/// ADD COLUMN` per new column (Redshift adds one column per statement, and allows it in a
/// transaction block) each followed by its row in `glueless_schema_changes` (`fingerprint`
/// of the spec, `now` in ms). A second loader that adds the same column meanwhile makes this
/// batch fail as a whole ("already exists"): the adapter then reads the table again.
pub fn ensure_statements(
    plan: &LoadPlan<'_, Redshift>,
    change: &TableChange,
    fingerprint: &str,
    now: i64,
) -> Vec<String> {
    let mut out = vec![ledger_ddl()];
    if let Some(schema) = &plan.name.schema {
        out.push(format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)));
    }
    match change {
        TableChange::Create { ddl } => out.push(ddl.clone()),
        TableChange::AddColumns { ddl, .. } => {
            out.push(plan.schema_ledger_ddl());
            out.push(format!("LOCK TABLE {}", quote(LEDGER)));
            for statement in ddl {
                out.push(statement.trim_end_matches(';').to_string());
                out.push(plan.schema_change_insert([
                    literal(&plan.spec.dataset),
                    literal(&plan.spec.table),
                    literal(statement),
                    literal(fingerprint),
                    now.to_string(),
                ]));
            }
        }
        TableChange::Nothing | TableChange::Refuse { .. } => {}
    }
    out
}

/// Rows `(table_type, column_name, data_type, character_maximum_length, numeric_precision,
/// numeric_scale, is_nullable)` of the fact table as it exists (none when it does not).
pub fn table_shape_query(plan: &LoadPlan<'_, Redshift>) -> String {
    let t = &plan.name;
    let schema = match &t.schema {
        Some(s) => format!("lower({})", literal(s)),
        None => "lower(current_schema())".into(),
    };
    format!(
        "SELECT t.table_type, c.column_name, c.data_type, c.character_maximum_length, c.numeric_precision, \
         c.numeric_scale, c.is_nullable FROM information_schema.tables AS t\n  \
         LEFT JOIN information_schema.columns AS c ON c.table_schema = t.table_schema AND c.table_name = t.table_name\n  \
         WHERE lower(t.table_schema) = {schema} AND lower(t.table_name) = lower({})\n  ORDER BY c.ordinal_position",
        literal(&t.name)
    )
}

/// A column's type as [`table_shape_query`] describes it, in one string:
/// `character varying(65535)`, `numeric(12,2)`, or the type name.
pub fn declared_type(data_type: &str, max_length: Option<i64>, precision: Option<i64>, scale: Option<i64>) -> String {
    match (data_type, max_length, precision, scale) {
        ("character varying" | "character", Some(n), _, _) => format!("{data_type}({n})"),
        ("numeric", _, Some(p), Some(s)) => format!("numeric({p},{s})"),
        _ => data_type.to_string(),
    }
}

/// The columns [`ledger_query`] returns, in order.
pub const LEDGER_COLUMNS: [&str; 9] = [
    "object_url",
    "object_version",
    "fingerprint",
    "load_id",
    "dataset",
    "table_name",
    "rows_loaded",
    "loaded_at",
    "ledger_seq",
];

/// Ledger rows, newest first (`loaded_at`, then `ledger_seq`); only those of `urls` if given.
pub fn ledger_query(urls: Option<&[&str]>) -> String {
    let cols: Vec<String> = LEDGER_COLUMNS.iter().map(|c| quote(c)).collect();
    let filter = match urls {
        Some([]) => "\n  WHERE FALSE".to_string(),
        Some(urls) => {
            let list: Vec<String> = urls.iter().map(|u| literal(u)).collect();
            format!("\n  WHERE \"object_url\" IN ({})", list.join(", "))
        }
        None => String::new(),
    };
    format!(
        "SELECT {} FROM {}{filter}\n  ORDER BY \"loaded_at\" DESC, \"ledger_seq\" DESC",
        cols.join(", "),
        quote(LEDGER)
    )
}

/// Where a file's rows are copied from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    /// One S3 object (`s3://bucket/key`), the file's only part.
    Object(String),
    /// A manifest (`s3://bucket/key`) that lists the file's parts.
    Manifest(String),
}

/// One file the load copies and records.
#[derive(Debug, Clone)]
pub struct LoadFile<'a> {
    /// Its position in the request (the later file wins ties).
    pub pos: usize,
    pub url: &'a str,
    pub version: &'a str,
    pub fingerprint: &'a str,
    /// `None` when the file has no parts (no valid rows): it only gets a ledger row.
    pub copy: Option<CopyFrom>,
}

/// The statements of one load.
#[derive(Debug, Clone)]
pub struct LoadSql {
    /// Temporary tables only; run in [`MAX_BATCH_STATEMENTS`]-statement batches on one session.
    pub staging: Vec<String>,
    /// One batch, one transaction, on the same session.
    pub commit: Vec<String>,
    /// Index in `staging` of each COPY, with the request position of its file.
    pub copies: Vec<(usize, usize)>,
    /// Indices in `commit` of the deletes whose affected rows are superseded rows (steps 3, 4).
    pub superseded: Vec<usize>,
    /// Index in `commit` of the MERGE (its affected rows are the merged rows).
    pub merge: usize,
}

impl LoadSql {
    /// The staging statements in batches the Data API accepts.
    pub fn staging_batches(&self) -> Vec<&[String]> {
        self.staging.chunks(MAX_BATCH_STATEMENTS).collect()
    }

    /// The whole load as reviewable text (the golden files).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, batch) in self.staging_batches().iter().enumerate() {
            let _ = writeln!(out, "-- staging batch {} (one session; temporary tables only)\n", i + 1);
            for s in batch.iter() {
                let _ = writeln!(out, "{s};\n");
            }
        }
        out.push_str("-- commit batch (same session; one transaction)\n\n");
        for s in &self.commit {
            let _ = writeln!(out, "{s};\n");
        }
        out
    }
}

fn copy_table(pos: usize) -> String {
    quote(&format!("glueless_copy_{pos}"))
}

/// The statements of one load of `files` (those the ledger read decided to load) into the
/// fact table of `spec`, or why Redshift cannot hold `spec`. `iam_role` empty means
/// `IAM_ROLE default` (the cluster's default role).
pub fn load_sql(
    spec: &TableSpec,
    load_id: &str,
    now: i64,
    files: &[LoadFile<'_>],
    iam_role: &str,
) -> Result<LoadSql, WarehouseError> {
    Ok(plan_sql(&LoadPlan::new(spec, Redshift)?, load_id, now, files, iam_role))
}

/// [`load_sql`] of a checked plan (the adapter's, checked once per table).
pub fn plan_sql(
    plan: &LoadPlan<'_, Redshift>,
    load_id: &str,
    now: i64,
    files: &[LoadFile<'_>],
    iam_role: &str,
) -> LoadSql {
    let spec = plan.spec;
    let (typed, plain) = (plan.typed_columns(), plan.plain_columns());
    let role = if iam_role.is_empty() { "default".to_string() } else { literal(iam_role) };

    // 1. Stage.
    let mut staging = vec![format!(
        "CREATE TEMP TABLE {FILES} (\"file_pos\" INTEGER NOT NULL, \"object_url\" VARCHAR(65535) NOT NULL, \
         \"object_version\" VARCHAR(65535) NOT NULL, \"fingerprint\" VARCHAR(65535) NOT NULL)"
    )];
    if !files.is_empty() {
        let values: Vec<String> = files
            .iter()
            .map(|f| format!("({}, {}, {}, {})", f.pos, literal(f.url), literal(f.version), literal(f.fingerprint)))
            .collect();
        staging.push(format!("INSERT INTO {FILES} VALUES\n  {}", values.join(",\n  ")));
    }
    staging.push(plan.create_staging());
    let mut copies = Vec::new();
    let mut unions = Vec::new();
    for f in files {
        let Some(from) = &f.copy else { continue };
        staging.push(format!("CREATE TEMP TABLE {} ({typed})", copy_table(f.pos)));
        let (url, manifest) = match from {
            CopyFrom::Object(url) => (url, ""),
            CopyFrom::Manifest(url) => (url, " MANIFEST"),
        };
        copies.push((staging.len(), f.pos));
        staging.push(format!(
            "COPY {} FROM {}\n  IAM_ROLE {role}\n  FORMAT AS PARQUET{manifest}",
            copy_table(f.pos),
            literal(url)
        ));
        unions.push(format!("SELECT {plain}, {} AS \"glueless_file\" FROM {}", f.pos, copy_table(f.pos)));
    }
    if !unions.is_empty() {
        staging.push(format!(
            "INSERT INTO {STAGING}\n  SELECT {plain}, \"glueless_file\", ROW_NUMBER() OVER (ORDER BY \"glueless_file\")\n  FROM ({}) AS u",
            unions.join("\n    UNION ALL ")
        ));
    }
    // The rows read per file, before the commit deletes any.
    staging.push(format!(
        "CREATE TEMP TABLE {COUNTS} AS\n  SELECT \"glueless_file\", COUNT(*) AS \"rows_read\" FROM {STAGING} GROUP BY \"glueless_file\""
    ));

    // 2. Commit. Deletes use `WHERE … IN (SELECT …)`, the form Redshift takes everywhere.
    let mut commit = vec![format!("LOCK TABLE {}", quote(LEDGER))];
    commit.push(format!(
        "DELETE FROM {FILES} WHERE \"file_pos\" IN (\n  SELECT f.\"file_pos\" FROM {FILES} AS f\n  \
         JOIN (SELECT \"object_url\", \"object_version\", \"fingerprint\",\n      \
         ROW_NUMBER() OVER (PARTITION BY \"object_url\" ORDER BY \"loaded_at\" DESC, \"ledger_seq\" DESC) AS \"recency\"\n    \
         FROM {ledger} WHERE \"object_url\" IN (SELECT \"object_url\" FROM {FILES})) AS l\n    \
         ON l.\"object_url\" = f.\"object_url\"\n  \
         WHERE l.\"object_version\" = f.\"object_version\" OR (l.\"recency\" = 1 AND l.\"fingerprint\" = f.\"fingerprint\"))",
        ledger = quote(LEDGER)
    ));
    commit.push(format!("DELETE FROM {STAGING} WHERE \"glueless_file\" NOT IN (SELECT \"file_pos\" FROM {FILES})"));
    let (mut superseded, mut merge) = (Vec::new(), 0);
    for step in plan.steps() {
        match step.counts {
            Counts::Superseded => superseded.push(commit.len()),
            Counts::Merged => merge = commit.len(),
            Counts::Nothing => {}
        }
        commit.push(step.sql);
    }
    let ledger_cols: Vec<String> = LEDGER_COLUMNS.iter().map(|c| quote(c)).collect();
    commit.push(format!(
        "INSERT INTO {ledger} ({})\n  SELECT f.\"object_url\", f.\"object_version\", f.\"fingerprint\", {}, {}, {}, \
         COALESCE(c.\"rows_read\", 0), {now}, b.\"base\" + f.\"file_pos\" + 1\n  FROM {FILES} AS f\n  \
         LEFT JOIN {COUNTS} AS c ON c.\"glueless_file\" = f.\"file_pos\"\n  \
         CROSS JOIN (SELECT COALESCE(MAX(\"ledger_seq\"), 0) AS \"base\" FROM {ledger}) AS b",
        ledger_cols.join(", "),
        literal(load_id),
        literal(&spec.dataset),
        literal(&spec.table),
        ledger = quote(LEDGER)
    ));
    LoadSql { staging, commit, copies, superseded, merge }
}

/// A COPY manifest of S3 objects with their sizes (COPY from Parquet needs
/// `meta.content_length`); every entry is mandatory, so a missing part fails the COPY.
pub fn manifest_json(entries: &[(String, u64)]) -> String {
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|(url, len)| serde_json::json!({"url": url, "mandatory": true, "meta": {"content_length": len}}))
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "entries": entries })).expect("JSON of strings and numbers")
}

/// A short label for a statement in messages: its first line, cut at 160 characters.
pub fn statement_label(sql: &str) -> String {
    let first = sql.lines().next().unwrap_or("").trim();
    if first.chars().count() > 160 {
        format!("{}…", first.chars().take(160).collect::<String>())
    } else {
        first.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_schema_types_match_the_column_types() {
        for (data_type, len, p, sc, ty) in [
            ("character varying", Some(65535), None, None, SqlType::Text),
            ("numeric", None, Some(20), Some(2), SqlType::Decimal { precision: 20, scale: 2 }),
            ("timestamp with time zone", None, None, None, SqlType::Timestamp),
            ("time without time zone", None, None, None, SqlType::Time),
            ("double precision", None, Some(53), None, SqlType::Float64),
            ("bigint", None, Some(64), Some(0), SqlType::Int64),
            ("boolean", None, None, None, SqlType::Boolean),
        ] {
            let declared = declared_type(data_type, len, p, sc);
            assert!(Redshift.same_type(&declared, ty), "{declared} is {ty:?}");
        }
        assert!(!Redshift.same_type(&declared_type("character varying", Some(256), None, None), SqlType::Text));
        assert!(!Redshift.same_type(
            &declared_type("numeric", None, Some(20), Some(4)),
            SqlType::Decimal { precision: 20, scale: 2 }
        ));
        assert!(Redshift.same_name("Qty", "qty"));
    }
    use crate::ports::warehouse::Column;

    fn spec(version: bool) -> TableSpec {
        let col = |name: &str, ty| Column { name: name.into(), ty, nullable: true };
        TableSpec {
            dataset: "orders".into(),
            table: "sales.fact_orders".into(),
            columns: vec![
                col("id", SqlType::Int64),
                col("note \"x\"", SqlType::Text),
                col("updated", SqlType::Timestamp),
            ],
            key: vec![0],
            version: version.then_some(2),
        }
    }

    fn file(pos: usize, copy: Option<CopyFrom>) -> LoadFile<'static> {
        LoadFile { pos, url: "s3://landing/it's.csv", version: "v\\1", fingerprint: "xxh3:1", copy }
    }

    #[test]
    fn names_and_literals_are_quoted_whole() {
        assert_eq!(quote(r#"unit "price" (EUR)"#), r#""unit ""price"" (EUR)""#);
        assert_eq!(literal(r"it's a \ test"), r"'it''s a \\ test'");
        assert_eq!(TableName::parse("a.b.c").sql(), r#""a"."b.c""#);
        assert_eq!(TableName::parse("fact").sql(), r#""fact""#);
        assert_eq!(TableName::parse(".x").sql(), r#"".x""#);
    }

    #[test]
    fn types_map_to_redshift() {
        assert_eq!(column_type(SqlType::Decimal { precision: 20, scale: 2 }), "DECIMAL(20,2)");
        assert_eq!(column_type(SqlType::Timestamp), "TIMESTAMPTZ");
        assert_eq!(column_type(SqlType::Text), "VARCHAR(65535)");
    }

    /// Whether [`load_sql`] makes the statements of `spec` or says why Redshift cannot hold it.
    fn check_spec(spec: &TableSpec) -> Result<(), String> {
        load_sql(spec, "L1", 5, &[file(0, None)], "").map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn specs_redshift_cannot_hold_are_refused() {
        let mut s = spec(true);
        assert!(check_spec(&s).is_ok());
        s.columns[1].ty = SqlType::Decimal { precision: 40, scale: 2 };
        assert!(check_spec(&s).unwrap_err().contains("DECIMAL(40,2)"));
        let mut s = spec(true);
        s.columns[1].name = "ID".into();
        assert!(check_spec(&s).unwrap_err().contains("case"));
        let mut s = spec(true);
        s.table = "x.glueless_loads".into();
        assert!(check_spec(&s).unwrap_err().contains("reserved"));
    }

    #[test]
    fn the_commit_batch_follows_the_redshift_rules() {
        let files = [file(0, Some(CopyFrom::Object("s3://b/a.parquet".into()))), file(2, None)];
        let sql = load_sql(&spec(true), "L1", 5, &files, "").unwrap();
        assert!(sql.commit[0].starts_with("LOCK TABLE \"glueless_loads\""));
        let merge = &sql.commit[sql.merge];
        assert_eq!(merge.matches("WHEN MATCHED").count(), 1);
        assert_eq!(merge.matches("WHEN NOT MATCHED").count(), 1);
        assert!(merge.contains("USING \"glueless_staging\" AS s"));
        assert_eq!(sql.superseded.len(), 2);
        assert!(sql.commit.iter().chain(&sql.staging).all(|s| !s.to_uppercase().contains("TRUNCATE")));
        assert_eq!(sql.copies, vec![(4, 0)]);
        assert!(sql.staging[4].contains("IAM_ROLE default"));
        assert!(sql.staging[1].contains(r"'s3://landing/it''s.csv', 'v\\1'"));
        assert!(sql.commit.len() <= MAX_BATCH_STATEMENTS);
    }

    #[test]
    fn many_files_stage_in_several_batches() {
        let copies: Vec<LoadFile<'_>> =
            (0..30).map(|i| file(i, Some(CopyFrom::Manifest(format!("s3://b/{i}.manifest"))))).collect();
        let sql = load_sql(&spec(false), "L1", 5, &copies, "arn:aws:iam::1:role/r").unwrap();
        assert_eq!(sql.staging.len(), 3 + 2 * 30 + 2);
        assert_eq!(sql.staging_batches().len(), 2);
        assert!(sql.staging_batches().iter().all(|b| b.len() <= MAX_BATCH_STATEMENTS));
        assert!(sql.staging[4].ends_with("FORMAT AS PARQUET MANIFEST"));
        assert_eq!(sql.superseded.len(), 1, "without a version only the dedupe supersedes");
    }

    #[test]
    fn an_all_key_table_still_has_both_merge_clauses() {
        let mut s = spec(false);
        s.columns.truncate(1);
        let sql = load_sql(&s, "L1", 5, &[file(0, None)], "").unwrap();
        let merge = &sql.commit[sql.merge];
        assert!(merge.contains("WHEN MATCHED THEN UPDATE SET \"id\" = s.c0"), "{merge}");
        assert!(
            sql.commit[sql.merge - 2].contains("JOIN \"sales\".\"fact_orders\" AS f ON f.\"id\" = s.c0)"),
            "{:?}",
            sql.commit
        );
    }

    #[test]
    fn ledger_queries_filter_and_order() {
        assert!(ledger_query(Some(&[])).contains("WHERE FALSE"));
        let q = ledger_query(Some(&["s3://a", "s3://b'"]));
        assert!(q.contains("IN ('s3://a', 's3://b''')"), "{q}");
        assert!(q.ends_with("ORDER BY \"loaded_at\" DESC, \"ledger_seq\" DESC"));
    }

    #[test]
    fn manifests_list_sizes() {
        let m: serde_json::Value = serde_json::from_str(&manifest_json(&[("s3://b/k".into(), 7)])).unwrap();
        assert_eq!(m["entries"][0]["meta"]["content_length"], 7);
        assert_eq!(m["entries"][0]["mandatory"], true);
    }
}
