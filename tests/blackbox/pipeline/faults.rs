//! Crashes, poison files and bad input: nothing is lost, nothing is loaded twice, and every
//! problem ends in a state with a reason that `status` shows and `replay` can retry.

use super::{HEADER, Lake, count};
use crate::support::HttpReceiver;
use std::io::Write;

fn rows(n: u64) -> String {
    let mut s = HEADER.to_string();
    for id in 0..n {
        s.push_str(&format!("{id},2026-11-20T10:00:00Z,{},{}.50\n", 1 + id % 20, id % 1000));
    }
    s
}

fn killed_then_restarted(point: &str, n: u64) {
    let lake = Lake::new("");
    lake.drop_file("sales/big.csv", &rows(n));
    let killed = lake.glueless(&["run", "--once"], &[("GLUELESS_FAULT", point)]);
    assert_eq!(killed.code, -1, "killed by SIGKILL at {point}: {}", killed.stderr);
    let st = lake.status();
    assert_eq!(count(&st, "RUNNING"), 1, "the dead worker's claim is still there: {st}");
    // Restarted: the claim lapses after its lease (2 s here) and the file is taken up again.
    let report = lake.run_once(&[]);
    assert_eq!(report["counts"]["LOADED"], 1, "{report}");
    let facts = lake.facts();
    assert_eq!(facts.len() as u64, n);
    assert_eq!(facts[7], "7|8|7.50");
    assert_eq!(lake.query("SELECT count(*) FROM glueless_loads")[0][0], "1", "loaded exactly once");
    let st = lake.status();
    assert_eq!((count(&st, "RUNNING"), count(&st, "LOADED")), (0, 1), "{st}");
}

#[test]
fn killed_during_the_transform_and_restarted_loads_once() {
    // Over a MiB, so the transform reports progress (where the crash point is) mid-file.
    killed_then_restarted("during-transform", 60_000);
}

#[test]
fn killed_after_the_warehouse_commit_and_restarted_loads_once() {
    killed_then_restarted("after-commit", 1_000);
}

#[test]
fn a_file_that_always_fails_ends_dead_with_an_alert_and_others_still_load() {
    let alerts = HttpReceiver::start();
    let port = alerts.port;
    let lake = Lake::new(&format!("max_attempts = 3\n[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/hook\"\n"));
    // A second dataset whose fact table name is taken by a view: every load of it fails.
    lake.add_dataset("poison", "");
    let c = rusqlite::Connection::open(lake.warehouse()).unwrap();
    c.execute_batch("CREATE VIEW fact_poison AS SELECT 1 AS id").unwrap();
    drop(c);
    lake.drop_file("poison/p.csv", &rows(5));
    lake.drop_file("sales/ok.csv", &rows(5));
    let report = lake.run_once(&[]);
    assert_eq!(report["counts"]["DEAD"], 1, "{report}");
    assert_eq!(report["counts"]["FAILED"], 2, "two retries before giving up: {report}");
    assert_eq!(lake.facts().len(), 5, "the healthy dataset loaded");
    let st = lake.status();
    let dead = &st["attention"][0];
    assert_eq!(dead["state"], "DEAD");
    assert_eq!(dead["attempts"], 3);
    let err = dead["last_error"].as_str().unwrap();
    assert!(err.contains("fact_poison") && err.contains("gave up after 3 attempts"), "{err}");
    let bodies = alerts.wait_for(1);
    assert_eq!(bodies.len(), 1, "one alert: {bodies:?}");
    let alert: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(alert["glueless"]["state"], "DEAD");
    assert_eq!(alert["glueless"]["dataset"], "poison");
    assert!(alert["text"].as_str().unwrap().contains("p.csv"), "{alert}");

    // Once the table is fixed, a replay loads it; replaying again is harmless.
    let c = rusqlite::Connection::open(lake.warehouse()).unwrap();
    c.execute_batch("DROP VIEW fact_poison").unwrap();
    drop(c);
    let r = lake.glueless(&["replay", "--state", "DEAD", "--format", "json"], &[]);
    assert_eq!(r.json()["replayed"].as_array().unwrap().len(), 1, "{}", r.stderr);
    let r = lake.glueless(&["replay", "--state", "DEAD", "--format", "json"], &[]);
    assert_eq!(r.json()["replayed"].as_array().unwrap().len(), 0);
    let again = lake.run_once(&[]);
    assert_eq!(again["counts"]["LOADED"], 1, "{again}");
    assert_eq!(lake.query("SELECT count(*) FROM fact_poison")[0][0], "5");
}

#[test]
fn bad_input_becomes_a_state_with_a_reason_and_can_be_replayed() {
    let lake = Lake::new("");
    // A broken contract, a truncated gzip, a file no contract matches, and a good file.
    lake.add_dataset("broken", "integr");
    lake.drop_file("broken/b.csv", &rows(3));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(rows(2000).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let p = lake.landing("sales/t.csv.gz");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    lake.drop_file("stray/x.csv", &rows(1));
    lake.drop_file("sales/good.csv", &rows(4));
    let report = lake.run_once(&[]);
    assert_eq!(report["counts"]["LOADED"], 1, "{report}");
    assert_eq!(report["counts"]["REJECTED"], 3, "{report}");
    let st = lake.status();
    let reason = |name: &str| {
        st["attention"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"]["url"].as_str().unwrap().ends_with(name))
            .map(|f| f["last_error"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} needs attention: {st}"))
    };
    assert!(reason("b.csv").contains("broken.toml") && reason("b.csv").contains("integr"), "{}", reason("b.csv"));
    assert!(reason("t.csv.gz").contains("Gzip"), "{}", reason("t.csv.gz"));
    assert!(reason("x.csv").contains("no contract matches"), "{}", reason("x.csv"));

    // Fix the contract, replay the prefix: loaded.
    lake.add_dataset("broken", "");
    let r = lake.glueless(&["replay", "--prefix", "landing/broken/", "--format", "json"], &[]);
    assert_eq!(r.json()["replayed"].as_array().unwrap().len(), 1, "{}", r.stderr);
    let again = lake.run_once(&[]);
    assert_eq!(again["counts"]["LOADED"], 1, "{again}");
    assert_eq!(lake.query("SELECT count(*) FROM fact_broken")[0][0], "3");
}

#[test]
fn large_files_go_through_the_launcher_and_the_route_is_recorded() {
    let lake = Lake::new("inline_max_bytes = 100\n");
    lake.drop_file("sales/small.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,1,1.00\n"));
    lake.drop_file("sales/large.csv", &rows(50));
    let report = lake.run_once(&[]);
    let route = |name: &str| {
        report["files"].as_array().unwrap().iter().find(|f| f["url"].as_str().unwrap().ends_with(name)).unwrap()["route"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(route("small.csv"), "inline");
    assert_eq!(route("large.csv"), "in-process");
    assert_eq!(report["counts"]["LOADED"], 2, "{report}");
}

#[test]
fn a_file_deleted_before_it_is_processed_is_dead_with_the_reason() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let lake = Lake::new("");
        let path = lake.drop_file("sales/gone.csv", &rows(3));
        let settings =
            glueless_jobs::settings::Settings::load(Some(std::path::Path::new(&lake.config())), std::iter::empty())
                .unwrap();
        let p = glueless_jobs::pipeline::Pipeline::build(settings, 1, true).await.unwrap();
        let events = p.lake.list_landing().await.unwrap();
        assert_eq!(
            p.accept(&events[0]).await.unwrap(),
            glueless_jobs::pipeline::Accepted::New { dataset: "sales".into() }
        );
        std::fs::remove_file(&path).unwrap();
        let shutdown = glueless_jobs::pipeline::service::Shutdown::default();
        let s = glueless_jobs::pipeline::service::run(
            &p,
            glueless_jobs::pipeline::service::RunOptions { once: true },
            &shutdown,
        )
        .await;
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].state, glueless_jobs::ports::FileState::Dead);
        assert!(s.files[0].reason.as_deref().unwrap().contains("does not exist"), "{:?}", s.files[0]);
    });
}
