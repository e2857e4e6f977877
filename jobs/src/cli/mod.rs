//! The `glueless` command line: parsing, dispatch to the commands, and their end: a report
//! and an exit code ([`exit`], the one table of them; users read it in README.md, "Exit codes"). With `--format json`, stdout carries
//! exactly one JSON object, also when the command fails.

mod demo;
pub mod exit;
mod file;
mod infer;
mod pipeline;
mod plan;
mod progress;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "glueless",
    version,
    about = "Contract-validated CSV ingestion: CSV files in, typed Parquet, a quarantine and an exactly-once warehouse load out",
    after_help = exit::HELP
)]
pub struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true, env = "GLUELESS_THREADS")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A human summary on stderr.
    #[default]
    Text,
    /// One JSON object on stdout (the summary still goes to stderr).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dry run: decode and validate FILE against the contract; write nothing.
    Validate {
        #[arg(long, short)]
        contract: std::path::PathBuf,
        /// A path, file://, s3://bucket/key URL.
        file: String,
        #[command(flatten)]
        common: Common,
    },
    /// One file to Parquet, plus a quarantine of the rejected rows.
    Transform {
        #[arg(long, short)]
        contract: std::path::PathBuf,
        #[arg(long, short)]
        input: String,
        #[arg(long, short)]
        output: String,
        /// Where rejected rows go (JSON Lines); default `<output stem>.rejects.jsonl`.
        #[arg(long)]
        rejects: Option<String>,
        /// Split the Parquet output into parts of about this many bytes (e.g. 134217728).
        #[arg(long)]
        max_part_bytes: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// The pipeline as a local service: watch the lake's landing prefix, load each new file
    /// exactly once. SIGINT/SIGTERM finish the files in hand, then stop.
    Run {
        /// Process what is pending, wait for retries due, and exit when the lake is quiet.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// The AWS dispatcher as a long-running SQS consumer (for a Fargate service instead of the
    /// Lambda function): long-poll `[queue] url`, process small files here, launch large ones
    /// on ECS, delete what is done. SIGINT/SIGTERM finish the batch in hand, then stop.
    /// Needs a build with `--features aws`.
    Worker {
        /// Stop when a receive comes back empty.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// Process one object now: the command of the ECS task a dispatcher launches for a large
    /// file (it names the file in the environment), or run by hand. Exit codes: 0 loaded or
    /// nothing to do, 3 loaded with rejected rows, 4 rejected, 1 failed or dead, 2 usage.
    Task {
        /// The object (s3://bucket/key, or a path in a local lake).
        #[arg(long, env = "GLUELESS_TASK_URL")]
        url: String,
        /// The version (ETag) to process; default: the object's current one.
        #[arg(long, env = "GLUELESS_TASK_VERSION")]
        version: Option<String>,
        /// Take over the claim this owner holds (set by the launcher).
        #[arg(long, env = "GLUELESS_TASK_OWNER")]
        owner: Option<String>,
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// Draft a complete, commented contract from sample files (dialect, types, missing values,
    /// enums, a key guess) and print it as TOML (`--format json`: with the evidence).
    Infer(infer::InferArgs),
    /// Make a temporary lake with sample orders (bad rows, a duplicate delivery, a re-upload
    /// with changed rows), run the pipeline on it, and show what landed. Exits 0 only if all of
    /// it is as expected.
    Demo {
        /// Where to make the lake (default: a new folder under the system's temp folder).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Files by state, with counts and the last errors.
    Status {
        /// Only this dataset.
        #[arg(long)]
        dataset: Option<String>,
        /// How many files needing attention to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// Put REJECTED, FAILED or DEAD files back to RECEIVED so the service loads them again
    /// (idempotent). Choose files with --url, --prefix, --state, or --all.
    Replay {
        /// One object (its URL, or its key in the lake such as landing/orders/a.csv).
        #[arg(long)]
        url: Option<String>,
        /// Objects under a prefix (a URL prefix, or a key prefix such as landing/orders/2026-11).
        #[arg(long)]
        prefix: Option<String>,
        /// Only files in these states (default: REJECTED, FAILED and DEAD).
        #[arg(long, value_parser = parse_state)]
        state: Vec<crate::ports::FileState>,
        /// Every REJECTED, FAILED and DEAD file.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// What the next load would do to each dataset's warehouse table (create it, add columns,
    /// nothing, or refuse, with why and the SQL an operator could run), changing nothing.
    /// Exit codes: 0 every table can follow its contract, 4 some table would be refused, 2 a
    /// broken contract or an unknown --dataset, 1 the warehouse did not answer.
    Plan {
        /// Only this dataset.
        #[arg(long)]
        dataset: Option<String>,
        #[command(flatten)]
        args: PipelineArgs,
    },
}

fn parse_state(s: &str) -> Result<crate::ports::FileState, String> {
    crate::ports::FileState::parse(s).ok_or_else(|| format!("`{s}` is not a state; use REJECTED, FAILED or DEAD"))
}

impl Command {
    fn format(&self) -> Format {
        match self {
            Command::Validate { common, .. } | Command::Transform { common, .. } => common.format,
            Command::Run { args, .. }
            | Command::Status { args, .. }
            | Command::Replay { args, .. }
            | Command::Worker { args, .. }
            | Command::Task { args, .. }
            | Command::Plan { args, .. } => args.format,
            Command::Demo { format, .. } => *format,
            Command::Infer(args) => args.format,
        }
    }
}

/// Options of the pipeline commands.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// The config file (default: ./glueless.toml if it exists, else the built-in defaults).
    #[arg(long, short = 'C')]
    pub config: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No per-file lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct Common {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Row errors listed in the report (the quarantine always has all of them).
    #[arg(long, default_value_t = 20)]
    pub max_errors: usize,
    /// No summary or progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also reject, as row errors, the values this warehouse cannot store exactly (NaN, NUL in
    /// text, dates out of its range, …), as `glueless run` does; without it, the contract only.
    #[arg(long, value_enum)]
    pub warehouse: Option<WarehouseKind>,
}

/// A warehouse whose limits `validate` and `transform` can check.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WarehouseKind {
    Sqlite,
    Postgres,
    Redshift,
}

impl WarehouseKind {
    pub fn limits(self) -> crate::ports::WarehouseLimits {
        use crate::ports::WarehouseLimits;
        match self {
            WarehouseKind::Sqlite => WarehouseLimits::sqlite(),
            WarehouseKind::Postgres => WarehouseLimits::postgres(),
            WarehouseKind::Redshift => WarehouseLimits::redshift(),
        }
    }
}

/// A command that could not do its work: a mistake in what it was given (exit 2), or a
/// failure (exit 1), which may be worth trying again ([`CliError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments are wrong.
    #[error("{0}")]
    Usage(String),
    /// The configuration file or the `GLUELESS__…` environment is wrong.
    #[error("configuration error: {0}")]
    Config(#[from] crate::settings::SettingsError),
    /// A contract is wrong.
    #[error("contract error: {0}")]
    Contract(#[from] glueless_engine::ContractError),
    /// A location given on the command line (`what`: the option) cannot be used.
    #[error("{what}: {source}")]
    Location {
        what: &'static str,
        #[source]
        source: glueless_engine::store::StoreError,
    },
    /// The pipeline could not start: its configuration (exit 2), or a service that did not
    /// answer (exit 1, retryable).
    #[error(transparent)]
    Start(#[from] crate::startup::StartError),
    /// The file job failed.
    #[error(transparent)]
    Job(#[from] glueless_engine::JobError),
    /// The state store could not answer.
    #[error(transparent)]
    State(#[from] crate::ports::StateError),
    /// The warehouse could not answer.
    #[error(transparent)]
    Warehouse(#[from] crate::ports::WarehouseError),
    /// The lake's landing prefix could not be listed.
    #[error(transparent)]
    List(#[from] crate::pipeline::lake::ListError),
    /// `glueless task` could not run its file.
    #[error(transparent)]
    Task(#[from] crate::runtime::task::TaskError),
    /// A replayed file is RECEIVED again, but its message could not be sent.
    #[error("{source}; {url} is RECEIVED but has no message: run `glueless replay --url {url}` again")]
    Requeue {
        url: String,
        #[source]
        source: crate::ports::QueueError,
    },
    /// Anything else.
    #[error("{message}")]
    Failed { message: String, retryable: bool },
}

impl CliError {
    /// A mistake in what the command was given (arguments, contract, configuration): nothing
    /// ran, and running it again unchanged fails the same way.
    pub fn is_usage(&self) -> bool {
        match self {
            CliError::Usage(_) | CliError::Config(_) | CliError::Contract(_) | CliError::Location { .. } => true,
            CliError::Start(e) => !e.is_retryable(),
            CliError::Task(e) => e.is_usage(),
            _ => false,
        }
    }

    /// Whether the same command can succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            CliError::Start(e) => e.is_retryable(),
            CliError::Job(e) => e.is_retryable(),
            CliError::State(e) => e.retryable,
            CliError::Warehouse(e) => e.is_retryable(),
            CliError::Task(e) => e.is_retryable(),
            CliError::Requeue { .. } => true,
            CliError::Failed { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The message a person reads: the error, and for one worth retrying, that it can be.
    pub fn message(&self) -> String {
        let text = shown(&self.to_string());
        if self.is_retryable() {
            format!("{text} (this may be temporary: it can be retried as it is, once the service answers)")
        } else {
            text
        }
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let threads =
        cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("glueless: cannot start the runtime: {e}");
            return exit::Exit::Failed.code();
        }
    };
    let format = cli.command.format();
    let outcome = runtime.block_on(async move {
        match cli.command {
            c @ (Command::Validate { .. } | Command::Transform { .. }) => file::run(c, threads).await,
            Command::Demo { dir, format } => demo::run(dir, format, threads).await,
            Command::Plan { dataset, args } => plan::run(dataset, &args).await,
            Command::Infer(args) => infer::run(args).await,
            c => pipeline::run(c, threads).await,
        }
    });
    match outcome {
        Ok(exit) => exit.code(),
        Err(e) => {
            let exit = exit::Exit::of_error(&e);
            let message = e.message();
            if format == Format::Json {
                let v = json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "status": "error",
                    "error": {
                        "kind": if exit == exit::Exit::Usage { "usage" } else { "failed" },
                        "message": message,
                        "retryable": e.is_retryable(),
                    },
                    "exit_code": exit.code(),
                });
                println!("{v}");
            }
            eprintln!("glueless: error: {}", for_terminal(&message));
            exit.code()
        }
    }
}

/// A message as the command line shows or reports it: no secret ([`crate::redact::text`]),
/// bounded in size.
pub(crate) fn shown(message: &str) -> String {
    use glueless_engine::text::{MAX_MESSAGE_BYTES, bounded};
    bounded(&crate::redact::text(message), 4 * MAX_MESSAGE_BYTES).into_owned()
}

/// Text for stderr: control characters escaped line by line (the line breaks stay).
pub(crate) fn for_terminal(text: &str) -> String {
    text.split('\n').map(|l| glueless_engine::text::inert(l).into_owned()).collect::<Vec<_>>().join("\n")
}
