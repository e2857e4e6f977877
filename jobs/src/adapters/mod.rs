//! Adapters: one module per technology and port (`<Tech><Port>`).

pub mod sqlite_state;
pub mod sqlite_warehouse;

pub use sqlite_state::SqliteStateStore;
pub use sqlite_warehouse::SqliteWarehouse;
