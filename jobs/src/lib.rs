//! glueless-jobs: the pipeline around the engine — ports, adapters, the file job, the
//! dispatcher — and the `glueless` command line.
//!
//! - [`ports`]: the traits the core needs (`StateStore`, `Warehouse`, `Alerts`, `Launcher`).
//! - [`adapters`]: one module per adapter; the embedded default (SQLite state, SQLite
//!   warehouse, webhook or log alerts, in-process launcher) needs no server and no AWS SDK.
//! - [`cli`]: argument parsing, the commands, their reports and exit codes.

pub mod adapters;
pub mod cli;
pub mod pipeline;
pub mod ports;
pub mod settings;
