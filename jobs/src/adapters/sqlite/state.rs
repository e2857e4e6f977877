//! The `StateStore` port on a SQLite file: the embedded default, shared safely by several
//! `glueless` processes on one machine.
//!
//! One table, `files`, keyed by (url, version). Every transition is a single conditional
//! `UPDATE … WHERE <the state the transition starts from>` whose changed-row count says whether
//! it happened, so two workers (threads or processes) racing for one file never both win:
//! SQLite serialises writers on the file and each statement sees the latest committed row.
//! The file runs in WAL mode, so readers (`glueless status`) never block the workers, with a
//! 10 s busy timeout; a write that still finds the file locked fails as retryable.
//!
//! rusqlite is synchronous: the connection sits behind a mutex and every call runs on tokio's
//! blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

use crate::ports::{Claim, FileKey, FileRecord, FileState, Filter, Millis, NewFile, Outcome, StateError, StateStore};

/// The layout this code reads and writes, kept in `PRAGMA user_version`. A later layout adds a
/// migration step from the previous number in [`migrate`].
const SCHEMA_VERSION: i64 = 1;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA_V1: &str = "
CREATE TABLE files (
    url           TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    dataset       TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    state         TEXT    NOT NULL
        CHECK (state IN ('RECEIVED', 'RUNNING', 'LOADED', 'REJECTED', 'FAILED', 'DEAD')),
    owner         TEXT,
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    retry_at      INTEGER,
    route         TEXT,
    last_error    TEXT,
    event_time    INTEGER,
    received_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    load_id       TEXT,
    rows_loaded   INTEGER,
    rows_rejected INTEGER,
    PRIMARY KEY (url, version)
) WITHOUT ROWID;
CREATE INDEX files_state_updated ON files (state, updated_at);
CREATE INDEX files_dataset ON files (dataset);
";

/// Indexes added within layout 1 (an older glueless reads and writes a file that has them, so
/// they need no new layout number): `status` counts a dataset's files per state, and lists the
/// ones in some states, from `files_dataset_state` alone, without reading the rows (100,000
/// records: a few milliseconds instead of a hundred). It covers `files_dataset`'s queries.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS files_dataset_state ON files (dataset, state, updated_at);
DROP INDEX IF EXISTS files_dataset;
";

/// The columns of a [`FileRecord`], in the order [`record`] reads them.
const COLUMNS: &str = "url, version, dataset, size, state, owner, lease_until, attempts, retry_at, route, last_error, \
                       event_time, received_at, updated_at, load_id, rows_loaded, rows_rejected";

/// Per-file state in a SQLite file (`[state] url = "sqlite:///…/state.db"`).
pub struct SqliteStateStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStateStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStateStore {
    /// Opens the store at `path`, creating the file and its table when missing. The folder must
    /// exist.
    pub fn open(path: &Path) -> Result<SqliteStateStore, StateError> {
        let store = path.display().to_string();
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
            _ => ".".to_string(),
        };
        let conn = Connection::open(path).map_err(|e| StateError {
            store: store.clone(),
            message: format!(
                "cannot open it: {e}; check that the folder {folder} exists and is writable, or set [state] url"
            ),
            retryable: super::sqlite_is_busy(&e),
            source: Some(e.into()),
        })?;
        let inner = Inner { conn: Mutex::new(conn), path: path.to_path_buf() };
        {
            let conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            super::sqlite_busy_retry(BUSY_TIMEOUT, || prepare(&conn))
                .map_err(|e| inner.fail("cannot prepare it", e))?;
            migrate(&inner, &conn)?;
        }
        Ok(SqliteStateStore { inner: Arc::new(inner) })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Connection) -> Result<T, StateError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&inner, &conn)
        })
        .await
        .map_err(|e| StateError {
            store: self.inner.store(),
            message: format!("the state store call did not finish: {e}"),
            retryable: false,
            source: Some(e.into()),
        })?
    }
}

impl Inner {
    fn store(&self) -> String {
        self.path.display().to_string()
    }

    /// A rusqlite error as a [`StateError`] that says what was being done and what may help.
    fn fail(&self, doing: &str, e: rusqlite::Error) -> StateError {
        let path = self.path.display();
        let hint = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                format!("; another process kept the file locked for more than {} s, try again", BUSY_TIMEOUT.as_secs())
            }
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                format!("; check that {path} and its folder are writable by this user, or set [state] url")
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => format!(
                "; {path} is not a glueless state store or is damaged: restore it from a backup, or set [state] url \
                 to another file"
            ),
            Some(ErrorCode::DiskFull) => "; free some disk space and try again".to_string(),
            Some(ErrorCode::SystemIoFailure) => format!("; check the disk and the file system holding {path}"),
            _ => String::new(),
        };
        let retryable = super::sqlite_is_busy(&e);
        StateError { store: self.store(), message: format!("{doing}: {e}{hint}"), retryable, source: Some(e.into()) }
    }
}

/// Per-connection settings.
fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Returns the mode in force: anything else than `wal` (a file system without shared memory)
    // still works, with readers and writers taking turns.
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Creates the table in a new file, or checks that an existing file has a layout this code knows.
fn migrate(inner: &Inner, conn: &Connection) -> Result<(), StateError> {
    let refuse = |message: String| StateError { store: inner.store(), message, retryable: false, source: None };
    let version: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| inner.fail("cannot read it", e))?;
    if version == SCHEMA_VERSION {
        return ensure_indexes(inner, conn);
    }
    if version > SCHEMA_VERSION {
        return Err(refuse(format!(
            "it was written by a newer glueless (layout {version}, this one knows up to {SCHEMA_VERSION}); upgrade \
             glueless, or set [state] url to another file"
        )));
    }
    // Two processes may create the file at once: the immediate transaction makes one wait for
    // the other, which then finds the layout in place.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(|e| inner.fail("cannot create the table", e))?;
    let version: i64 =
        tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| inner.fail("cannot read it", e))?;
    if version == 0 {
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| inner.fail("cannot read it", e))?;
        if objects > 0 {
            return Err(refuse(
                "the file is a SQLite database that glueless did not create (it holds other tables); set [state] url \
                 to a file of its own"
                    .to_string(),
            ));
        }
        tx.execute_batch(SCHEMA_V1).map_err(|e| inner.fail("cannot create the table", e))?;
        tx.execute_batch(INDEXES).map_err(|e| inner.fail("cannot create the table", e))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| inner.fail("cannot create the table", e))?;
    } else if version != SCHEMA_VERSION {
        return Err(refuse(format!(
            "it has layout {version}, which this glueless cannot read (it knows {SCHEMA_VERSION}); set [state] url to \
             another file"
        )));
    }
    tx.commit().map_err(|e| inner.fail("cannot create the table", e))
}

/// Adds the [`INDEXES`] to a file made before them. A file this user cannot write keeps working
/// without them (slower to count).
fn ensure_indexes(inner: &Inner, conn: &Connection) -> Result<(), StateError> {
    let present = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'files_dataset_state'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if present(conn).map_err(|e| inner.fail("cannot read it", e))? {
        return Ok(());
    }
    let added = || -> rusqlite::Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        if !present(&tx)? {
            tx.execute_batch(INDEXES)?;
        }
        tx.commit()
    };
    match added() {
        Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::ReadOnly)) => Ok(()),
        r => r.map_err(|e| inner.fail("cannot add its indexes", e)),
    }
}

/// Reads a row selected with [`COLUMNS`].
fn record(row: &Row<'_>) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        key: FileKey { url: row.get(0)?, version: row.get(1)? },
        dataset: row.get(2)?,
        size: row.get(3)?,
        state: state_at(row, 4)?,
        owner: row.get(5)?,
        lease_until: row.get(6)?,
        attempts: row.get(7)?,
        retry_at: row.get(8)?,
        route: row.get(9)?,
        last_error: row.get(10)?,
        event_time: row.get(11)?,
        received_at: row.get(12)?,
        updated_at: row.get(13)?,
        load_id: row.get(14)?,
        rows_loaded: row.get(15)?,
        rows_rejected: row.get(16)?,
    })
}

/// The state in column `idx`.
fn state_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<FileState> {
    let name: String = row.get(idx)?;
    FileState::parse(&name).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            format!("unknown file state {name:?} (written by a newer glueless?)").into(),
        )
    })
}

/// Records `file` RECEIVED unless its URL and version are known; whether it was new.
fn insert_file(conn: &Connection, file: &NewFile, now: Millis) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO files (url, version, dataset, size, state, attempts, event_time, received_at, \
             updated_at) VALUES (?1, ?2, ?3, ?4, 'RECEIVED', 0, ?5, ?6, ?6) \
             ON CONFLICT (url, version) DO NOTHING",
        )?
        .execute(params![file.key.url, file.key.version, file.dataset, u64_value(file.size)?, file.event_time, now])?;
    Ok(changed == 1)
}

/// `now + lease_ms`, without overflowing.
fn deadline(now: Millis, lease_ms: u64) -> Millis {
    now.saturating_add(Millis::try_from(lease_ms).unwrap_or(Millis::MAX))
}

fn u64_value(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn describe_key(key: &FileKey) -> String {
    format!("{} (version {})", key.url, key.version)
}

#[async_trait::async_trait]
impl StateStore for SqliteStateStore {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.inner.path.display())
    }

    async fn register(&self, file: &NewFile, now: Millis) -> Result<bool, StateError> {
        let file = file.clone();
        self.run(move |inner, conn| {
            insert_file(conn, &file, now)
                .map_err(|e| inner.fail(&format!("cannot register {}", describe_key(&file.key)), e))
        })
        .await
    }

    /// One transaction for all of them: a listing of 10,000 new files took 10,000 commits and
    /// hand-offs to the blocking pool, one after the other, before any file was worked on.
    async fn register_many(&self, files: &[NewFile], now: Millis) -> Result<Vec<bool>, StateError> {
        let files = files.to_vec();
        self.run(move |inner, conn| {
            let all = || -> rusqlite::Result<Vec<bool>> {
                let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
                let new = files.iter().map(|f| insert_file(&tx, f, now)).collect::<rusqlite::Result<Vec<_>>>()?;
                tx.commit()?;
                Ok(new)
            };
            all().map_err(|e| inner.fail(&format!("cannot register {} new files", files.len()), e))
        })
        .await
    }

    async fn claim(&self, key: &FileKey, claim: &Claim<'_>) -> Result<Option<FileRecord>, StateError> {
        let key = key.clone();
        let owner = claim.owner.to_string();
        let route = claim.route.to_string();
        let now = claim.now;
        let lease_until = deadline(now, claim.lease_ms);
        self.run(move |inner, conn| {
            // One statement: the condition and the change are applied under SQLite's write lock,
            // so of two racing claims the second finds the row RUNNING with a live lease.
            let sql = format!(
                "UPDATE files SET state = 'RUNNING', owner = ?3, lease_until = ?4, attempts = attempts + 1, \
                 route = ?5, updated_at = ?6 \
                 WHERE url = ?1 AND version = ?2 AND ( \
                     state = 'RECEIVED' \
                     OR (state = 'FAILED' AND (retry_at IS NULL OR retry_at <= ?6)) \
                     OR (state = 'RUNNING' AND (lease_until IS NULL OR lease_until <= ?6))) \
                 RETURNING {COLUMNS}"
            );
            let claimed = || -> rusqlite::Result<Option<FileRecord>> {
                conn.prepare_cached(&sql)?
                    .query_row(params![key.url, key.version, owner, lease_until, route, now], record)
                    .optional()
            };
            claimed().map_err(|e| inner.fail(&format!("cannot claim {}", describe_key(&key)), e))
        })
        .await
    }

    async fn renew(&self, key: &FileKey, owner: &str, now: Millis, lease_ms: u64) -> Result<bool, StateError> {
        let key = key.clone();
        let owner = owner.to_string();
        let lease_until = deadline(now, lease_ms);
        self.run(move |inner, conn| {
            let renewed = || -> rusqlite::Result<usize> {
                conn.prepare_cached(
                    "UPDATE files SET lease_until = ?4 \
                     WHERE url = ?1 AND version = ?2 AND state = 'RUNNING' AND owner = ?3",
                )?
                .execute(params![key.url, key.version, owner, lease_until])
            };
            let changed =
                renewed().map_err(|e| inner.fail(&format!("cannot renew the claim on {}", describe_key(&key)), e))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn finish(&self, key: &FileKey, owner: &str, outcome: &Outcome, now: Millis) -> Result<bool, StateError> {
        let key = key.clone();
        let owner = owner.to_string();
        let outcome = outcome.clone();
        self.run(move |inner, conn| {
            // ?1 url, ?2 version, ?3 owner, ?4 now; the outcome's values from ?5.
            const HELD: &str = "WHERE url = ?1 AND version = ?2 AND state = 'RUNNING' AND owner = ?3";
            let finished = || -> rusqlite::Result<usize> {
                let mut values: Vec<Value> = vec![
                    Value::Text(key.url.clone()),
                    Value::Text(key.version.clone()),
                    Value::Text(owner.clone()),
                    Value::Integer(now),
                ];
                let set = match &outcome {
                    Outcome::Loaded { load_id, rows_loaded, rows_rejected } => {
                        values.push(Value::Text(load_id.clone()));
                        values.push(Value::Integer(u64_value(*rows_loaded)?));
                        values.push(Value::Integer(u64_value(*rows_rejected)?));
                        "state = 'LOADED', last_error = NULL, load_id = ?5, rows_loaded = ?6, rows_rejected = ?7"
                    }
                    Outcome::Rejected { reason, rows_rejected } => {
                        values.push(Value::Text(reason.clone()));
                        values.push(Value::Integer(u64_value(*rows_rejected)?));
                        "state = 'REJECTED', last_error = ?5, rows_rejected = ?6"
                    }
                    Outcome::Failed { error, retry_at } => {
                        values.push(Value::Text(error.clone()));
                        values.push(Value::Integer(*retry_at));
                        "state = 'FAILED', last_error = ?5, retry_at = ?6"
                    }
                    Outcome::Dead { error } => {
                        values.push(Value::Text(error.clone()));
                        "state = 'DEAD', last_error = ?5"
                    }
                    Outcome::Released => "state = 'RECEIVED', attempts = max(attempts - 1, 0)",
                };
                let sql = format!("UPDATE files SET {set}, lease_until = NULL, updated_at = ?4 {HELD}");
                conn.prepare_cached(&sql)?.execute(params_from_iter(values))
            };
            let changed = finished()
                .map_err(|e| inner.fail(&format!("cannot record the outcome of {}", describe_key(&key)), e))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn get(&self, key: &FileKey) -> Result<Option<FileRecord>, StateError> {
        let key = key.clone();
        self.run(move |inner, conn| {
            let sql = format!("SELECT {COLUMNS} FROM files WHERE url = ?1 AND version = ?2");
            let found = || -> rusqlite::Result<Option<FileRecord>> {
                conn.prepare_cached(&sql)?.query_row(params![key.url, key.version], record).optional()
            };
            found().map_err(|e| inner.fail(&format!("cannot read {}", describe_key(&key)), e))
        })
        .await
    }

    async fn list(&self, filter: &Filter) -> Result<Vec<FileRecord>, StateError> {
        let filter = filter.clone();
        self.run(move |inner, conn| {
            let mut conditions: Vec<String> = Vec::new();
            let mut values: Vec<Value> = Vec::new();
            if !filter.states.is_empty() {
                let marks: Vec<String> = filter
                    .states
                    .iter()
                    .map(|s| {
                        values.push(Value::Text(s.as_str().to_string()));
                        format!("?{}", values.len())
                    })
                    .collect();
                conditions.push(format!("state IN ({})", marks.join(", ")));
            }
            if let Some(dataset) = &filter.dataset {
                values.push(Value::Text(dataset.clone()));
                conditions.push(format!("dataset = ?{}", values.len()));
            }
            if let Some(prefix) = &filter.url_prefix {
                // Not LIKE: `%` and `_` are ordinary characters in URLs.
                values.push(Value::Text(prefix.clone()));
                let n = values.len();
                conditions.push(format!("substr(url, 1, length(?{n})) = ?{n}"));
            }
            let mut sql = format!("SELECT {COLUMNS} FROM files");
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            sql.push_str(" ORDER BY updated_at DESC, received_at DESC, url, version");
            if let Some(limit) = filter.limit {
                values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
                sql.push_str(&format!(" LIMIT ?{}", values.len()));
            }
            let listed = || -> rusqlite::Result<Vec<FileRecord>> {
                conn.prepare_cached(&sql)?.query_map(params_from_iter(values), record)?.collect()
            };
            listed().map_err(|e| inner.fail("cannot list files", e))
        })
        .await
    }

    async fn count_by_state(&self, dataset: Option<&str>) -> Result<Vec<(FileState, u64)>, StateError> {
        let dataset = dataset.map(str::to_string);
        self.run(move |inner, conn| {
            let counted = || -> rusqlite::Result<Vec<(FileState, u64)>> {
                // Two statements, so that each is answered from an index alone (`?1 IS NULL OR …`
                // would read every row).
                let count = |r: &Row<'_>| -> rusqlite::Result<(FileState, u64)> { Ok((state_at(r, 0)?, r.get(1)?)) };
                match &dataset {
                    None => conn
                        .prepare_cached("SELECT state, count(*) FROM files GROUP BY state")?
                        .query_map([], count)?
                        .collect(),
                    Some(d) => conn
                        .prepare_cached("SELECT state, count(*) FROM files WHERE dataset = ?1 GROUP BY state")?
                        .query_map(params![d], count)?
                        .collect(),
                }
            };
            let mut out = counted().map_err(|e| inner.fail("cannot count files", e))?;
            out.sort_by_key(|(state, _)| *state);
            Ok(out)
        })
        .await
    }

    async fn replay(&self, key: &FileKey, now: Millis) -> Result<bool, StateError> {
        let key = key.clone();
        self.run(move |inner, conn| {
            let replayed = || -> rusqlite::Result<usize> {
                conn.prepare_cached(
                    "UPDATE files SET state = 'RECEIVED', attempts = 0, retry_at = NULL, lease_until = NULL, \
                     updated_at = ?3 \
                     WHERE url = ?1 AND version = ?2 AND state IN ('REJECTED', 'FAILED', 'DEAD')",
                )?
                .execute(params![key.url, key.version, now])
            };
            let changed = replayed().map_err(|e| inner.fail(&format!("cannot replay {}", describe_key(&key)), e))?;
            Ok(changed == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_file(url: &str) -> NewFile {
        NewFile {
            key: FileKey { url: url.to_string(), version: "v1".to_string() },
            dataset: "orders".to_string(),
            size: 42,
            event_time: Some(7),
        }
    }

    #[tokio::test]
    async fn many_files_are_registered_together_each_answered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStateStore::open(&dir.path().join("state.db")).unwrap();
        let (a, b, c) = (new_file("file:///l/a.csv"), new_file("file:///l/b.csv"), new_file("file:///l/c.csv"));
        assert!(store.register(&c, 1).await.unwrap());
        let mut b2 = b.clone();
        b2.key.version = "v2".into();
        let answers = store.register_many(&[a.clone(), b.clone(), c.clone(), a.clone(), b2.clone()], 5).await.unwrap();
        assert_eq!(answers, [true, true, false, false, true], "c was known, a came twice, b2 is a new version");
        for f in [&a, &b, &b2] {
            let r = store.get(&f.key).await.unwrap().unwrap();
            assert_eq!((r.state, r.received_at, r.size), (FileState::Received, 5, 42));
        }
        assert_eq!(store.get(&c.key).await.unwrap().unwrap().received_at, 1, "a known file is left as it was");
        assert!(store.register_many(&[], 6).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn reopening_keeps_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let file = new_file("file:///landing/orders/a.csv");
        let claimed = {
            let store = SqliteStateStore::open(&path).unwrap();
            assert!(store.register(&file, 1_000).await.unwrap());
            let claim = Claim { owner: "w1", now: 2_000, lease_ms: 500, route: "inline" };
            store.claim(&file.key, &claim).await.unwrap().unwrap()
        };
        let store = SqliteStateStore::open(&path).unwrap();
        assert_eq!(store.get(&file.key).await.unwrap(), Some(claimed));
        assert!(!store.register(&file, 3_000).await.unwrap(), "a reopened store still knows the file");
        assert_eq!(store.describe(), format!("sqlite://{}", path.display()));
    }

    #[test]
    fn a_missing_folder_is_reported_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder").join("state.db");
        let err = SqliteStateStore::open(&path).expect_err("the folder does not exist");
        assert!(!err.retryable);
        assert_eq!(err.store, path.display().to_string());
        assert!(err.message.contains("exists and is writable"), "{err}");
        // Issue 13: rusqlite's error is the source, not only words in the message.
        let source = std::error::Error::source(&err).expect("a source");
        let sqlite = source.downcast_ref::<rusqlite::Error>().expect("a rusqlite error");
        assert!(err.message.contains(&sqlite.to_string()), "{err}");
    }

    #[test]
    fn a_foreign_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warehouse.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE orders (id INTEGER)").unwrap();
        let err = SqliteStateStore::open(&path).expect_err("not a state store");
        assert!(err.message.contains("did not create"), "{err}");
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(SqliteStateStore::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let err = SqliteStateStore::open(&path).expect_err("a newer layout");
        assert!(err.message.contains("newer glueless"), "{err}");
    }

    #[tokio::test]
    async fn a_file_made_before_the_dataset_index_gets_it_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let index_names = |c: &Connection| -> Vec<String> {
            let mut s = c
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
                .unwrap();
            s.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        {
            // The file as the first release of layout 1 made it.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA_V1).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            assert_eq!(index_names(&c), ["files_dataset", "files_state_updated"]);
        }
        let store = SqliteStateStore::open(&path).unwrap();
        assert!(store.register(&new_file("file:///a.csv"), 1).await.unwrap());
        let mut other = new_file("file:///b.csv");
        other.dataset = "returns".into();
        assert!(store.register(&other, 1).await.unwrap());
        assert_eq!(store.count_by_state(Some("orders")).await.unwrap(), [(FileState::Received, 1)]);
        assert_eq!(store.count_by_state(None).await.unwrap(), [(FileState::Received, 2)]);
        drop(store);
        let c = Connection::open(&path).unwrap();
        assert_eq!(index_names(&c), ["files_dataset_state", "files_state_updated"]);
        let plan: String = c
            .query_row(
                "EXPLAIN QUERY PLAN SELECT state, count(*) FROM files WHERE dataset = 'x' GROUP BY state",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("COVERING INDEX files_dataset_state"), "{plan}");
    }

    #[tokio::test]
    async fn a_locked_file_is_a_retryable_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStateStore::open(&path).unwrap();
        store.inner.conn.lock().unwrap().busy_timeout(Duration::from_millis(10)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = store.register(&new_file("file:///a.csv"), 1).await.expect_err("the file is locked");
        assert!(err.retryable, "{err}");
        assert!(err.message.contains("try again"), "{err}");
        other.execute_batch("ROLLBACK").unwrap();
        assert!(store.register(&new_file("file:///a.csv"), 1).await.unwrap(), "the lock is gone");
    }
}
