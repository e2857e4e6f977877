//! Amazon Redshift: the statements of a load ([`sql`], no SDK needed, so that their golden
//! files are checked in every build) and the warehouse that runs them through the Redshift Data
//! API ([`RedshiftDataWarehouse`], feature `redshift`).

#[cfg(feature = "redshift")]
pub mod data;
pub mod sql;

#[cfg(feature = "redshift")]
pub use data::RedshiftDataWarehouse;
