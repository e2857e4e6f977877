//! The CloudWatch dashboard of `infra/template.yaml`, deployed into the local AWS emulator with
//! two datasets: CloudFormation creates it, its body is JSON once Fn::Sub is resolved, and every
//! glueless metric it graphs (plain, in a SEARCH expression or in a Logs Insights query) is one
//! the EMF lines of `jobs/src/metrics.rs` carry, with a dimension set they declare. Renaming a
//! metric or a dimension on either side fails here. Each graph is explained in
//! `docs/operations.md`, section "Dashboard"; so is checked here too. And the one metric the
//! dashboard added, the ECS tasks launched, is printed by a worker that launches a task.

use crate::aws_runtime::ecs::{ecs_env, task_arns};
use crate::aws_runtime::worker::worker;
use crate::aws_runtime::{Stack, contracts, python, rt, sales};
use crate::support::*;
use glueless_jobs::metrics::{self, FileMetrics, TaskLaunchMetrics};
use glueless_jobs::ports::FileState;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

type DimensionSets = BTreeSet<BTreeSet<String>>;

/// Each metric name the EMF lines carry, with the dimension sets they declare for it: read from
/// the lines themselves, not from the constants.
fn emitted() -> BTreeMap<String, DimensionSets> {
    let file = FileMetrics {
        dataset: "orders".into(),
        state: FileState::Loaded.as_str(),
        runtime: "lambda",
        object: "s3://b/landing/orders/a.csv".into(),
        rows_read: 2,
        rows_loaded: 1,
        rows_rejected: 1,
        bytes_read: 10,
        seconds: 0.1,
        lag_seconds: Some(2.0),
    };
    let launch = TaskLaunchMetrics {
        dataset: "orders".into(),
        runtime: "lambda",
        route: "ecs".into(),
        object: "s3://b/landing/orders/big.csv".into(),
        task: "t".into(),
    };
    let mut out: BTreeMap<String, DimensionSets> = BTreeMap::new();
    for line in [file.emf(0), launch.emf(0)] {
        let v: Value = serde_json::from_str(&line).unwrap();
        for decl in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(decl["Namespace"], metrics::NAMESPACE);
            let sets: DimensionSets = decl["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|set| set.as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect())
                .collect();
            for m in decl["Metrics"].as_array().unwrap() {
                out.entry(m["Name"].as_str().unwrap().to_string()).or_default().extend(sets.clone());
            }
        }
    }
    out
}

/// The body of the deployed dashboard `name`, through CloudWatch's GetDashboard (boto3).
fn dashboard_body(name: &str) -> Value {
    let script = "import sys, boto3\n\
                  cw = boto3.client('cloudwatch', endpoint_url=sys.argv[1], region_name='us-east-1', \
                  aws_access_key_id='test', aws_secret_access_key='test')\n\
                  print(cw.get_dashboard(DashboardName=sys.argv[2])['DashboardBody'])";
    let out =
        std::process::Command::new(python()).args(["-c", script, &aws_endpoint(), name]).output().expect("python runs");
    assert!(out.status.success(), "GetDashboard {name}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("the dashboard's body is JSON after Fn::Sub ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    })
}

/// One series a graph asks CloudWatch for.
#[derive(Debug)]
struct Asked {
    widget: String,
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
    stat: Option<String>,
    /// From a SEARCH expression (its dimension values are whatever exists).
    search: bool,
}

/// `SEARCH('{Namespace,dim,…} MetricName="m"', 'Stat', period)` → the series it asks for.
fn parse_search(widget: &str, expression: &str) -> Asked {
    let inner = expression.strip_prefix("SEARCH('{").unwrap_or_else(|| panic!("{widget}: not a SEARCH: {expression}"));
    let (schema, rest) = inner.split_once('}').expect("a schema in braces");
    let mut parts = schema.split(',').map(str::trim);
    let namespace = parts.next().unwrap().to_string();
    let dimensions = parts.map(|d| (d.to_string(), String::new())).collect();
    let metric = rest.split_once("MetricName=\"").and_then(|(_, r)| r.split_once('"')).map(|(m, _)| m.to_string());
    let stat = rest.split("', '").nth(1).and_then(|r| r.split_once('\'')).map(|(s, _)| s.to_string());
    Asked {
        widget: widget.to_string(),
        namespace,
        metric: metric.unwrap_or_else(|| panic!("{widget}: a SEARCH without MetricName: {expression}")),
        dimensions,
        stat,
        search: true,
    }
}

/// Every series the metric graphs ask for, and every Logs Insights query.
fn asked(body: &Value) -> (Vec<Asked>, Vec<(String, String)>) {
    let (mut series, mut queries) = (Vec::new(), Vec::new());
    for w in body["widgets"].as_array().expect("widgets") {
        let p = &w["properties"];
        let title = p["title"].as_str().unwrap_or_default().to_string();
        match w["type"].as_str().unwrap() {
            "metric" => {
                let default_stat = p["stat"].as_str().map(String::from);
                for entry in p["metrics"].as_array().unwrap_or_else(|| panic!("{title}: no metrics")) {
                    let entry = entry.as_array().unwrap();
                    if let Some(opts) = entry[0].as_object() {
                        let e = opts["expression"].as_str().unwrap();
                        if e.contains("SEARCH(") {
                            series.push(parse_search(&title, e));
                        }
                        continue;
                    }
                    let strings: Vec<&str> = entry.iter().filter_map(Value::as_str).collect();
                    let opts = entry.iter().find_map(Value::as_object);
                    assert!(
                        strings[0] != "." && strings.len().is_multiple_of(2),
                        "{title}: spell every metric out: {entry:?}"
                    );
                    series.push(Asked {
                        widget: title.clone(),
                        namespace: strings[0].to_string(),
                        metric: strings[1].to_string(),
                        dimensions: strings[2..].chunks(2).map(|kv| (kv[0].to_string(), kv[1].to_string())).collect(),
                        stat: opts
                            .and_then(|o| o.get("stat"))
                            .and_then(Value::as_str)
                            .map(String::from)
                            .or(default_stat.clone()),
                        search: false,
                    });
                }
            }
            "log" => queries.push((title, p["query"].as_str().expect("a query").to_string())),
            "text" => {}
            other => panic!("a widget of type {other}"),
        }
    }
    (series, queries)
}

/// The last segment of a queue URL: its name.
fn queue_name(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[test]
fn the_dashboard_graphs_the_metrics_the_emf_lines_carry() {
    let stack = Stack::deploy("dashboard", &[("DatasetPrefixes", "landing/orders/,landing/shipments/")]);
    let body = dashboard_body(&stack.dashboard);
    let emitted = emitted();
    let (series, queries) = asked(&body);

    // Every glueless series: a metric the EMF lines carry, with a dimension set they declare
    // (CloudWatch finds a series only by its exact set of dimensions).
    let states: BTreeSet<&str> = FileState::ALL.iter().map(|s| s.as_str()).collect();
    for s in series.iter().filter(|s| s.namespace == metrics::NAMESPACE) {
        let sets = emitted.get(&s.metric).unwrap_or_else(|| {
            panic!("{}: {} is not a metric the EMF lines carry ({:?})", s.widget, s.metric, emitted.keys())
        });
        let dims: BTreeSet<String> = s.dimensions.keys().cloned().collect();
        assert!(sets.contains(&dims), "{}: {} has no dimension set {dims:?}; it has {sets:?}", s.widget, s.metric);
        if let Some(state) = s.dimensions.get("state").filter(|_| !s.search) {
            assert!(states.contains(state.as_str()), "{}: no state {state}", s.widget);
        }
        assert!(
            !s.dimensions.contains_key("dataset") || s.search,
            "{}: a dataset is found by SEARCH, not named",
            s.widget
        );
    }
    for s in series.iter().filter(|s| s.search) {
        assert_eq!(s.namespace, metrics::NAMESPACE, "{}: SEARCH in {}", s.widget, s.namespace);
    }
    // The Logs Insights queries read the EMF lines' fields: metric names and dimension values.
    let dimension_names: BTreeSet<String> = emitted.values().flatten().flatten().cloned().collect();
    for (title, q) in &queries {
        let fields: BTreeSet<&str> = q
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("glueless_"))
            .collect();
        assert!(!fields.is_empty(), "{title}: a query of the EMF lines: {q}");
        for f in fields {
            assert!(emitted.contains_key(f), "{title}: {f} is not a metric the EMF lines carry");
        }
        let by = q.rsplit_once(" by ").map(|(_, b)| b).unwrap_or_else(|| panic!("{title}: grouped: {q}"));
        for field in by.split(',').map(str::trim).filter(|f| !f.starts_with("bin(")) {
            assert!(dimension_names.contains(field), "{title}: grouped by {field}, which the EMF lines do not carry");
        }
        for group in ["lambda", "task"] {
            assert!(
                q.contains("SOURCE '/glueless/") && q.contains(&format!("/{group}'")),
                "{title}: reads the {group} logs: {q}"
            );
        }
    }

    // What the operator needs is all there (issue 15): files by every finished state, rows
    // loaded and rejected, the rejected ratio by dataset, the lag's p50 and p99, queue and DLQ
    // depth and age, the function's errors, throttles and duration, the ECS tasks launched.
    let has = |ns: &str, metric: &str, f: &dyn Fn(&Asked) -> bool| {
        series.iter().any(|s| s.namespace == ns && s.metric == metric && f(s))
    };
    let g = metrics::NAMESPACE;
    for state in [FileState::Loaded, FileState::Rejected, FileState::Failed, FileState::Dead] {
        assert!(
            has(g, metrics::FILES.0, &|s| s.dimensions.get("state").map(String::as_str) == Some(state.as_str())),
            "files {}",
            state.as_str()
        );
    }
    for m in [metrics::ROWS_LOADED.0, metrics::ROWS_REJECTED.0, metrics::TASKS_LAUNCHED.0] {
        assert!(has(g, m, &|_| true), "{m}");
    }
    for p in ["p50", "p99"] {
        assert!(has(g, metrics::LAG.0, &|s| s.stat.as_deref() == Some(p)), "lag {p}");
    }
    assert!(
        has(g, metrics::ROWS_REJECTED.0, &|s| s.search && s.dimensions.contains_key("dataset")),
        "rejected rows by dataset"
    );
    assert!(
        queries.iter().any(|(_, q)| q.contains(metrics::ROWS_REJECTED.0) && q.contains(metrics::ROWS_READ.0)),
        "the rejected ratio by dataset"
    );
    let (queue, dlq) = (queue_name(&stack.queue_url), queue_name(&stack.dlq_url));
    for q in [&queue, &dlq] {
        let on = |s: &Asked| s.dimensions.get("QueueName") == Some(q);
        assert!(has("AWS/SQS", "ApproximateNumberOfMessagesVisible", &on), "depth of {q}");
        assert!(has("AWS/SQS", "ApproximateAgeOfOldestMessage", &on), "age of {q}");
    }
    for s in series.iter().filter(|s| s.namespace == "AWS/SQS") {
        let name = &s.dimensions["QueueName"];
        assert!(name == &queue || name == &dlq, "{}: {name} is not this stack's queue", s.widget);
    }
    for m in ["Errors", "Throttles", "Duration"] {
        assert!(has("AWS/Lambda", m, &|s| s.dimensions.contains_key("FunctionName")), "function {m}");
    }

    // Several datasets, and none named: the by-dataset graphs find them, whatever the list.
    let text = body.to_string();
    for dataset in ["orders", "shipments"] {
        assert!(!text.contains(dataset), "the dashboard names no dataset ({dataset})");
    }

    // docs/operations.md explains each graph, by its title.
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let section = doc.split_once("\n## Dashboard\n").map(|(_, s)| s).expect("a Dashboard section");
    let section = section.split("\n## ").next().unwrap();
    for w in body["widgets"].as_array().unwrap() {
        if let Some(title) = w["properties"]["title"].as_str() {
            assert!(section.contains(&format!("**{title}**")), "docs/operations.md, Dashboard: explains \"{title}\"");
        }
    }
}

#[test]
fn a_worker_that_launches_an_ecs_task_prints_the_line_the_dashboard_counts() {
    rt().block_on(async {
        let stack = Stack::deploy("launch-metric", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        // Every file is "large" here: the worker launches it on the stack's ECS cluster.
        let env = ecs_env(&stack, contracts.path(), &dir.path().join("w.db"), &[]);
        stack.put("landing/sales/big.csv", &sales(1, 20, 0)).await;
        let run = worker(&env, &[]);
        assert_eq!(run.code, 0, "worker: {}", run.stderr);
        let tasks = task_arns(&stack.ecs_cluster).await;
        assert_eq!(tasks.len(), 1, "one task launched: {}", run.stderr);

        let lines: Vec<Value> =
            run.stdout.lines().map(|l| serde_json::from_str(l).expect("stdout holds EMF lines only")).collect();
        let launches: Vec<&Value> = lines.iter().filter(|l| l.get(metrics::TASKS_LAUNCHED.0).is_some()).collect();
        assert_eq!(launches.len(), 1, "one launch line: {}", run.stdout);
        let l = launches[0];
        assert_eq!(l[metrics::TASKS_LAUNCHED.0], 1);
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], metrics::TASKS_LAUNCHED.0);
        assert_eq!(
            (l["dataset"].as_str(), l["runtime"].as_str(), l["route"].as_str()),
            (Some("sales"), Some("worker"), Some("ecs"))
        );
        assert_eq!(l["task"].as_str(), Some(tasks[0].as_str()), "the task's ARN rides along");
        assert_eq!(l["object"].as_str(), Some(stack.url("landing/sales/big.csv").as_str()));
        // The file is not finished here (the task has it): no file line yet.
        assert!(lines.iter().all(|l| l.get(metrics::FILES.0).is_none()), "{}", run.stdout);
    });
}
