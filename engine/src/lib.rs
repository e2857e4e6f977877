//! glueless-engine: one CSV object in, typed Parquet plus a quarantine of rejected rows out.
//!
//! Map of the modules, in the order data flows through them:
//!
//! - [`contract`]: the dataset contract (TOML with a Frictionless Table Schema inside), loaded
//!   and checked once, so nothing downstream re-validates it.
//! - [`store`]: object URLs (path, file://, s3://, memory://) to `object_store` locations.
//! - [`decode`]: streaming read, decompression, transcoding, and the CSV tokenizer.
//! - [`cells`]: typed parsing of single cell values (integer, number, decimal, boolean, date,
//!   time, datetime, year, string formats).
//! - [`validate`]: records to typed Arrow batches and rejected rows (with reasons).
//! - [`transform`]: the contract's DataFusion SQL over the validated stream.
//! - [`write`]: Parquet (split by size) and the JSON Lines quarantine.
//! - [`infer`]: a draft contract from sample files (`glueless infer`).
//! - [`job`]: one file end to end, and its report; [`limits`]: the bounds it keeps to.
//! - [`text`]: bounded, inert text for every message (size caps, control bytes, shell quoting).

pub mod cells;
pub mod contract;
pub mod decode;
pub mod infer;
pub mod job;
mod leb128;
pub mod limits;
pub mod store;
pub mod text;
pub mod transform;
pub mod validate;
pub mod write;

pub use contract::{Contract, ContractError};
pub use job::{Dataset, FileJob, JobError, Report, Status};
pub use limits::Limits;
pub use store::{Location, Stores};
