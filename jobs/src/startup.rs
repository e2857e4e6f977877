//! The composition root: settings → adapters → [`Pipeline`].
//!
//! Every entry point (the command line, the Lambda function) builds its pipeline here, once,
//! with everything it runs with ([`Options`]: threads, quiet, the metrics runtime, the claim
//! owner); nothing changes it afterwards. The pipeline core sees only the ports: the URL
//! schemes and the cargo features of the adapters are matched here and nowhere else.
//!
//! | port | chosen by | adapters |
//! | --- | --- | --- |
//! | state | `[state] url` | `sqlite://PATH` (default), `dynamodb://TABLE` (feature `aws`) |
//! | warehouse | `[warehouse] url` | `sqlite://PATH` (default), `postgres://…` (feature `postgres`, on by default), `redshift-data://…` (feature `redshift`) |
//! | alerts | `[alerts]` | `sns_topic_arn` (feature `aws`), else `webhook_url`, else the log |
//! | launcher | `[ecs] cluster` | ECS (feature `aws`), else this process |
//! | queue | `[queue] url` | SQS (feature `aws`); none when unset |
//!
//! A start that fails is a [`StartError`]: either a configuration mistake (a URL this build
//! cannot use, credentials the server refuses, a host name that does not exist, a missing
//! contracts folder), or a service that did not answer ([`StartError::is_retryable`]). The
//! command line exits 2 for the first and 1 for the second (see `cli::exit`).

use crate::pipeline::{Adapters, Options, Pipeline, SetupError};
use crate::ports::{Alerts, Launcher, Queue, StateError, StateStore, Warehouse, WarehouseError};
use crate::settings::Settings;
use std::sync::Arc;

/// Why a pipeline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A URL this build cannot use. `url` is shown through [`crate::redact::url`]: never with
    /// its password.
    #[error("[{section}] url = {url:?}: {message}")]
    Url { section: &'static str, url: String, message: String },
    /// The lake or the contracts folder.
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

impl StartError {
    /// Whether starting again later, with the same settings, can succeed: a service did not
    /// answer. Anything else is a configuration mistake that someone has to change.
    pub fn is_retryable(&self) -> bool {
        match self {
            StartError::State(e) => e.retryable,
            StartError::Warehouse(e) => e.is_unreachable(),
            StartError::Url { .. } | StartError::Setup(_) => false,
        }
    }
}

/// The pipeline `settings` name, run with `options`.
pub async fn build(settings: Settings, options: Options) -> Result<Pipeline, StartError> {
    let adapters = open_adapters(&settings).await?;
    Ok(Pipeline::new(settings, adapters, options)?)
}

impl Pipeline {
    /// [`build`] with `threads` and `quiet`, no metrics lines and a fresh owner name: the
    /// pipeline of the local service.
    pub async fn build(settings: Settings, threads: usize, quiet: bool) -> Result<Pipeline, StartError> {
        build(settings, Options { threads, quiet, ..Options::default() }).await
    }
}

/// Opens every adapter the settings name.
pub async fn open_adapters(settings: &Settings) -> Result<Adapters, StartError> {
    Ok(Adapters {
        state: open_state(settings).await?,
        warehouse: open_warehouse(settings).await?,
        alerts: open_alerts(settings).await?,
        launcher: open_launcher(settings).await?,
        queue: open_queue(settings).await,
    })
}

/// The scheme of `url` (`postgres` of `postgres://…`), or `""` for a plain path.
fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("", |(s, _)| s)
}

fn sqlite_path<'a>(section: &'static str, url: &'a str) -> Result<&'a str, StartError> {
    match url.split_once("://") {
        Some(("sqlite", p)) if !p.is_empty() => Ok(p),
        Some((scheme, _)) => Err(StartError::Url {
            section,
            url: crate::redact::url(url),
            message: format!(
                "`{scheme}://` is not available here; the embedded default is sqlite://PATH (e.g. sqlite://{section}.db)"
            ),
        }),
        None => Err(StartError::Url {
            section,
            url: crate::redact::url(url),
            message: format!("expected a URL such as sqlite://{section}.db"),
        }),
    }
}

#[cfg(any(not(feature = "postgres"), not(feature = "redshift"), not(feature = "aws")))]
fn missing_feature(section: &'static str, url: &str, feature: &str) -> StartError {
    StartError::Url {
        section,
        url: crate::redact::url(url),
        message: format!(
            "this glueless was built without the `{feature}` feature; rebuild with `--features {feature}`"
        ),
    }
}

/// The state store (also all that `status` and `replay` need): `sqlite://PATH`, or
/// `dynamodb://TABLE` (feature `aws`).
pub async fn open_state(settings: &Settings) -> Result<Arc<dyn StateStore>, StartError> {
    let url = settings.state.url.as_str();
    match scheme(url) {
        #[cfg(feature = "aws")]
        "dynamodb" => Ok(Arc::new(crate::adapters::DynamoDbStateStore::connect(url).await?)),
        #[cfg(not(feature = "aws"))]
        "dynamodb" => Err(missing_feature("state", url, "aws")),
        _ => {
            let p = sqlite_path("state", url)?;
            Ok(Arc::new(crate::adapters::SqliteStateStore::open(&settings.path(p))?))
        }
    }
}

/// The warehouse: `sqlite://PATH`, `postgres://…` (feature `postgres`, on by default) or
/// `redshift-data://…` (feature `redshift`).
pub async fn open_warehouse(settings: &Settings) -> Result<Arc<dyn Warehouse>, StartError> {
    let url = settings.warehouse.url.as_str();
    match scheme(url) {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            Ok(Arc::new(crate::adapters::PostgresWarehouse::connect(&settings.warehouse, &settings.base_dir).await?))
        }
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(missing_feature("warehouse", url, "postgres")),
        #[cfg(feature = "redshift")]
        "redshift-data" => Ok(Arc::new(crate::adapters::RedshiftDataWarehouse::connect(&settings.warehouse).await?)),
        #[cfg(not(feature = "redshift"))]
        "redshift-data" => Err(missing_feature("warehouse", url, "redshift")),
        _ => {
            let p = sqlite_path("warehouse", url)?;
            Ok(Arc::new(crate::adapters::SqliteWarehouse::open(&settings.path(p))?))
        }
    }
}

/// The alerts channel: an SNS topic (feature `aws`), a webhook, or the log.
pub async fn open_alerts(settings: &Settings) -> Result<Arc<dyn Alerts>, StartError> {
    let a = &settings.alerts;
    if !a.sns_topic_arn.is_empty() {
        #[cfg(feature = "aws")]
        return Ok(Arc::new(crate::adapters::SnsAlerts::connect(&a.sns_topic_arn).await));
        #[cfg(not(feature = "aws"))]
        return Err(missing_feature("alerts", &a.sns_topic_arn, "aws"));
    }
    Ok(if a.webhook_url.is_empty() {
        Arc::new(crate::adapters::LogAlerts)
    } else {
        Arc::new(crate::adapters::WebhookAlerts::new(&a.webhook_url))
    })
}

/// The launcher for files above `run.inline_max_bytes`: ECS when `[ecs] cluster` is set
/// (feature `aws`), else this process.
pub async fn open_launcher(settings: &Settings) -> Result<Arc<dyn Launcher>, StartError> {
    if settings.ecs.cluster.is_empty() {
        return Ok(Arc::new(crate::adapters::InProcessLauncher::default()));
    }
    #[cfg(feature = "aws")]
    return Ok(Arc::new(crate::adapters::EcsLauncher::connect(&settings.ecs).await));
    #[cfg(not(feature = "aws"))]
    return Err(missing_feature("ecs", &settings.ecs.cluster, "aws"));
}

/// The queue at `[queue] url` (SQS, feature `aws`). `None` when it is unset, or in a build
/// without `aws`, where only `glueless worker` and `glueless replay` would use it and each
/// refuses to run with a message that says so.
pub async fn open_queue(settings: &Settings) -> Option<Arc<dyn Queue>> {
    let url = settings.queue.url.as_str();
    if url.is_empty() {
        return None;
    }
    #[cfg(feature = "aws")]
    return Some(Arc::new(crate::adapters::SqsQueue::connect(url).await));
    #[cfg(not(feature = "aws"))]
    return None;
}

/// The queue an SQS event names by its ARN (the Lambda function's event source), looked up
/// with `GetQueueUrl`.
#[cfg(feature = "aws")]
pub async fn queue_from_arn(arn: &str) -> Result<Arc<dyn Queue>, crate::ports::QueueError> {
    Ok(Arc::new(crate::adapters::SqsQueue::from_arn(arn).await?))
}
