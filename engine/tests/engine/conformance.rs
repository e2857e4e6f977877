//! Conformance against public CSV and Table Schema suites (`/work/shared/fixtures`, read in
//! place; see its README for provenance).
//!
//! Every case goes through the real path: a contract loaded with
//! [`glueless_engine::contract::load_str`], a [`FileJob`] reading the fixture from the local
//! file system and writing Parquet and the quarantine to the in-memory store, then both outputs
//! read back. Where glueless answers differently from a suite on purpose, the test asserts
//! glueless's answer and says why next to it; nothing is skipped silently.
//!
//! - [`parsing`]: csv-spectrum, csv-test-data and csvlint.rb (tokenizing, quoting, line ends,
//!   blank rows, encodings).
//! - [`csvw`]: the W3C CSV on the Web suite's parsing and dialect cases, each other case excluded
//!   with its reason.
//! - [`frictionless`]: frictionless-py and tableschema-py validation reports, compared row by
//!   row with the quarantine.

mod coverage;
mod csvw;
mod frictionless;
mod parsing;

use arrow::array::{Array, AsArray};
use glueless_engine::{Dataset, FileJob, Report, Stores, contract};
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// The shared fixtures folder, canonical (object store paths refuse `..`). The folder is read at
/// run time: with a target folder shared by clones, `env!` would bake in another clone's path.
pub(crate) fn fixtures() -> PathBuf {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../shared/fixtures");
    std::fs::canonicalize(&dir).unwrap_or_else(|e| panic!("the fixtures are expected at {}: {e}", dir.display()))
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A contract from TOML text; a `schema = "file.json"` in it is looked up in `base_dir`.
fn dataset(toml: &str, base_dir: &Path) -> Dataset {
    let c = contract::load_str(toml, "conformance.toml", base_dir).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    Dataset::from_contract(c).unwrap_or_else(|e| panic!("{e}"))
}

/// A TOML string literal (a JSON string is a valid TOML basic string).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// What one run produced.
struct Run {
    report: Report,
    /// The Parquet rows, every column read as text (`None` for NULL). Empty when the file was
    /// rejected (its Parquet is removed).
    rows: Vec<Vec<Option<String>>>,
    /// The quarantine, one JSON object per rejected row.
    rejects: Vec<Json>,
}

impl Run {
    fn file_problem(&self) -> Option<&str> {
        self.report.file_problem.as_ref().map(|p| p.rule)
    }
}

/// Runs `input` through `dataset`, writing to `memory://`, and reads both outputs back.
async fn run(dataset: &Dataset, input: &Path) -> Run {
    let stores = Stores::new();
    let loc = stores.resolve(input.to_str().expect("UTF-8 path")).expect("a local path resolves");
    let report = FileJob::new(dataset, loc)
        .output(stores.resolve("memory://out.parquet").expect("memory URL"))
        .rejects(stores.resolve("memory://rej.jsonl").expect("memory URL"))
        .max_errors(usize::MAX)
        .run()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    assert_eq!(report.rows_read, report.rows_valid + report.rows_rejected, "{}: the counts add up", input.display());
    let mem = stores.memory();
    let mut rows = Vec::new();
    if report.outputs.iter().any(|o| o.kind == "parquet") {
        let bytes = mem.get(&"out.parquet".into()).await.expect("the Parquet output exists").bytes().await.unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap() {
            let batch = batch.unwrap();
            for i in 0..batch.num_rows() {
                rows.push(batch.columns().iter().map(|c| cell_text(c.as_ref(), i)).collect());
            }
        }
        assert_eq!(rows.len() as u64, report.rows_valid, "{}: Parquet rows", input.display());
    }
    let mut rejects = Vec::new();
    if report.outputs.iter().any(|o| o.kind == "quarantine") {
        let bytes = mem.get(&"rej.jsonl".into()).await.expect("the quarantine exists").bytes().await.unwrap();
        let text = std::str::from_utf8(&bytes).expect("the quarantine is UTF-8");
        rejects = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
    }
    assert_eq!(rejects.len() as u64, report.rows_rejected, "{}: quarantined rows", input.display());
    Run { report, rows, rejects }
}

/// One cell as text: strings as they are, other types in Arrow's display form.
fn cell_text(col: &dyn Array, i: usize) -> Option<String> {
    if col.is_null(i) {
        return None;
    }
    Some(match col.as_string_opt::<i32>() {
        Some(s) => s.value(i).to_string(),
        None => arrow::util::display::array_value_to_string(col, i).expect("displayable"),
    })
}
