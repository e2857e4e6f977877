//! The pipeline core: the one file job ([`Pipeline::process`]: claim → transform → stage →
//! load → record) and the dispatcher ([`Pipeline::accept`], [`service`]) that routes object
//! events to datasets by their contracts' `match` globs and files by size. It sees the
//! outside world only through the ports, so the embedded default and the AWS runtime share it.

pub mod catalog;
pub mod faults;
pub mod lake;
mod process;
pub mod service;

pub use process::FileOutcome;

use crate::adapters::{InProcessLauncher, LogAlerts, SqliteStateStore, SqliteWarehouse, WebhookAlerts};
use crate::ports::{Alerts, FileKey, Launcher, NewFile, ObjectEvent, StateStore, Warehouse, now_ms};
use crate::settings::Settings;
use catalog::{Catalog, Route};
use glueless_engine::Stores;
use lake::Lake;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// The adapters and settings a pipeline runs with; built once at start.
pub struct Pipeline {
    pub settings: Settings,
    pub lake: Lake,
    pub stores: Stores,
    pub state: Arc<dyn StateStore>,
    pub warehouse: Arc<dyn Warehouse>,
    pub alerts: Arc<dyn Alerts>,
    pub launcher: Arc<dyn Launcher>,
    /// Files the in-process launcher queued (the embedded default's "large file" route).
    pub in_process: Arc<InProcessLauncher>,
    /// This worker's name in claims: `host:pid:random`.
    pub owner: String,
    /// Transform threads per file.
    pub threads: usize,
    /// No per-file lines on stderr.
    pub quiet: bool,
    /// Print one CloudWatch EMF line per recorded file on stdout, naming this runtime
    /// (`lambda`, `ecs`, `worker`); `None` in the local service.
    pub metrics_runtime: Option<&'static str>,
    contracts_dir: PathBuf,
    catalog: RwLock<Arc<Catalog>>,
    ready_tables: Mutex<HashSet<String>>,
}

/// The pipeline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `url` is shown through [`crate::redact::url`]: never with its password.
    #[error("[{section}] url = {url:?}: {message}")]
    Url { section: &'static str, url: String, message: String },
    #[error(transparent)]
    Lake(#[from] glueless_engine::store::StoreError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    State(#[from] crate::ports::StateError),
    #[error(transparent)]
    Warehouse(#[from] crate::ports::WarehouseError),
}

fn sqlite_path<'a>(section: &'static str, url: &'a str) -> Result<&'a str, BuildError> {
    match url.split_once("://") {
        Some(("sqlite", p)) if !p.is_empty() => Ok(p),
        Some((scheme, _)) => Err(BuildError::Url {
            section,
            url: crate::redact::url(url),
            message: format!(
                "`{scheme}://` is not available here; the embedded default is sqlite://PATH (e.g. sqlite://{section}.db)"
            ),
        }),
        None => Err(BuildError::Url {
            section,
            url: crate::redact::url(url),
            message: format!("expected a URL such as sqlite://{section}.db"),
        }),
    }
}

/// Opens the state store named in the settings (also used by `status` and `replay`):
/// `sqlite://PATH`, or `dynamodb://TABLE` (feature `aws`).
pub async fn open_state(settings: &Settings) -> Result<Arc<dyn StateStore>, BuildError> {
    let url = settings.state.url.as_str();
    match url.split_once("://").map(|(s, _)| s).unwrap_or("") {
        #[cfg(feature = "aws")]
        "dynamodb" => Ok(Arc::new(crate::adapters::DynamoDbStateStore::connect(url).await?)),
        #[cfg(not(feature = "aws"))]
        "dynamodb" => Err(missing_feature("state", url, "aws")),
        _ => {
            let p = sqlite_path("state", url)?;
            Ok(Arc::new(SqliteStateStore::open(&settings.path(p))?))
        }
    }
}

#[cfg(any(not(feature = "postgres"), not(feature = "redshift"), not(feature = "aws")))]
fn missing_feature(section: &'static str, url: &str, feature: &str) -> BuildError {
    BuildError::Url {
        section,
        url: crate::redact::url(url),
        message: format!(
            "this glueless was built without the `{feature}` feature; rebuild with `--features {feature}`"
        ),
    }
}

/// Opens the warehouse named in the settings: `sqlite://`, `postgres://` (feature `postgres`,
/// on by default) or `redshift-data://` (feature `redshift`).
pub async fn open_warehouse(settings: &Settings) -> Result<Arc<dyn Warehouse>, BuildError> {
    let url = settings.warehouse.url.as_str();
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
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
            Ok(Arc::new(SqliteWarehouse::open(&settings.path(p))?))
        }
    }
}

/// The alerts channel: an SNS topic (feature `aws`), a webhook, or the log.
pub async fn open_alerts(settings: &Settings) -> Result<Arc<dyn Alerts>, BuildError> {
    let a = &settings.alerts;
    if !a.sns_topic_arn.is_empty() {
        #[cfg(feature = "aws")]
        return Ok(Arc::new(crate::adapters::SnsAlerts::connect(&a.sns_topic_arn).await));
        #[cfg(not(feature = "aws"))]
        return Err(missing_feature("alerts", &a.sns_topic_arn, "aws"));
    }
    Ok(if a.webhook_url.is_empty() { Arc::new(LogAlerts) } else { Arc::new(WebhookAlerts::new(&a.webhook_url)) })
}

/// The launcher for files above `run.inline_max_bytes`: ECS when `[ecs] cluster` is set
/// (feature `aws`), else this process.
pub async fn open_launcher(
    settings: &Settings,
    in_process: &Arc<InProcessLauncher>,
) -> Result<Arc<dyn Launcher>, BuildError> {
    if settings.ecs.cluster.is_empty() {
        return Ok(in_process.clone());
    }
    #[cfg(feature = "aws")]
    return Ok(Arc::new(crate::adapters::EcsLauncher::connect(&settings.ecs).await));
    #[cfg(not(feature = "aws"))]
    return Err(missing_feature("ecs", &settings.ecs.cluster, "aws"));
}

/// The worker name used in claims.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The outcome of [`Pipeline::accept`].
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Registered as RECEIVED for this dataset.
    New { dataset: String },
    /// This URL and version were already known: a duplicate delivery, nothing to do.
    Duplicate,
    /// No usable contract takes it: recorded REJECTED with the reason (the outcome is `None`
    /// when another worker recorded it first).
    Unroutable { reason: String, outcome: Option<Box<FileOutcome>> },
}

impl Pipeline {
    /// Builds the pipeline the settings name: by default SQLite state and warehouse, webhook or
    /// log alerts, in-process launcher; DynamoDB, PostgreSQL, Redshift, SNS and ECS when their
    /// URLs are set (and the features built in).
    pub async fn build(settings: Settings, threads: usize, quiet: bool) -> Result<Pipeline, BuildError> {
        let stores = Stores::new();
        let lake = Lake::from_settings(&settings, &stores)?;
        let contracts_dir = settings.path(&settings.contracts.dir);
        let catalog = Catalog::load(&contracts_dir)?;
        let state = open_state(&settings).await?;
        let warehouse = open_warehouse(&settings).await?;
        let alerts = open_alerts(&settings).await?;
        let in_process = Arc::new(InProcessLauncher::default());
        let launcher = open_launcher(&settings, &in_process).await?;
        Ok(Pipeline {
            settings,
            lake,
            stores,
            state,
            warehouse,
            alerts,
            launcher,
            in_process,
            owner: worker_name(),
            threads: threads.max(1),
            quiet,
            metrics_runtime: None,
            contracts_dir,
            catalog: RwLock::new(Arc::new(catalog)),
            ready_tables: Mutex::new(HashSet::new()),
        })
    }

    /// The contracts as last loaded.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    /// Reloads the contracts if a contract file was added, removed or changed (one listing of
    /// the contracts folder); the service calls it once per pass.
    pub fn refresh_catalog(&self) -> Arc<Catalog> {
        let current = self.catalog();
        if !current.is_stale(&self.contracts_dir) {
            return current;
        }
        match Catalog::load(&self.contracts_dir) {
            Ok(c) => {
                let c = Arc::new(c);
                self.log(&format!("contracts reloaded from {}", self.contracts_dir.display()));
                for b in &c.broken {
                    self.log(&format!("contract error: {}", b.error));
                }
                *self.catalog.write().expect("catalog lock") = c.clone();
                self.ready_tables.lock().expect("lock").clear();
                c
            }
            Err(e) => {
                self.log(&format!("{e}; keeping the contracts loaded before"));
                current
            }
        }
    }

    /// Records a newly seen object: RECEIVED for its dataset, or REJECTED when no usable
    /// contract takes it. A known URL and version is a duplicate and changes nothing.
    pub async fn accept(&self, ev: &ObjectEvent) -> Result<Accepted, crate::ports::StateError> {
        let catalog = self.catalog();
        let route = catalog.route(&ev.key);
        let dataset = match &route {
            Route::Dataset(e) => e.dataset.contract.name.clone(),
            _ => String::new(),
        };
        let key = FileKey { url: ev.url.clone(), version: ev.version.clone() };
        let file = NewFile { key: key.clone(), dataset: dataset.clone(), size: ev.size, event_time: ev.event_time };
        if !self.state.register(&file, now_ms()).await? {
            return Ok(Accepted::Duplicate);
        }
        match unroutable_reason(&route, &ev.key, &catalog) {
            None => Ok(Accepted::New { dataset }),
            Some(reason) => {
                let outcome = self.reject_unroutable(&key, &reason).await?;
                Ok(Accepted::Unroutable { reason, outcome: outcome.map(Box::new) })
            }
        }
    }
}

/// Why no contract takes `key`, if none does.
fn unroutable_reason(route: &Route<'_>, key: &str, catalog: &Catalog) -> Option<String> {
    match route {
        Route::Dataset(_) => None,
        Route::Broken(b) => {
            Some(format!("its contract {} is broken: {}; fix it, then `glueless replay`", b.path.display(), b.error))
        }
        Route::Ambiguous(sources) => Some(format!(
            "several contracts match `{key}`: {}; make their `match` globs disjoint, then `glueless replay`",
            sources.join(", ")
        )),
        Route::None => {
            let mut s = format!(
                "no contract matches `{key}`; add one whose `match` covers it (e.g. match = \"landing/<dataset>/**/*.csv*\"), then `glueless replay`"
            );
            if !catalog.broken.is_empty() {
                let names: Vec<String> = catalog.broken.iter().map(|b| b.path.display().to_string()).collect();
                s.push_str(&format!(" (these contracts are broken and could not be checked: {})", names.join(", ")));
            }
            Some(s)
        }
    }
}
