//! PostgreSQL 15+: the warehouse ([`PostgresWarehouse`]), loaded by binary COPY and MERGE.

pub mod warehouse;

pub use warehouse::PostgresWarehouse;
