//! (being written) The `Warehouse` port on an embedded SQLite database file.

/// Placeholder until the adapter lands.
pub struct SqliteWarehouse;
