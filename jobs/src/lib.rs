//! glueless-jobs: the pipeline around the engine — ports, adapters, the file job, the
//! dispatcher — and the `glueless` command line.
//!
//! - [`ports`]: the traits the core needs (`StateStore`, `Warehouse`, `Alerts`, `Launcher`).
//! - [`adapters`]: one module per adapter; the embedded default (SQLite state, SQLite
//!   warehouse, webhook or log alerts, in-process launcher) needs no server and no AWS SDK.
//! - [`pipeline`]: the file job shared by every runtime, the dispatcher and the local service.
//! - [`events`]: object events from SQS bodies (EventBridge, S3 notification, SNS-wrapped).
//! - [`metrics`]: CloudWatch Embedded Metric Format lines, every metric name in one place.
//! - [`settings`]: `glueless.toml` and its `GLUELESS__…` overrides.
//! - [`redact`]: secrets out of every URL and message that is shown or stored.
//! - [`startup`]: the composition root: settings → adapters → pipeline, for every entry point.
//! - [`telemetry`]: log lines (text or JSON, with dataset, URL and state as fields) and their events.
//! - [`cli`]: argument parsing, the commands, their reports and exit codes.

pub mod adapters;
pub mod cli;
pub mod events;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod redact;
pub mod runtime;
pub mod settings;
pub mod startup;
pub mod telemetry;
