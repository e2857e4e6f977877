//! Cut connections between glueless and PostgreSQL ([`PgProxy`]): during the `COPY`, during the
//! `MERGE`, and after the `COMMIT` was sent but before its answer arrived. A lost connection
//! is transient: the file is FAILED, retried (after 50–200 ms here) and LOADED in the same
//! `run --once`. The commit case is the one the ledger settles: the first load did commit, so
//! the retry finds both files in the ledger and loads nothing again.

use super::atomicity::postgres::{facts, ledger};
use super::proxy::{Cut, PgProxy, host_port};
use crate::pipeline::{HEADER, Lake, count};

/// `n` rows with ids from `first`.
fn rows(first: u64, n: u64) -> String {
    let mut s = HEADER.to_string();
    for id in first..first + n {
        s.push_str(&format!("{id},2026-11-20T10:00:00Z,{},{}.50\n", 1 + id % 20, id % 1000));
    }
    s
}

fn cut_then_loaded_once(test: &str, cut: Cut) {
    let url = tokio::runtime::Runtime::new().unwrap().block_on(crate::support::postgres_database(test));
    let proxy = PgProxy::start(&host_port(&url), cut);
    let through = proxy.url(&url);
    let lake = Lake::new("max_attempts = 5\n");
    lake.drop_file("sales/a.csv", &rows(0, 300));
    lake.drop_file("sales/b.csv", &rows(300, 200));
    let report = lake.run_once(&[("GLUELESS__WAREHOUSE__URL", through.as_str())]);
    assert!(proxy.fired(), "the connection was cut at {cut:?}: {report}");
    let files = report["files"].as_array().unwrap();
    // The cut failed the load that was under way: both files (one transaction) were retried.
    let failed: Vec<_> = files.iter().filter(|f| f["state"] == "FAILED").collect();
    assert_eq!(failed.len(), 2, "{report}");
    for f in &failed {
        let reason = f["reason"].as_str().unwrap();
        assert!(reason.to_lowercase().contains("connection") || reason.contains("closed"), "{reason}");
    }
    // The retry's outcome: for a cut before the commit, a load; after it, the ledger's word
    // that the first attempt did commit, and nothing loaded again.
    for name in ["a.csv", "b.csv"] {
        let f = files.iter().rev().find(|f| f["url"].as_str().unwrap().ends_with(name)).unwrap();
        assert_eq!(f["state"], "LOADED", "{f}");
        let settled = f["reason"].as_str().is_some_and(|r| r.contains("already in the warehouse ledger"));
        assert_eq!(settled, cut == Cut::AfterCommitSent, "{f}");
    }
    let st = lake.status();
    assert_eq!((count(&st, "LOADED"), count(&st, "DEAD"), count(&st, "RUNNING")), (2, 0, 0), "{st}");
    let facts = facts(&url);
    assert_eq!(facts.len(), 500, "every row once");
    assert_eq!(facts[7], "7|8|7.50");
    assert_eq!(facts[499], "499|20|499.50");
    assert_eq!(ledger(&url), ["a.csv", "b.csv"], "one ledger row per file");
}

#[test]
fn postgres_cut_during_copy_is_retried_and_loads_once() {
    cut_then_loaded_once("cut_copy", Cut::DuringCopy);
}

#[test]
fn postgres_cut_during_merge_is_retried_and_loads_once() {
    cut_then_loaded_once("cut_merge", Cut::DuringMerge);
}

#[test]
fn postgres_cut_after_commit_was_sent_is_settled_by_the_ledger() {
    cut_then_loaded_once("cut_commit", Cut::AfterCommitSent);
}

/// The "did it commit?" case of the state store (DynamoDB on the emulator, SQLite warehouse): the DynamoDB `UpdateItem` that records a file
/// LOADED reaches the emulator and is applied, and its answer is lost with the connection.
#[cfg(feature = "aws")]
mod emulator {
    use super::*;
    use crate::reliability::proxy::HttpProxy;

    fn records_loaded(request: &str) -> bool {
        request.contains("DynamoDB_20120810.UpdateItem") && request.contains("\"LOADED\"")
    }

    #[test]
    fn dynamodb_answer_to_the_loaded_update_lost_ends_loaded_once() {
        let proxy = HttpProxy::start(&crate::support::aws_endpoint(), records_loaded);
        let table = format!("glueless-cut-{}-{}", std::process::id(), proxy.endpoint.rsplit(':').next().unwrap());
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let client =
                aws_sdk_dynamodb::Client::new(&crate::support::local_sdk_config(&crate::support::aws_endpoint()));
            glueless_jobs::adapters::DynamoDbStateStore::with_client(client, table.clone())
                .ensure_table()
                .await
                .expect("create the table");
        });
        let lake = Lake::new("max_attempts = 5\n");
        lake.drop_file("sales/a.csv", &rows(0, 30));
        let state = format!("dynamodb://{table}");
        let env = [("GLUELESS__STATE__URL", state.as_str()), ("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint.as_str())];
        let report = lake.run_once(&env);
        assert!(proxy.fired(), "the answer was dropped: {report}");
        // The SDK sends the update again; its condition (still RUNNING, ours) no longer holds,
        // because the first one was applied: the pipeline leaves the recorded outcome alone.
        assert_eq!(report["counts"]["LOADED"], 1, "{report}");
        let st = lake.glueless(&["status", "--format", "json"], &env).json();
        assert_eq!((count(&st, "LOADED"), count(&st, "DEAD"), count(&st, "RUNNING")), (1, 0, 0), "{st}");
        assert_eq!(lake.facts().len(), 30);
        let ledger = lake.query("SELECT load_id FROM glueless_loads");
        assert_eq!(ledger.len(), 1, "loaded once");
        assert_eq!(report["files"][0]["load_id"].as_str(), Some(ledger[0][0].as_str()), "{report}");
    }
}
