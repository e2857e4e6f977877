//! `glueless run`, `glueless status` and `glueless replay`: the pipeline commands.

use super::exit::Exit;
use super::{CliError, Command, Format, PipelineArgs};
use crate::pipeline::lake::Lake;
use crate::pipeline::service::{self, RunOptions, RunSummary, Shutdown};
use crate::pipeline::{Options, Pipeline};
use crate::ports::{FileRecord, FileState, Filter, now_ms};
use crate::settings::Settings;
use crate::startup;
use glueless_engine::text::inert;
use serde_json::json;
use std::sync::Arc;

pub async fn run(command: Command, threads: usize) -> Result<Exit, CliError> {
    match command {
        Command::Run { once, args } => run_service(once, &args, threads).await,
        Command::Status { dataset, limit, args } => status(dataset, limit, &args).await,
        Command::Replay { url, prefix, state, all, args } => replay(url, prefix, state, all, &args).await,
        Command::Worker { once, args } => worker(once, &args, threads).await,
        Command::Task { url, version, owner, args } => task(&url, version, owner, &args, threads).await,
        _ => unreachable!("file commands are dispatched elsewhere"),
    }
}

/// Loads the settings from `--config` and the `GLUELESS__…` environment.
pub fn settings(args: &PipelineArgs) -> Result<Settings, CliError> {
    Ok(Settings::load(args.config.as_deref(), std::env::vars())?)
}

/// The pipeline of `s`, with this command's `metrics_runtime` and claim `owner`.
async fn pipeline(
    s: Settings,
    args: &PipelineArgs,
    threads: usize,
    metrics_runtime: Option<&'static str>,
    owner: Option<String>,
) -> Result<Pipeline, CliError> {
    let options = Options { threads, quiet: args.quiet, metrics_runtime, owner };
    Ok(startup::build(s, options).await?)
}

async fn run_service(once: bool, args: &PipelineArgs, threads: usize) -> Result<Exit, CliError> {
    let p = pipeline(settings(args)?, args, threads, None, None).await?;
    if !args.quiet {
        eprintln!(
            "glueless run: lake {} (landing {}), contracts {}, state {}, warehouse {}{}",
            p.lake.root,
            p.lake.landing,
            p.settings.path(&p.settings.contracts.dir).display(),
            p.state.describe(),
            p.warehouse.describe(),
            if once { "; until quiet" } else { "; watching (Ctrl-C to stop)" }
        );
        let cat = p.catalog();
        for e in &cat.entries {
            eprintln!("glueless:   dataset {} <- {} -> {}", e.dataset.contract.name, e.glob, e.table.table);
        }
        for b in &cat.broken {
            eprintln!("glueless:   contract error: {}", inert(&b.error));
        }
    }
    let shutdown = Arc::new(Shutdown::default());
    service::on_signals(shutdown.clone());
    let summary = service::run(&p, RunOptions { once }, &shutdown).await;
    if !args.quiet {
        eprintln!("{}", summary_line(&summary));
    }
    if args.format == Format::Json {
        let mut v = serde_json::to_value(&summary).expect("summary serializes");
        v["version"] = env!("CARGO_PKG_VERSION").into();
        v["status"] = "ok".into();
        v["counts"] = json!({
            "LOADED": summary.count(FileState::Loaded),
            "REJECTED": summary.count(FileState::Rejected),
            "FAILED": summary.count(FileState::Failed),
            "DEAD": summary.count(FileState::Dead),
        });
        v["exit_code"] = Exit::of_run(summary.verdict()).code().into();
        println!("{v}");
    }
    Ok(Exit::of_run(summary.verdict()))
}

#[cfg(not(feature = "aws"))]
async fn worker(_once: bool, _args: &PipelineArgs, _threads: usize) -> Result<Exit, CliError> {
    Err(CliError::Usage(
        "`glueless worker` reads SQS: this glueless was built without the `aws` feature; rebuild with `--features aws`"
            .into(),
    ))
}

#[cfg(feature = "aws")]
async fn worker(once: bool, args: &PipelineArgs, threads: usize) -> Result<Exit, CliError> {
    use crate::runtime::worker;
    let no_queue = || {
        CliError::Usage(
            "`glueless worker` needs the queue: set [queue] url (or GLUELESS__QUEUE__URL) to the SQS queue URL".into(),
        )
    };
    let s = settings(args)?;
    if s.queue.url.is_empty() {
        return Err(no_queue());
    }
    // stdout carries the EMF lines, or with --format json only the report.
    let metrics = (args.format == Format::Text).then_some("worker");
    let p = pipeline(s, args, threads, metrics, None).await?;
    let queue = p.queue.clone().ok_or_else(no_queue)?;
    if !args.quiet {
        eprintln!(
            "glueless worker: queue {}, lake {}, state {}, warehouse {}, large files via {}{}",
            p.settings.queue.url,
            p.lake.root,
            p.state.describe(),
            p.warehouse.describe(),
            p.launcher.name(),
            if once { "; until the queue is empty" } else { "" }
        );
    }
    let shutdown = Arc::new(Shutdown::default());
    service::on_signals(shutdown.clone());
    let summary = worker::run(&p, queue.as_ref(), once, &shutdown).await;
    if !args.quiet {
        eprintln!(
            "glueless worker: {} message(s): {} deleted, {} retried, {} ignored, {} duplicate object(s), {} task(s) launched, {} file(s) finished in {:.1} s",
            summary.messages,
            summary.deleted,
            summary.retried,
            summary.ignored,
            summary.duplicates,
            summary.launched.len(),
            summary.files.len(),
            summary.seconds
        );
    }
    if args.format == Format::Json {
        let mut v = serde_json::to_value(&summary).expect("summary serializes");
        v["version"] = env!("CARGO_PKG_VERSION").into();
        v["status"] = "ok".into();
        println!("{v}");
    }
    Ok(Exit::Clean)
}

async fn task(
    url: &str,
    version: Option<String>,
    owner: Option<String>,
    args: &PipelineArgs,
    threads: usize,
) -> Result<Exit, CliError> {
    use crate::runtime::task::{self, TaskEnd};
    let in_ecs = std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some();
    let metrics = (args.format == Format::Text && in_ecs).then_some("ecs");
    let owner = owner.filter(|o| !o.is_empty());
    let take_over = owner.is_some();
    let p = pipeline(settings(args)?, args, threads, metrics, owner).await?;
    let url = p.lake.url_of(url);
    let end = task::run(&p, &url, version.as_deref(), take_over).await?;
    let (state, file) = match &end {
        TaskEnd::Processed(o) => (o.state, serde_json::to_value(o).expect("serializes")),
        TaskEnd::AlreadyDecided(r) | TaskEnd::Taken(r) => (r.state, record_json(r)),
    };
    if !args.quiet {
        match &end {
            TaskEnd::Processed(_) => {}
            TaskEnd::AlreadyDecided(r) => {
                eprintln!("glueless task: {} is already {}; nothing to do", inert(&url), r.state)
            }
            TaskEnd::Taken(r) => {
                eprintln!(
                    "glueless task: {} is {} with {:?}; left to it",
                    inert(&url),
                    r.state,
                    r.owner.as_deref().unwrap_or("-")
                )
            }
        }
    }
    if args.format == Format::Json {
        let v = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "status": "ok",
            "state": state,
            "file": file,
            "exit_code": Exit::of_task(&end).code(),
        });
        println!("{v}");
    }
    Ok(Exit::of_task(&end))
}

/// In the AWS runtime nothing watches the state store: a replayed file needs a message on the
/// queue (`[queue] url`) for the dispatcher (Lambda or worker) to take it up. Returns how many
/// were sent; files of a local lake have no queue.
#[cfg(feature = "aws")]
async fn requeue(s: &Settings, replayed: &[&FileRecord]) -> Result<usize, CliError> {
    let Some(queue) = startup::open_queue(s).await else {
        return Ok(0);
    };
    let mut sent = 0;
    for r in replayed {
        let Some((bucket, key)) = r.key.url.strip_prefix("s3://").and_then(|u| u.split_once('/')) else { continue };
        let body = crate::events::replay_body(bucket, key, r.size, &r.key.version);
        queue.send(&body).await.map_err(|source| CliError::Requeue { url: r.key.url.clone(), source })?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(not(feature = "aws"))]
async fn requeue(_s: &Settings, _replayed: &[&FileRecord]) -> Result<usize, CliError> {
    Ok(0)
}

pub fn summary_line(s: &RunSummary) -> String {
    let rows: u64 = s.finals().map(|f| f.rows_loaded).sum();
    let rejected: u64 = s.finals().map(|f| f.rows_rejected).sum();
    format!(
        "glueless run: {} new file(s), {} already known; {} LOADED ({rows} rows, {rejected} rows rejected), {} REJECTED, {} FAILED, {} DEAD in {:.1} s{}{}{}",
        s.received,
        s.duplicates,
        s.count(FileState::Loaded),
        s.count(FileState::Rejected),
        s.count(FileState::Failed),
        s.count(FileState::Dead),
        s.seconds,
        if s.interrupted { " (stopped by a signal)" } else { "" },
        if s.unreadable > 0 {
            format!("; {} landing entr(ies) skipped (see above)", s.unreadable)
        } else {
            String::new()
        },
        if s.list_errors > 0 {
            format!("; the landing prefix could not be listed {} time(s) (see above)", s.list_errors)
        } else {
            String::new()
        }
    )
}

/// A record as the JSON reports show it; its `last_error` as [`super::shown`] shows it (errors
/// stored by an older glueless may be long or quote a URL).
fn record_json(r: &FileRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("record serializes");
    if let Some(e) = &r.last_error {
        v["last_error"] = super::shown(e).into();
    }
    v
}

fn ago(ms: i64) -> String {
    let s = (now_ms() - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

async fn status(dataset: Option<String>, limit: usize, args: &PipelineArgs) -> Result<Exit, CliError> {
    let s = settings(args)?;
    let state = startup::open_state(&s).await?;
    let counts = state.count_by_state(dataset.as_deref()).await?;
    let attention = state
        .list(&Filter {
            states: vec![FileState::Dead, FileState::Failed, FileState::Rejected],
            dataset: dataset.clone(),
            limit: Some(limit),
            ..Filter::default()
        })
        .await?;
    let running = state
        .list(&Filter {
            states: vec![FileState::Running, FileState::Received],
            dataset: dataset.clone(),
            limit: Some(limit),
            ..Filter::default()
        })
        .await?;
    if !args.quiet {
        eprintln!(
            "glueless status: {}{}",
            state.describe(),
            dataset.as_deref().map(|d| format!(", dataset {d}")).unwrap_or_default()
        );
        if counts.is_empty() {
            eprintln!("  no files yet: drop CSV files under the landing prefix and run `glueless run`");
        }
        for (st, n) in &counts {
            eprintln!("  {:<9} {n}", st.as_str());
        }
        if !running.is_empty() {
            eprintln!("in progress:");
            for r in &running {
                let who = match (r.state, &r.owner, r.lease_until) {
                    (FileState::Running, Some(o), Some(l)) if l > now_ms() => {
                        format!("by {o}, lease {} s left", (l - now_ms()) / 1000)
                    }
                    (FileState::Running, Some(o), _) => format!("by {o}, lease EXPIRED: the next worker takes it over"),
                    _ => format!("waiting since {}", ago(r.received_at)),
                };
                eprintln!("  {:<9} {} [{}] {}", r.state.as_str(), inert(&r.key.url), r.dataset, inert(&who));
            }
        }
        if !attention.is_empty() {
            eprintln!("need attention:");
            for r in &attention {
                let retry = match (r.state, r.retry_at) {
                    (FileState::Failed, Some(t)) if t > now_ms() => format!(", retry in {} s", (t - now_ms()) / 1000),
                    _ => String::new(),
                };
                eprintln!(
                    "  {:<9} {} [{}] attempt {}, {}{retry}\n            {}",
                    r.state.as_str(),
                    inert(&r.key.url),
                    if r.dataset.is_empty() { "-" } else { &r.dataset },
                    r.attempts,
                    ago(r.updated_at),
                    inert(&super::shown(r.last_error.as_deref().unwrap_or("")))
                );
            }
            eprintln!("to retry: glueless replay --url URL | --prefix PREFIX | --state DEAD | --all");
        }
    }
    if args.format == Format::Json {
        let c: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(st, n)| (st.as_str().to_string(), json!(n))).collect();
        let v = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "status": "ok",
            "state_store": state.describe(),
            "dataset": dataset,
            "counts": c,
            "in_progress": running.iter().map(record_json).collect::<Vec<_>>(),
            "attention": attention.iter().map(record_json).collect::<Vec<_>>(),
        });
        println!("{v}");
    }
    Ok(Exit::Clean)
}

async fn replay(
    url: Option<String>,
    prefix: Option<String>,
    states: Vec<FileState>,
    all: bool,
    args: &PipelineArgs,
) -> Result<Exit, CliError> {
    if url.is_none() && prefix.is_none() && states.is_empty() && !all {
        return Err(CliError::Usage(
            "say which files to replay: --url URL, --prefix PREFIX, --state DEAD (repeatable), or --all".into(),
        ));
    }
    if let Some(bad) = states.iter().find(|s| !s.is_replayable()) {
        return Err(CliError::Usage(format!("--state {bad}: only REJECTED, FAILED and DEAD files can be replayed")));
    }
    let s = settings(args)?;
    if cfg!(not(feature = "aws")) && !s.queue.url.is_empty() {
        return Err(CliError::Usage(
            "[queue] url is set, but this glueless was built without the `aws` feature and cannot send replayed files to SQS for the dispatcher; rebuild with `--features aws`".into(),
        ));
    }
    let state = startup::open_state(&s).await?;
    let lake = Lake::from_settings(&s, &glueless_engine::Stores::new())
        .map_err(|e| startup::StartError::Setup(crate::pipeline::SetupError::Lake(e)))?;
    let url = url.as_deref().map(|u| lake.url_of(u));
    let url_prefix = url.clone().or_else(|| prefix.as_deref().map(|u| lake.url_of(u)));
    let states = if states.is_empty() { vec![FileState::Rejected, FileState::Failed, FileState::Dead] } else { states };
    let candidates = state.list(&Filter { states: states.clone(), url_prefix, ..Filter::default() }).await?;
    let mut replayed = Vec::new();
    for r in candidates.iter().filter(|r| url.as_ref().is_none_or(|u| &r.key.url == u)) {
        if state.replay(&r.key, now_ms()).await? {
            replayed.push(r);
        }
    }
    let requeued = requeue(&s, &replayed).await?;
    if !args.quiet {
        for r in &replayed {
            eprintln!(
                "glueless replay: {} {} -> RECEIVED (was: {})",
                r.state,
                inert(&r.key.url),
                inert(&super::shown(r.last_error.as_deref().unwrap_or("-")))
            );
        }
        let next = if s.queue.url.is_empty() {
            "the running service, or `glueless run --once`, loads them".to_string()
        } else {
            format!("{requeued} message(s) sent to {} for the dispatcher", s.queue.url)
        };
        eprintln!(
            "glueless replay: {} file(s) back to RECEIVED; {next}{}",
            replayed.len(),
            if replayed.is_empty() {
                " (nothing matched: `glueless status` lists the files that need attention)"
            } else {
                ""
            }
        );
    }
    if args.format == Format::Json {
        let v = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "status": "ok",
            "requeued": requeued,
            "replayed": replayed.iter().map(|r| json!({"url": r.key.url, "version": r.key.version, "was": r.state, "last_error": r.last_error})).collect::<Vec<_>>(),
        });
        println!("{v}");
    }
    Ok(Exit::Clean)
}
