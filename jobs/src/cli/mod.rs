//! The `glueless` command line: parsing, dispatch to the commands, exit codes.
//!
//! Exit codes (DESIGN.md): 0 all rows valid; 3 some rows rejected but under the threshold;
//! 4 file rejected; 2 usage or contract errors; 1 anything else. With `--format json`, stdout
//! carries exactly one JSON object, also when the command fails.

mod file;
mod progress;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "glueless",
    version,
    about = "Contract-validated CSV ingestion: CSV in, typed Parquet and a quarantine out"
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
}

/// A failure of a command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The contract or the arguments are wrong: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error("{message}")]
    Failed { message: String, retryable: bool },
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed { .. } => 1,
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
            return 1;
        }
    };
    let format = match &cli.command {
        Command::Validate { common, .. } | Command::Transform { common, .. } => common.format,
    };
    match runtime.block_on(file::run(cli.command, threads)) {
        Ok(code) => code,
        Err(e) => {
            if format == Format::Json {
                let (kind, retryable) = match &e {
                    CliError::Usage(_) => ("usage", false),
                    CliError::Failed { retryable, .. } => ("failed", *retryable),
                };
                let v = json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "status": "error",
                    "error": { "kind": kind, "message": e.to_string(), "retryable": retryable },
                    "exit_code": e.exit_code(),
                });
                println!("{v}");
            }
            eprintln!("glueless: error: {e}");
            e.exit_code()
        }
    }
}
