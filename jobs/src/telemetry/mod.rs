//! Logs: every line on stderr is a `tracing` event, written by one layer ([`Lines`]) as text
//! on a terminal or as one JSON object per line in Lambda and ECS, so that CloudWatch Logs
//! Insights can filter by dataset, object URL or state. The EMF metric lines ([`crate::metrics`])
//! and the commands' reports go to stdout and are not logs.
//!
//! - Text (`glueless: LOADED file:///lake/landing/orders/a.csv [orders]: 3 rows loaded, …`):
//!   the message only, as a person reads it; the fields are already in its words.
//! - JSON (`{"timestamp":…,"level":"INFO","target":…,"message":…,"dataset":"orders","url":…}`):
//!   the message, the fields of the spans the event is in (a file job's span carries `dataset`,
//!   `url` and `version`), then the event's own fields (`state`, `load_id`, `rows_loaded`, …).
//!
//! Every text value — the message and each field — is redacted ([`crate::redact::text`]) and
//! made inert ([`glueless_engine::text::inert`]) in both formats: a key or a cell cannot
//! repaint a terminal or forge a line, and a driver's error cannot leak a password.
//!
//! Chosen from the environment of the process (not `glueless.toml`: logging starts before
//! the configuration is read, and a configuration error must be logged too):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `GLUELESS_LOG_FORMAT` | `text` or `json`; unset: `json` when `AWS_LAMBDA_FUNCTION_NAME` or `ECS_CONTAINER_METADATA_URI_V4` is set, else `text` |
//! | `GLUELESS_LOG`, else `RUST_LOG` | a filter in `RUST_LOG` syntax (`warn`, `glueless_jobs=debug`); unset: [`DEFAULT_FILTER`] |
//!
//! ```
//! use glueless_jobs::telemetry::{LogFormat, LogSettings};
//! let env = |name: &str| (name == "AWS_LAMBDA_FUNCTION_NAME").then(|| "glueless".to_string());
//! let s = LogSettings::from_env(env).unwrap();
//! assert_eq!(s.format, LogFormat::Json);
//! assert_eq!(s.filter, glueless_jobs::telemetry::DEFAULT_FILTER);
//! ```

pub mod events;
mod lines;

pub use events::Event;
pub use lines::Lines;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

/// glueless's own events from `info` up; libraries' (the AWS SDK, the Lambda runtime) from `warn`.
pub const DEFAULT_FILTER: &str = "warn,glueless_jobs=info,glueless_engine=info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `<program>: <message>`, for a person at a terminal.
    Text,
    /// One JSON object per line, for CloudWatch Logs.
    Json,
}

/// The log format and filter of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// Directives in `RUST_LOG` syntax.
    pub filter: String,
}

/// The log environment variables cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogSettingsError {
    #[error("GLUELESS_LOG_FORMAT={0:?} is not a log format; use `text` or `json`")]
    Format(String),
    #[error(
        "{var}={value:?} is not a log filter ({source}); use a level (`warn`) or `target=level` pairs (`glueless_jobs=debug,warn`)"
    )]
    Filter {
        var: &'static str,
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

impl LogSettings {
    /// The settings from environment variables, read through `env` (`std::env::var` in a
    /// binary, a map in a test).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<LogSettings, LogSettingsError> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let format = match set("GLUELESS_LOG_FORMAT") {
            Some(f) if f.trim().eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(f) if f.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(f) => return Err(LogSettingsError::Format(f)),
            None if set("AWS_LAMBDA_FUNCTION_NAME").is_some() || set("ECS_CONTAINER_METADATA_URI_V4").is_some() => {
                LogFormat::Json
            }
            None => LogFormat::Text,
        };
        let (filter, var) = match (set("GLUELESS_LOG"), set("RUST_LOG")) {
            (Some(f), _) => (f, Some("GLUELESS_LOG")),
            (None, Some(f)) => (f, Some("RUST_LOG")),
            (None, None) => (DEFAULT_FILTER.to_string(), None),
        };
        if let (Some(var), Err(source)) = (var, EnvFilter::try_new(&filter)) {
            return Err(LogSettingsError::Filter { var, value: filter, source });
        }
        Ok(LogSettings { format, filter })
    }
}

/// Starts logging for the process `program` (the prefix of text lines): the settings from the
/// environment, lines to stderr. Call once, first thing in `main`.
pub fn init(program: &'static str) -> Result<LogSettings, LogSettingsError> {
    let settings = LogSettings::from_env(|name| std::env::var(name).ok())?;
    let filter = EnvFilter::try_new(&settings.filter).expect("checked by LogSettings::from_env");
    let subscriber = tracing_subscriber::registry().with(filter).with(Lines::stderr(settings.format, program));
    // Only fails when a subscriber is already set: then that one stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<LogSettings, LogSettingsError> {
        let env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LogSettings::from_env(|name| env.get(name).cloned())
    }

    #[test]
    fn json_in_lambda_and_ecs_text_elsewhere_and_the_override_wins() {
        assert_eq!(settings(&[]).unwrap().format, LogFormat::Text);
        assert_eq!(settings(&[("AWS_LAMBDA_FUNCTION_NAME", "f")]).unwrap().format, LogFormat::Json);
        let ecs = ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/x");
        assert_eq!(settings(&[ecs]).unwrap().format, LogFormat::Json);
        assert_eq!(settings(&[ecs, ("GLUELESS_LOG_FORMAT", "Text")]).unwrap().format, LogFormat::Text);
        assert_eq!(settings(&[("GLUELESS_LOG_FORMAT", "json")]).unwrap().format, LogFormat::Json);
        assert_eq!(settings(&[("AWS_LAMBDA_FUNCTION_NAME", "")]).unwrap().format, LogFormat::Text, "empty is unset");
        let e = settings(&[("GLUELESS_LOG_FORMAT", "yaml")]).unwrap_err().to_string();
        assert!(e.contains("\"yaml\"") && e.contains("`text` or `json`"), "{e}");
    }

    #[test]
    fn glueless_log_before_rust_log_before_the_default() {
        assert_eq!(settings(&[]).unwrap().filter, DEFAULT_FILTER);
        assert_eq!(settings(&[("RUST_LOG", "debug")]).unwrap().filter, "debug");
        assert_eq!(settings(&[("RUST_LOG", "debug"), ("GLUELESS_LOG", "warn")]).unwrap().filter, "warn");
        let e = settings(&[("GLUELESS_LOG", "glueless_jobs=loud")]).unwrap_err().to_string();
        assert!(e.starts_with("GLUELESS_LOG=\"glueless_jobs=loud\" is not a log filter"), "{e}");
    }
}
