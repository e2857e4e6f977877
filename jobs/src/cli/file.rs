//! `glueless validate` and `glueless transform`: one file through the engine.

use super::exit::Exit;
use super::progress::Bar;
use super::{CliError, Command, Common, Format};
use glueless_engine::job::ProgressFn;
use glueless_engine::{Dataset, FileJob, Report, Status, Stores};
use std::sync::Arc;

pub async fn run(command: Command, threads: usize) -> Result<Exit, CliError> {
    let stores = Stores::new();
    let resolve =
        |url: &str, what: &'static str| stores.resolve(url).map_err(|source| CliError::Location { what, source });
    let (dataset, job_input, output, rejects, max_part, common, verb) = match command {
        Command::Validate { contract, file, common } => {
            (load(&contract)?, resolve(&file, "FILE")?, None, None, None, common, "validate")
        }
        Command::Transform { contract, input, output, rejects, max_part_bytes, common } => {
            if max_part_bytes == Some(0) {
                return Err(CliError::Usage("--max-part-bytes must be above 0".into()));
            }
            let rejects = rejects.map(|r| resolve(&r, "--rejects")).transpose()?;
            (
                load(&contract)?,
                resolve(&input, "--input")?,
                Some(resolve(&output, "--output")?),
                rejects,
                max_part_bytes,
                common,
                "transform",
            )
        }
        _ => unreachable!("pipeline commands are dispatched elsewhere"),
    };
    // The same bounds as the pipeline: `[limits]` of ./glueless.toml and GLUELESS__LIMITS__….
    let limits = crate::settings::Settings::load(None, std::env::vars())?.limits.engine();
    let bar = Bar::new(common.quiet).map(Arc::new);
    let mut job = FileJob::new(&dataset, job_input)
        .threads(threads)
        .max_errors(common.max_errors)
        .max_part_bytes(max_part)
        .limits(limits);
    if let Some(w) = common.warehouse {
        job = job.warehouse_limits(w.limits());
    }
    if let Some(o) = output {
        job = job.output(o);
    }
    if let Some(r) = rejects {
        job = job.rejects(r);
    }
    if let Some(b) = &bar {
        let b = b.clone();
        let f: ProgressFn = Arc::new(move |bytes, total, rows| b.update(bytes, total, rows));
        job = job.progress(f);
    }
    let report = job.run().await?;
    if let Some(b) = &bar {
        b.clear();
    }
    if !common.quiet {
        eprint!("{}", summary(verb, &dataset, &report));
    }
    print_report(&common, &report);
    Ok(Exit::of_report(report.status))
}

fn load(path: &std::path::Path) -> Result<Dataset, CliError> {
    Ok(Dataset::load(path)?)
}

fn print_report(common: &Common, report: &Report) {
    if common.format == Format::Json {
        let mut v = serde_json::to_value(report).expect("report serializes");
        v["exit_code"] = Exit::of_report(report.status).code().into();
        println!("{v}");
    }
}

/// The human summary printed on stderr. What comes from the file (names, messages quoting
/// cells) is bounded and [`inert`](glueless_engine::text::inert): one line per item, whatever
/// the cells hold.
pub fn summary(verb: &str, dataset: &Dataset, r: &Report) -> String {
    use glueless_engine::text::{MAX_MESSAGE_BYTES, bounded, inert};
    use std::fmt::Write;
    let t = |text: &str| inert(&bounded(text, MAX_MESSAGE_BYTES)).into_owned();
    let mut s = String::new();
    let c = &dataset.contract;
    let _ = writeln!(s, "glueless {verb}: dataset `{}` ({})", c.name, c.source);
    let _ = writeln!(s, "  input     {} ({:.1} MB read)", t(&r.input), r.bytes_read as f64 / 1e6);
    let pct = if r.rows_read > 0 { r.rows_rejected as f64 * 100.0 / r.rows_read as f64 } else { 0.0 };
    let _ = writeln!(
        s,
        "  rows      {} read = {} valid + {} rejected ({pct:.3}%)",
        r.rows_read, r.rows_valid, r.rows_rejected
    );
    for (i, o) in r.outputs.iter().enumerate() {
        let label = if i == 0 { "outputs" } else { "" };
        let _ = writeln!(s, "  {label:<9} {} ({}, {} rows, {:.1} MB)", t(&o.url), o.kind, o.rows, o.bytes as f64 / 1e6);
    }
    let _ = writeln!(
        s,
        "  time      {:.2} s ({:.0} rows/s, {:.1} MB/s)",
        r.seconds,
        r.rows_per_second,
        r.bytes_read as f64 / 1e6 / r.seconds.max(1e-9)
    );
    for w in &r.warnings {
        let _ = writeln!(s, "  warning   {}", t(w));
    }
    for (i, e) in r.errors.iter().enumerate() {
        let label = if i == 0 { "errors" } else { "" };
        let _ = writeln!(s, "  {label:<9} line {}: {}: {}", e.line, e.rule, t(&e.message));
    }
    if r.rows_rejected as usize > r.errors.len() && !r.errors.is_empty() {
        let _ = writeln!(s, "            ... all rejected rows are in the quarantine");
    }
    let code = Exit::of_report(r.status).code();
    let verdict = match (r.status, &r.file_problem) {
        (_, Some(p)) => format!("{code}, file rejected ({}): {}", p.rule, t(&p.message)),
        (Status::RowsRejected, _) => {
            format!("{code}, some rows rejected, within load.max_rejected_ratio = {}", c.load.max_rejected_ratio)
        }
        _ => format!("{code}, all rows valid"),
    };
    let _ = writeln!(s, "  verdict   {verdict}");
    s
}
