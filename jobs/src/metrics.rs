//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON line per finished file, which
//! CloudWatch Logs turns into metrics when a Lambda function or an ECS task prints it on stdout.
//!
//! Every metric name lives here, as `glueless_<name>_<unit>`; the dimension sets are small and
//! fixed: none (the totals the alarms watch), `state`, `dataset`, and `dataset` + `state` —
//! never an object key or an error text, which would make one metric series per file. The
//! object URL and the runtime (`lambda`, `ecs`, `worker`, `local`) ride along as plain
//! properties, searchable in CloudWatch Logs Insights but not dimensions.
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

/// The `dataset` of a file no contract matched (a dimension value may not be empty).
pub const NO_DATASET: &str = "(none)";

/// The dimension sets of every metric: totals, per state, per dataset, per dataset and state.
pub const DIMENSION_SETS: [&[&str]; 4] = [&[], &["state"], &["dataset"], &["dataset", "state"]];

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
        let mut metrics = vec![FILES, ROWS_READ, ROWS_LOADED, ROWS_REJECTED, BYTES_READ, DURATION];
        if self.lag_seconds.is_some() {
            metrics.push(LAG);
        }
        let defs: Vec<_> = metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect();
        let mut v = json!({
            "_aws": {
                "Timestamp": now,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": DIMENSION_SETS,
                    "Metrics": defs,
                }],
            },
            "dataset": self.dataset,
            "state": self.state,
            "runtime": self.runtime,
            "object": self.object,
            FILES.0: 1,
            ROWS_READ.0: self.rows_read,
            ROWS_LOADED.0: self.rows_loaded,
            ROWS_REJECTED.0: self.rows_rejected,
            BYTES_READ.0: self.bytes_read,
            DURATION.0: self.seconds,
        });
        if let Some(lag) = self.lag_seconds {
            v[LAG.0] = json!(lag);
        }
        v.to_string()
    }
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
}
