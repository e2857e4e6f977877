//! The pipeline core: the one file job ([`Pipeline::process`]: claim → transform → stage →
//! load → record) and the dispatcher ([`Pipeline::accept`], [`service`]) that routes object
//! events to datasets by their contracts' `match` globs and files by size. It sees the
//! outside world only through the ports, so the embedded default and the AWS runtime share it;
//! [`crate::startup`] opens the adapters behind them.

pub mod catalog;
pub mod faults;
pub mod lake;
mod process;
pub mod service;

pub use process::FileOutcome;

use crate::ports::{Alerts, FileKey, Launcher, NewFile, ObjectEvent, Queue, StateStore, Warehouse, now_ms};
use crate::settings::Settings;
use crate::telemetry::events as logs;
use catalog::{Catalog, Route};
use glueless_engine::Stores;
use lake::Lake;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// The settings, adapters and options a pipeline runs with; built once at start by
/// [`crate::startup`], never changed after.
pub struct Pipeline {
    pub settings: Settings,
    pub lake: Lake,
    pub stores: Stores,
    pub state: Arc<dyn StateStore>,
    pub warehouse: Arc<dyn Warehouse>,
    pub alerts: Arc<dyn Alerts>,
    /// Where files above `run.inline_max_bytes` go; when it runs them in this process, the
    /// service takes them from [`Launcher::take_queued`].
    pub launcher: Arc<dyn Launcher>,
    /// The queue of object events, when `[queue] url` is set (`glueless worker` reads it).
    pub queue: Option<Arc<dyn Queue>>,
    /// This worker's name in claims: `host:pid:random`, or the owner a task takes over.
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

/// The ports a pipeline runs with, as [`crate::startup`] opened them from the settings.
pub struct Adapters {
    pub state: Arc<dyn StateStore>,
    pub warehouse: Arc<dyn Warehouse>,
    pub alerts: Arc<dyn Alerts>,
    pub launcher: Arc<dyn Launcher>,
    pub queue: Option<Arc<dyn Queue>>,
}

/// How a pipeline runs, beside its settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Transform threads per file (at least 1).
    pub threads: usize,
    /// No per-file lines on stderr.
    pub quiet: bool,
    /// See [`Pipeline::metrics_runtime`].
    pub metrics_runtime: Option<&'static str>,
    /// The owner in claims; default [`worker_name`]. `glueless task` takes over the claim its
    /// launcher made under this name.
    pub owner: Option<String>,
}

/// The lake or the contracts folder the settings name cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Lake(#[from] glueless_engine::store::StoreError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
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
    /// The pipeline of `settings` over the opened ports: opens the lake and loads the contracts.
    pub fn new(settings: Settings, ports: Adapters, options: Options) -> Result<Pipeline, SetupError> {
        let stores = Stores::new();
        let lake = Lake::from_settings(&settings, &stores)?;
        let contracts_dir = settings.path(&settings.contracts.dir);
        let catalog = Catalog::load(&contracts_dir)?;
        let Adapters { state, warehouse, alerts, launcher, queue } = ports;
        Ok(Pipeline {
            settings,
            lake,
            stores,
            state,
            warehouse,
            alerts,
            launcher,
            queue,
            owner: options.owner.filter(|o| !o.is_empty()).unwrap_or_else(worker_name),
            threads: options.threads.max(1),
            quiet: options.quiet,
            metrics_runtime: options.metrics_runtime,
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
                self.emit(logs::ContractsReloaded { dir: &self.contracts_dir });
                for b in &c.broken {
                    self.emit(logs::ContractBroken { path: &b.path, error: &b.error });
                }
                *self.catalog.write().expect("catalog lock") = c.clone();
                self.ready_tables.lock().expect("lock").clear();
                c
            }
            Err(e) => {
                self.emit(logs::ContractsNotReloaded { error: &e });
                current
            }
        }
    }

    /// Records a newly seen object: RECEIVED for its dataset, or REJECTED when no usable
    /// contract takes it. A known URL and version is a duplicate and changes nothing.
    pub async fn accept(&self, ev: &ObjectEvent) -> Result<Accepted, crate::ports::StateError> {
        let catalog = self.catalog();
        let route = catalog.route(&ev.key);
        let file = new_file(ev, &route);
        let new = self.state.register(&file, now_ms()).await?;
        self.registered(new, file, &route, &ev.key, &catalog).await
    }

    /// [`Pipeline::accept`] for many events, an answer per event in order: registered
    /// [`REGISTER_CHUNK`] at a time with [`StateStore::register_many`](crate::ports::StateStore::register_many).
    /// When a chunk cannot be registered together, its files are registered one by one, each
    /// with its own answer (those registered meanwhile are known then).
    pub async fn accept_all(&self, evs: &[&ObjectEvent]) -> Vec<Result<Accepted, crate::ports::StateError>> {
        let catalog = self.catalog();
        let mut out = Vec::with_capacity(evs.len());
        for chunk in evs.chunks(REGISTER_CHUNK) {
            let routes: Vec<Route<'_>> = chunk.iter().map(|ev| catalog.route(&ev.key)).collect();
            let files: Vec<NewFile> = chunk.iter().zip(&routes).map(|(ev, route)| new_file(ev, route)).collect();
            let news: Vec<Result<bool, _>> = match self.state.register_many(&files, now_ms()).await {
                Ok(news) => news.into_iter().map(Ok).collect(),
                Err(_) => {
                    let mut news = Vec::with_capacity(files.len());
                    for f in &files {
                        news.push(self.state.register(f, now_ms()).await);
                    }
                    news
                }
            };
            for (((ev, route), file), new) in chunk.iter().zip(&routes).zip(files).zip(news) {
                out.push(match new {
                    Ok(new) => self.registered(new, file, route, &ev.key, &catalog).await,
                    Err(e) => Err(e),
                });
            }
        }
        out
    }

    /// What registering `file` came to: a duplicate unless `new`, else [`Accepted::New`], or
    /// recorded REJECTED when no contract takes it.
    async fn registered(
        &self,
        new: bool,
        file: NewFile,
        route: &Route<'_>,
        key_in_lake: &str,
        catalog: &Catalog,
    ) -> Result<Accepted, crate::ports::StateError> {
        if !new {
            return Ok(Accepted::Duplicate);
        }
        match unroutable_reason(route, key_in_lake, catalog) {
            None => Ok(Accepted::New { dataset: file.dataset }),
            Some(reason) => {
                let outcome = self.reject_unroutable(&file.key, &reason).await?;
                Ok(Accepted::Unroutable { reason, outcome: outcome.map(Box::new) })
            }
        }
    }
}

/// The state store's record of `ev`, for the dataset of its route (none when no usable
/// contract takes it).
fn new_file(ev: &ObjectEvent, route: &Route<'_>) -> NewFile {
    let dataset = match route {
        Route::Dataset(e) => e.dataset.contract.name.clone(),
        _ => String::new(),
    };
    NewFile {
        key: FileKey { url: ev.url.clone(), version: ev.version.clone() },
        dataset,
        size: ev.size,
        event_time: ev.event_time,
    }
}

/// New files registered by one state-store call ([`Pipeline::accept_all`]).
pub const REGISTER_CHUNK: usize = 1000;

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
