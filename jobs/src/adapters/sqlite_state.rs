//! (being written) The `StateStore` port on a SQLite file.

/// Placeholder until the adapter lands.
pub struct SqliteStateStore;
