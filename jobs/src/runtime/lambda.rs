//! The Lambda function (`glueless-lambda`, deployed as `bootstrap` on `provided.al2023`): the
//! dispatcher behind an SQS event source mapping with `ReportBatchItemFailures`.
//!
//! At start (once per execution environment) it reads its configuration from the environment
//! (`GLUELESS__SECTION__KEY`, and `GLUELESS_CONFIG` if a config file is packaged) and opens the
//! adapters. Each invocation hands the batch to [`super::dispatch`]: small files are processed
//! here, a dataset's files in one warehouse transaction, at most `run.max_concurrent_files`
//! transforms at a time; larger files are claimed and launched on ECS. The response lists in
//! `batchItemFailures` exactly the messages to deliver again (a retryable failure, a retry not
//! due yet, a file in work elsewhere, the deadline); all others are deleted by Lambda. A
//! retried message whose retry is due at a known time is hidden until then
//! (`ChangeMessageVisibility`), so the queue's receive count measures real attempts.
//!
//! `run.deadline_reserve_secs` before the invocation's deadline no file is started any more,
//! and files still in work are handed back (RECEIVED again, the attempt not counted) and their
//! messages retried. One CloudWatch EMF line per finished file goes to stdout, and one summary
//! line per invocation to stderr.

use super::dispatch::{Dispatcher, Handled, Message, Verdict};
use crate::cli::exit::Exit;
use crate::pipeline::{Options, Pipeline};
use crate::ports::{Queue, QueueMessage, now_ms};
use crate::settings::{Settings, SettingsError};
use crate::telemetry::events::{self as logs, emit};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The function's state across invocations of one execution environment.
pub struct Function {
    pub pipeline: Pipeline,
    dispatcher: Dispatcher,
    /// The queues of the batches' event sources, by ARN, opened on first use.
    queues: tokio::sync::Mutex<HashMap<String, Arc<dyn Queue>>>,
}

impl Function {
    /// The function over `pipeline`, as [`main`] builds it (with the `lambda` metrics runtime).
    pub fn new(pipeline: Pipeline) -> Function {
        Function { pipeline, dispatcher: Dispatcher::default(), queues: Default::default() }
    }

    /// Handles one invocation's batch; `deadline` is when the invocation ends.
    pub async fn handle(&self, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let started = Instant::now();
        let p = &self.pipeline;
        let mut response = SqsBatchResponse::default();
        let mut messages = Vec::new();
        let mut records = Vec::new();
        for r in event.records {
            match &r.message_id {
                Some(id) => {
                    messages.push(Message { id: id.clone(), body: r.body.clone().unwrap_or_default() });
                    records.push(r);
                }
                None => p.emit(logs::RecordWithoutId),
            }
        }
        let handled = self.dispatcher.handle(p, &messages, "lambda", deadline).await;
        let mut delays: HashMap<(String, u64), Vec<QueueMessage>> = HashMap::new();
        for (r, h) in records.iter().zip(&handled) {
            if let Verdict::Retry { reason, after_secs } = &h.verdict {
                p.emit(logs::MessageRetried { message_id: &h.id, reason, receive_count: None });
                response.add_failure(h.id.clone());
                if let (Some(secs), Some(arn), Some(receipt)) = (after_secs, &r.event_source_arn, &r.receipt_handle) {
                    let m = QueueMessage {
                        id: h.id.clone(),
                        receipt: receipt.clone(),
                        body: String::new(),
                        receive_count: 0,
                    };
                    delays.entry((arn.clone(), *secs)).or_default().push(m);
                }
            }
        }
        for ((arn, secs), msgs) in delays {
            self.delay(&arn, secs, &msgs).await;
        }
        eprintln!("{}", summary(&handled, started.elapsed()));
        response
    }

    /// Hides retried messages until their retry is due; on any failure they come back after
    /// the queue's visibility timeout instead.
    async fn delay(&self, arn: &str, secs: u64, msgs: &[QueueMessage]) {
        let mut queues = self.queues.lock().await;
        if !queues.contains_key(arn) {
            match crate::startup::queue_from_arn(arn).await {
                Ok(q) => {
                    queues.insert(arn.to_string(), q);
                }
                Err(e) => {
                    self.pipeline.emit(logs::DelayFailed { error: &e });
                    return;
                }
            }
        }
        let q = &queues[arn];
        if let Err(e) = q.set_visibility(msgs, secs.min(43_200) as u32).await {
            self.pipeline.emit(logs::DelayFailed { error: &e });
        }
    }
}

/// The per-invocation line on stderr (JSON, for CloudWatch Logs Insights).
fn summary(handled: &[Handled], took: Duration) -> String {
    let retried = handled.iter().filter(|h| matches!(h.verdict, Verdict::Retry { .. })).count();
    let files: Vec<_> = handled.iter().flat_map(|h| h.files.iter()).collect();
    serde_json::json!({
        "glueless": "batch",
        "messages": handled.len(),
        "retried": retried,
        "ignored": handled.iter().filter(|h| h.ignored.is_some()).count(),
        "duplicates": handled.iter().map(|h| h.duplicates).sum::<u64>(),
        "launched": handled.iter().flat_map(|h| h.launched.iter()).collect::<Vec<_>>(),
        "files": files,
        "seconds": took.as_secs_f64(),
    })
    .to_string()
}

/// The settings of a function: `GLUELESS_CONFIG` (a packaged file) if set, and the
/// `GLUELESS__…` environment.
pub fn settings() -> Result<Settings, SettingsError> {
    let file = std::env::var_os("GLUELESS_CONFIG").map(std::path::PathBuf::from);
    Settings::load(file.as_deref(), std::env::vars())
}

/// The `bootstrap` entry point; returns the exit code (only on an error at start).
pub fn main() -> i32 {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            emit(logs::LambdaFailed { error: &format_args!("cannot start the runtime: {e}") });
            return Exit::Failed.code();
        }
    };
    runtime.block_on(async move {
        let started = Instant::now();
        let s = match settings() {
            Ok(s) => s,
            Err(e) => {
                emit(logs::LambdaFailed { error: &format_args!("configuration error: {e}") });
                return Exit::Usage.code();
            }
        };
        let options = Options { threads, quiet: false, metrics_runtime: Some("lambda"), owner: None };
        let p = match crate::startup::build(s, options).await {
            Ok(p) => p,
            Err(e) => {
                let e = crate::cli::CliError::from(e);
                emit(logs::LambdaFailed { error: &format_args!("cannot start: {}", e.message()) });
                return Exit::of_error(&e).code();
            }
        };
        emit(logs::LambdaReady {
            millis: started.elapsed().as_millis(),
            lake: &p.lake.root,
            state: &p.state.describe(),
            warehouse: &p.warehouse.describe(),
            launcher: p.launcher.name(),
        });
        let f = Arc::new(Function::new(p));
        let handler = lambda_runtime::service_fn(move |ev: lambda_runtime::LambdaEvent<SqsEvent>| {
            let f = f.clone();
            // Every line of the invocation carries its request id.
            let span = tracing::error_span!("invocation", request_id = %ev.context.request_id);
            tracing::Instrument::instrument(
                async move {
                    let left = ev.context.deadline as i64 - now_ms();
                    let deadline = Instant::now() + Duration::from_millis(left.max(0) as u64);
                    Ok::<_, std::convert::Infallible>(f.handle(ev.payload, Some(deadline)).await)
                },
                span,
            )
        });
        match lambda_runtime::run(handler).await {
            Ok(()) => Exit::Clean.code(),
            Err(e) => {
                emit(logs::LambdaFailed { error: &format_args!("the Lambda runtime API failed: {e}") });
                Exit::Failed.code()
            }
        }
    })
}
