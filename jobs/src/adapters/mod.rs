//! Adapters: a folder per technology, each implementing ports of [`crate::ports`]
//! (`<Tech><Port>`), each behind the cargo feature of its dependencies. Only
//! [`crate::startup`] picks them.
//!
//! | folder | adapters | feature |
//! | --- | --- | --- |
//! | [`sqlite`] | [`SqliteStateStore`], [`SqliteWarehouse`]: the embedded default | (always) |
//! | [`postgres`] | `PostgresWarehouse` | `postgres` (default) |
//! | [`redshift`] | `RedshiftDataWarehouse` (the Data API); its SQL in [`redshift::sql`] | `redshift` |
//! | [`aws`] | `DynamoDbStateStore`, `SqsQueue`, `EcsLauncher`, `SnsAlerts`; the shared SDK configuration | `aws` |
//! | [`alerts`] | [`WebhookAlerts`], [`LogAlerts`] | (always) |
//!
//! Also here: [`InProcessLauncher`] (the embedded default launcher: large files run in this
//! process) and [`staged_parquet`] (reading a staged Parquet file back, for the warehouses that
//! load rows themselves).

pub mod alerts;
#[cfg(any(feature = "aws", feature = "redshift"))]
pub mod aws;
pub mod in_process_launcher;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod redshift;
pub mod sqlite;
pub mod staged_parquet;

pub use alerts::{LogAlerts, WebhookAlerts};
#[cfg(feature = "aws")]
pub use aws::{DynamoDbStateStore, EcsLauncher, SnsAlerts, SqsQueue};
pub use in_process_launcher::InProcessLauncher;
#[cfg(feature = "postgres")]
pub use postgres::PostgresWarehouse;
#[cfg(feature = "redshift")]
pub use redshift::RedshiftDataWarehouse;
pub use sqlite::{SqliteStateStore, SqliteWarehouse};
