//! Acceptance suites for the ports: one generic suite per port, run against every adapter
//! (the SQLite ones here; DynamoDB, PostgreSQL and Redshift add one line each).

pub mod state_store;
pub mod warehouse;
