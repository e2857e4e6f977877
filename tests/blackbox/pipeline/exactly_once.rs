//! Exactly-once: duplicate deliveries, re-uploads, racing workers, versions out of order.

use super::{HEADER, Lake, count};

fn day(ids: std::ops::Range<u64>, ts: &str, qty: u64) -> String {
    let mut s = HEADER.to_string();
    for id in ids {
        s.push_str(&format!("{id},{ts},{qty},{id}.25\n"));
    }
    s
}

fn expected(ids: std::ops::Range<u64>, qty: u64) -> Vec<String> {
    ids.map(|id| format!("{id}|{qty}|{id}.25")).collect()
}

#[test]
fn duplicates_and_reuploads_load_once_and_new_versions_merge() {
    let lake = Lake::new("");
    let text = day(1..51, "2026-11-20T10:00:00Z", 1);
    lake.drop_file("sales/a.csv", &text);
    lake.run_once(&[]);
    assert_eq!(lake.facts(), expected(1..51, 1));

    // The same event again (a second watcher pass sees the same URL and version).
    let again = lake.run_once(&[]);
    assert_eq!(again["files"].as_array().unwrap().len(), 0, "nothing to do: {again}");
    assert_eq!(again["duplicates"], 1, "{again}");

    // The same bytes uploaded again: a new version of the key, recognised by its content.
    std::thread::sleep(std::time::Duration::from_millis(20));
    lake.drop_file("sales/a.csv", &text);
    let re = lake.run_once(&[]);
    let f = &re["files"][0];
    assert_eq!((f["state"].as_str(), f["rows_loaded"].as_u64()), (Some("LOADED"), Some(0)), "{re}");
    assert!(f["reason"].as_str().unwrap_or("").contains("already"), "{f}");
    assert_eq!(lake.query("SELECT count(*) FROM glueless_loads")[0][0], "1");

    // New content under the same key: merged (updated rows, new rows, the rest kept).
    lake.drop_file("sales/a.csv", &day(40..61, "2026-11-21T10:00:00Z", 7));
    lake.run_once(&[]);
    let mut want = expected(1..40, 1);
    want.extend(expected(40..61, 7));
    assert_eq!(lake.facts(), want);
    assert_eq!(lake.query("SELECT count(*) FROM glueless_loads")[0][0], "2");
    let st = lake.status();
    assert_eq!(count(&st, "LOADED"), 3, "three versions of a.csv, each LOADED once: {st}");
}

#[test]
fn an_older_version_of_a_row_never_overwrites_a_newer_one() {
    let lake = Lake::new("");
    lake.drop_file("sales/new.csv", &day(1..11, "2026-11-21T10:00:00Z", 5));
    lake.run_once(&[]);
    // Arrives later, but its rows are older: rows 1..6 must stay as they are; 11..13 are new.
    lake.drop_file("sales/old.csv", &day(1..13, "2026-11-20T10:00:00Z", 9));
    lake.run_once(&[]);
    let mut want = expected(1..11, 5);
    want.extend(expected(11..13, 9));
    assert_eq!(lake.facts(), want);
}

#[test]
fn two_workers_racing_load_each_file_once() {
    let lake = Lake::new("");
    for i in 0..8u64 {
        lake.drop_file(&format!("sales/f{i}.csv"), &day(i * 100..i * 100 + 100, "2026-11-20T10:00:00Z", i + 1));
    }
    let config = lake.config();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_glueless"))
            .args(["run", "--once", "--format", "json", "--config", &config])
            .env("GLUELESS_THREADS", "1")
            .env("GLUELESS__RUN__BATCH_MAX_FILES", "2")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let loaded = |o: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["counts"]["LOADED"].as_u64().unwrap()
    };
    assert_eq!(loaded(&a) + loaded(&b), 8, "each file LOADED by exactly one worker");
    let mut want = Vec::new();
    for i in 0..8u64 {
        want.extend(expected(i * 100..i * 100 + 100, i + 1));
    }
    assert_eq!(lake.facts(), want);
    assert_eq!(lake.query("SELECT count(*), count(DISTINCT object_url) FROM glueless_loads")[0], vec!["8", "8"]);
}
