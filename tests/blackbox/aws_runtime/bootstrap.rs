//! The `glueless-lambda` binary itself (what the zip holds as `bootstrap`), against a local
//! stand-in for the Lambda Runtime API: it starts, asks for an invocation, gets the batch SQS
//! handed out, loads the file and answers with its batch item failures.

use super::lambda::event;
use super::runtime_api::{binary, invoke};
use super::*;
use glueless_jobs::ports::FileState;

#[test]
fn the_bootstrap_binary_serves_an_invocation_through_the_runtime_api() {
    rt().block_on(async {
        let stack = Stack::deploy("bootstrap", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.db");
        let version = stack.put("landing/sales/boot.csv", &sales(1, 5, 0)).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        assert_eq!(received.len(), 1);
        let ev = serde_json::to_string(&event(&stack, &received, &[])).unwrap();
        let inv = invoke(&ev, &stack.env(contracts.path(), &format!("sqlite://{}", path_str(&db))));
        let v = inv.json();
        let ready = inv.ready.expect("asked for an invocation");
        eprintln!("{}: start to ready {:?}", binary(), ready - inv.started);
        assert_eq!(v["batchItemFailures"], serde_json::json!([]), "{v}");
        assert!(inv.stderr.contains("ready in"), "{}", inv.stderr);
        let emf: serde_json::Value = serde_json::from_str(inv.stdout.lines().next().expect("an EMF line")).unwrap();
        assert_eq!((emf["state"].as_str(), emf["runtime"].as_str()), (Some("LOADED"), Some("lambda")));
        // In Lambda every log line is JSON, and the file's line names the file and the invocation.
        let logs = crate::logs::json_lines(&inv.stderr);
        assert_eq!(logs.len(), inv.stderr.lines().count(), "only JSON lines on stderr: {}", inv.stderr);
        let loaded = crate::logs::file_line(&logs, "boot.csv", "LOADED");
        assert_eq!((loaded["dataset"].as_str(), loaded["request_id"].as_str()), (Some("sales"), Some("req-1")));
        assert_eq!((&loaded["url"], &loaded["version"]), (&emf["object"], &serde_json::json!(version)), "{loaded}");
        assert!(loaded["load_id"].as_str().is_some_and(|id| !id.is_empty()), "{loaded}");
        let rec = stack.record("landing/sales/boot.csv", &version).await;
        assert_eq!((rec.state, rec.rows_loaded), (FileState::Loaded, Some(5)));
    });
}
