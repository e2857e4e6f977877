//! `glueless infer`: draft a contract from sample files (the engine's [`glueless_engine::infer`])
//! and print it: commented TOML on stdout, or with `--format json` one object with the contract
//! as JSON, the evidence for each guess, and the TOML.

use super::exit::Exit;
use super::{CliError, Format, for_terminal};
use glueless_engine::Stores;
use glueless_engine::infer::{DEFAULT_SAMPLE_MB, Draft, InferError, Options, infer};
use serde_json::json;

/// File name endings read when a folder is given.
const FOLDER_SUFFIXES: &[&str] = &[".csv", ".tsv", ".txt"];

#[derive(Debug, clap::Args)]
pub struct InferArgs {
    /// Sample files of one dataset: paths, file:// or s3://bucket/key URLs; a local folder
    /// means the .csv, .tsv and .txt files in it (also .gz and .zst).
    #[arg(required = true, value_name = "FILE_OR_URL")]
    pub files: Vec<String>,
    /// Dataset name (default: from the first file's name, e.g. `orders` for orders-2026-11-20.csv).
    #[arg(long)]
    pub name: Option<String>,
    /// Warehouse table (default: the dataset name).
    #[arg(long)]
    pub table: Option<String>,
    /// The contract's `match` glob (default: `landing/<name>/**/*.<extension>*`).
    #[arg(long = "match", value_name = "GLOB")]
    pub match_glob: Option<String>,
    /// Megabytes read from each file (after decompression), cut at a record end.
    #[arg(long, value_name = "M", default_value_t = DEFAULT_SAMPLE_MB, conflicts_with = "full")]
    pub sample_mb: u64,
    /// Read every byte of every file.
    #[arg(long)]
    pub full: bool,
    /// Write `minimum` and `maximum` from the values seen.
    #[arg(long)]
    pub bounds: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn run(args: InferArgs) -> Result<Exit, CliError> {
    if args.sample_mb == 0 {
        return Err(CliError::Usage("--sample-mb must be at least 1 (or use --full)".into()));
    }
    let stores = Stores::new();
    let mut locations = Vec::new();
    for file in &args.files {
        for url in expand(file)? {
            locations.push(stores.resolve(&url).map_err(|source| CliError::Location { what: "FILE_OR_URL", source })?);
        }
    }
    let limits = crate::settings::Settings::load(None, std::env::vars())?.limits.engine();
    let options = Options {
        sample_bytes: (!args.full).then(|| args.sample_mb.saturating_mul(1 << 20)),
        bounds: args.bounds,
        name: args.name,
        table: args.table,
        match_glob: args.match_glob,
        limits,
    };
    let draft = infer(&locations, &options).await.map_err(|e| match e {
        InferError::Unusable(m) => CliError::Usage(m),
        InferError::Read(e) => CliError::Failed { message: e.to_string(), retryable: e.is_retryable() },
        e @ InferError::Internal(_) => CliError::Failed { message: e.to_string(), retryable: false },
    })?;
    let toml = draft.toml();
    match args.format {
        Format::Text => print!("{toml}"),
        Format::Json => println!("{}", report(&draft, &toml)),
    }
    eprint!("{}", summary(&draft));
    Ok(Exit::Clean)
}

/// A local folder becomes the CSV files in it (sorted); anything else stays as it is.
fn expand(file: &str) -> Result<Vec<String>, CliError> {
    let path = std::path::Path::new(file.strip_prefix("file://").unwrap_or(file));
    if file.contains("://") && !file.starts_with("file://") || !path.is_dir() {
        return Ok(vec![file.to_string()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| CliError::Usage(format!("cannot list the folder {}: {e}", for_terminal(file))))?;
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.path().to_str().map(str::to_string))
        .filter(|p| {
            let lower = p.to_ascii_lowercase();
            let lower = lower.trim_end_matches(".gz").trim_end_matches(".zst");
            FOLDER_SUFFIXES.iter().any(|s| lower.ends_with(s))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::Usage(format!("the folder {} holds no .csv, .tsv or .txt file", for_terminal(file))));
    }
    Ok(files)
}

/// The JSON report: the contract, the evidence of each guess, and the TOML text.
fn report(d: &Draft, toml: &str) -> serde_json::Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "status": "drafted",
        "contract": d.contract_json(),
        "evidence": {
            "files": d.files,
            "rows": d.rows,
            "dialect": d.dialect_evidence,
            "primary_key": d.primary_key,
            "fields": d.fields,
            "unacceptable_rows": d.unacceptable,
            "caps": d.caps,
        },
        "toml": toml,
        "exit_code": Exit::Clean.code(),
    })
}

/// Two or three lines on stderr: what was drafted, and what to check.
fn summary(d: &Draft) -> String {
    let key = if d.primary_key.columns.is_empty() {
        "no key guessed".to_string()
    } else {
        format!("key guess {}", d.primary_key.columns.join(", "))
    };
    let mut s = format!(
        "glueless infer: drafted `{}` from {} file(s), {} rows: {} fields, {key}\n",
        d.name,
        d.files.len(),
        d.rows,
        d.fields.len()
    );
    let bad = d.unacceptable.total();
    if bad > 0 {
        s.push_str(&format!("  {bad} row(s) no contract can accept; validate will reject them\n"));
    }
    s.push_str("  review the draft (types, key, enums) before you load with it\n");
    for_terminal(&s)
}
