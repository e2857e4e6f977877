//! Log lines through the real binary: JSON with the file's fields where CloudWatch reads them
//! (ECS, or `GLUELESS_LOG_FORMAT=json`), the level filter, and log settings that cannot be used.
//! The Lambda function's JSON lines (with the invocation's request id), beside its EMF lines on
//! stdout, are checked in `aws_runtime::bootstrap`.

use crate::pipeline::{HEADER, Lake};
use serde_json::Value;

/// A lake with one file that loads (`good.csv`) and one whose only row breaks the contract
/// (`bad.csv`, REJECTED: over `max_rejected_ratio`).
fn lake_with_a_good_and_a_bad_file() -> Lake {
    let lake = Lake::new("");
    lake.drop_file("sales/good.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,10.50\n"));
    lake.drop_file("sales/bad.csv", &format!("{HEADER}2,2026-11-20T11:00:00Z,0,1.00\n"));
    lake
}

/// The lines of `stderr` that are JSON objects, parsed.
pub fn json_lines(stderr: &str) -> Vec<Value> {
    stderr.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect(l)).collect()
}

/// The one JSON line of the file named `name` in `state`.
pub fn file_line<'a>(lines: &'a [Value], name: &str, state: &str) -> &'a Value {
    let found: Vec<&Value> =
        lines.iter().filter(|l| l["state"] == state && l["url"].as_str().is_some_and(|u| u.ends_with(name))).collect();
    assert_eq!(found.len(), 1, "one {state} line of {name}: {lines:#?}");
    found[0]
}

#[test]
fn in_ecs_each_file_line_is_json_with_dataset_url_version_load_id_and_state() {
    let lake = lake_with_a_good_and_a_bad_file();
    let ecs = [("ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:9/v4/test")];
    let run = lake.glueless(&["run", "--once", "--format", "json"], &ecs);
    assert_eq!(run.code, 3, "a file was rejected: {}", run.stderr);
    let report = run.json();
    let lines = json_lines(&run.stderr);
    assert!(!run.stderr.contains("glueless: LOADED"), "no text file lines in JSON mode: {}", run.stderr);

    let loaded = file_line(&lines, "good.csv", "LOADED");
    let reported = report["files"].as_array().unwrap().iter().find(|f| f["state"] == "LOADED").unwrap();
    for field in ["dataset", "url", "version", "load_id", "rows_loaded", "rows_rejected", "route", "attempts"] {
        assert_eq!(loaded[field], reported[field], "{field} in {loaded}");
    }
    assert_eq!(loaded["dataset"], "sales");
    assert!(loaded["load_id"].as_str().is_some_and(|id| !id.is_empty()), "{loaded}");
    assert_eq!(loaded["level"], "INFO");
    assert!(loaded["message"].as_str().unwrap().starts_with("LOADED /"), "the words stay: {loaded}");

    let rejected = file_line(&lines, "bad.csv", "REJECTED");
    assert_eq!(rejected["level"], "WARN");
    assert_eq!(rejected["dataset"], "sales");
    assert!(rejected.get("load_id").is_none(), "no load id for a file not loaded: {rejected}");
    assert!(rejected["reason"].as_str().is_some_and(|r| !r.is_empty()), "{rejected}");
    assert!(rejected["quarantine"].as_str().is_some(), "{rejected}");
}

#[test]
fn glueless_log_warn_hides_the_info_lines_and_keeps_the_warnings() {
    let lake = lake_with_a_good_and_a_bad_file();
    let run = lake.glueless(&["run", "--once"], &[("GLUELESS_LOG", "warn")]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("glueless: REJECTED /"), "a warning stays: {}", run.stderr);
    assert!(!run.stderr.contains("glueless: LOADED"), "an info line is hidden: {}", run.stderr);

    // The same lake with the default filter shows both (and the files are done now: a new lake).
    let lake = lake_with_a_good_and_a_bad_file();
    let run = lake.glueless(&["run", "--once"], &[]);
    assert!(run.stderr.contains("glueless: LOADED /"), "{}", run.stderr);
    assert!(run.stderr.contains("glueless: REJECTED /"), "{}", run.stderr);
}

#[test]
fn a_log_setting_that_cannot_be_used_is_a_usage_error() {
    let lake = Lake::new("");
    for (var, value) in [("GLUELESS_LOG_FORMAT", "yaml"), ("GLUELESS_LOG", "sales=loud")] {
        let run = lake.glueless(&["status"], &[(var, value)]);
        assert_eq!(run.code, 2, "{var}={value}: {}", run.stderr);
        assert!(run.stderr.starts_with(&format!("glueless: {var}=")), "names the variable: {}", run.stderr);
    }
}
