//! SQLite: the embedded default, with no server. The file state store ([`SqliteStateStore`]) and
//! the warehouse ([`SqliteWarehouse`]), and what both need from SQLite: waiting out a busy file.

pub mod state;
pub mod warehouse;

pub use state::SqliteStateStore;
pub use warehouse::SqliteWarehouse;

/// Runs `f` again while SQLite says the file is busy, for up to `limit`. Switching a new file
/// to WAL needs an exclusive lock and SQLite does not wait for it through the busy timeout, so
/// two processes opening one file at the same moment would otherwise fail.
pub(crate) fn sqlite_busy_retry<T>(
    limit: std::time::Duration,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match f() {
            Err(e) if sqlite_is_busy(&e) && started.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(10 + rand::random_range(0..40)));
            }
            r => return r,
        }
    }
}

/// SQLite answered that another connection holds the lock: worth another try.
pub(crate) fn sqlite_is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}
