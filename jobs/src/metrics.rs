//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON line per finished file, which
//! CloudWatch Logs turns into metrics when a Lambda function or an ECS task prints it on stdout.
//!
//! Every metric name lives here, as `glueless_<name>_<unit>`; the dimension sets are small and
//! fixed: none (the totals the alarms watch), `state`, `dataset`, and `dataset` + `state` —
//! never an object key or an error text, which would make one metric series per file. The
//! object URL and the runtime (`lambda`, `ecs`, `worker`, `local`) ride along as plain
//! properties, searchable in CloudWatch Logs Insights but not dimensions.
//!
//! A second, smaller line counts each ECS task the dispatcher launches for a large file
//! ([`TaskLaunchMetrics`]): AWS has no metric of tasks started (Container Insights counts the
//! tasks running in a cluster, not the ones launched). The stack's dashboard
//! (`infra/template.yaml`) graphs these names; a test checks it against this file.
//!
//! ```
//! use glueless_jobs::metrics::FileMetrics;
//! let m = FileMetrics { dataset: "orders".into(), state: "LOADED", runtime: "lambda", object: "s3://b/k.csv".into(),
//!     rows_read: 10, rows_loaded: 9, rows_rejected: 1, bytes_read: 420, seconds: 0.5, lag_seconds: Some(3.0) };
//! let line = m.emf(1_795_169_730_000);
//! let v: serde_json::Value = serde_json::from_str(&line).unwrap();
//! assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "glueless");
//! assert_eq!(v["glueless_rows_rejected_count"], 1);
//! ```

use crate::ports::Millis;
use serde_json::json;

/// The CloudWatch namespace of every glueless metric.
pub const NAMESPACE: &str = "glueless";

/// The metric names and their CloudWatch units.
pub const FILES: (&str, &str) = ("glueless_files_count", "Count");
pub const ROWS_READ: (&str, &str) = ("glueless_rows_read_count", "Count");
pub const ROWS_LOADED: (&str, &str) = ("glueless_rows_loaded_count", "Count");
pub const ROWS_REJECTED: (&str, &str) = ("glueless_rows_rejected_count", "Count");
pub const BYTES_READ: (&str, &str) = ("glueless_bytes_read_bytes", "Bytes");
pub const DURATION: (&str, &str) = ("glueless_file_duration_seconds", "Seconds");
/// From the S3 event time to the warehouse commit.
pub const LAG: (&str, &str) = ("glueless_load_lag_seconds", "Seconds");
/// An ECS task launched for a large file (one per launch; the line of [`TaskLaunchMetrics`]).
pub const TASKS_LAUNCHED: (&str, &str) = ("glueless_tasks_launched_count", "Count");

/// The `dataset` of a file no contract matched (a dimension value may not be empty).
pub const NO_DATASET: &str = "(none)";

/// The dimension sets of every metric: totals, per state, per dataset, per dataset and state.
pub const DIMENSION_SETS: [&[&str]; 4] = [&[], &["state"], &["dataset"], &["dataset", "state"]];

/// The dimension sets of a launch: totals and per dataset (a launched file has no outcome yet).
pub const LAUNCH_DIMENSION_SETS: [&[&str]; 2] = [&[], &["dataset"]];

/// What one finished file contributes.
#[derive(Debug, Clone)]
pub struct FileMetrics {
    pub dataset: String,
    /// LOADED, REJECTED, FAILED or DEAD.
    pub state: &'static str,
    /// `lambda`, `ecs`, `worker` or `local`.
    pub runtime: &'static str,
    pub object: String,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub bytes_read: u64,
    pub seconds: f64,
    pub lag_seconds: Option<f64>,
}

impl FileMetrics {
    /// One EMF line (no trailing newline) stamped `now`.
    pub fn emf(&self, now: Millis) -> String {
        let mut values = vec![
            (FILES, json!(1)),
            (ROWS_READ, json!(self.rows_read)),
            (ROWS_LOADED, json!(self.rows_loaded)),
            (ROWS_REJECTED, json!(self.rows_rejected)),
            (BYTES_READ, json!(self.bytes_read)),
            (DURATION, json!(self.seconds)),
        ];
        if let Some(lag) = self.lag_seconds {
            values.push((LAG, json!(lag)));
        }
        let properties = json!({
            "dataset": self.dataset,
            "state": self.state,
            "runtime": self.runtime,
            "object": self.object,
        });
        emf_line(now, &DIMENSION_SETS, &values, properties)
    }
}

/// What the launch of one ECS task for a large file contributes.
#[derive(Debug, Clone)]
pub struct TaskLaunchMetrics {
    /// The file's dataset ([`NO_DATASET`] when it has none).
    pub dataset: String,
    /// The runtime that launched it (`lambda`, `worker`).
    pub runtime: &'static str,
    /// The launcher's route (`ecs`).
    pub route: String,
    pub object: String,
    /// The task's id (its ARN on ECS).
    pub task: String,
}

impl TaskLaunchMetrics {
    /// One EMF line (no trailing newline) stamped `now`.
    pub fn emf(&self, now: Millis) -> String {
        let dataset = if self.dataset.is_empty() { NO_DATASET } else { self.dataset.as_str() };
        let properties = json!({
            "dataset": dataset,
            "runtime": self.runtime,
            "route": self.route,
            "object": self.object,
            "task": self.task,
        });
        emf_line(now, &LAUNCH_DIMENSION_SETS, &[(TASKS_LAUNCHED, json!(1))], properties)
    }
}

/// An EMF line: the metric declarations (namespace [`NAMESPACE`], `dimensions`, each metric's
/// name and unit), then `properties` (every dimension's value among them) and the values.
fn emf_line(
    now: Millis,
    dimensions: &[&[&str]],
    values: &[((&str, &str), serde_json::Value)],
    properties: serde_json::Value,
) -> String {
    let defs: Vec<_> = values.iter().map(|((name, unit), _)| json!({"Name": name, "Unit": unit})).collect();
    let mut v = json!({
        "_aws": {
            "Timestamp": now,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": defs,
            }],
        },
    });
    if let serde_json::Value::Object(props) = properties {
        v.as_object_mut().expect("an object").extend(props);
    }
    for ((name, _), value) in values {
        v[*name] = value.clone();
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_has_a_value_and_dimensions_are_fixed() {
        let m = FileMetrics {
            dataset: "orders".into(),
            state: "REJECTED",
            runtime: "ecs",
            object: "s3://lake/landing/orders/a.csv".into(),
            rows_read: 5,
            rows_loaded: 0,
            rows_rejected: 5,
            bytes_read: 100,
            seconds: 1.5,
            lag_seconds: None,
        };
        let v: serde_json::Value = serde_json::from_str(&m.emf(7)).unwrap();
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        for d in decl["Metrics"].as_array().unwrap() {
            let name = d["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name} has a value");
            assert!(name.starts_with("glueless_"));
        }
        assert!(v.get(LAG.0).is_none(), "no lag without an event time");
        for dims in decl["Dimensions"].as_array().unwrap() {
            for d in dims.as_array().unwrap() {
                assert!(["dataset", "state"].contains(&d.as_str().unwrap()), "object and runtime are never dimensions");
            }
        }
        assert_eq!(decl["Dimensions"][0], serde_json::json!([]), "a dimensionless set carries the totals");
        assert_eq!(v["runtime"], "ecs");
        assert_eq!(v["_aws"]["Timestamp"], 7);
    }

    #[test]
    fn a_launch_line_counts_one_task_per_dataset_and_in_total() {
        let m = TaskLaunchMetrics {
            dataset: "orders".into(),
            runtime: "lambda",
            route: "ecs".into(),
            object: "s3://lake/landing/orders/big.csv".into(),
            task: "arn:aws:ecs:us-east-1:123456789012:task/c/0123".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&m.emf(9)).unwrap();
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], NAMESPACE);
        assert_eq!(decl["Metrics"], serde_json::json!([{"Name": "glueless_tasks_launched_count", "Unit": "Count"}]));
        assert_eq!(v[TASKS_LAUNCHED.0], 1, "one launch, one count");
        assert_eq!(decl["Dimensions"], serde_json::json!([[], ["dataset"]]));
        assert_eq!((&v["dataset"], &v["route"], &v["runtime"]), (&"orders".into(), &"ecs".into(), &"lambda".into()));
        assert_eq!(
            v["task"], "arn:aws:ecs:us-east-1:123456789012:task/c/0123",
            "the task is a property, not a dimension"
        );
        assert_eq!(v["_aws"]["Timestamp"], 9);
        assert!(v.get(FILES.0).is_none(), "a launch is not a finished file");

        let none = TaskLaunchMetrics { dataset: String::new(), ..m };
        let v: serde_json::Value = serde_json::from_str(&none.emf(9)).unwrap();
        assert_eq!(v["dataset"], NO_DATASET, "a dimension value may not be empty");
    }
}
