//! The pipeline end to end through the real binary, each test in its own temporary folder with
//! its own lake, contracts, state store and warehouse files.

mod exactly_once;
mod faults;

use crate::support::{Run, glueless_with_env};
use std::path::{Path, PathBuf};

/// The test dataset: small, with a version column, a decimal and a constraint to break.
pub const CONTRACT: &str = r#"
name = "sales"
match = "landing/sales/**/*.csv*"
table = "fact_sales"
[schema]
primaryKey = ["id"]
[[schema.fields]]
name = "id"
type = "integer"
[[schema.fields]]
name = "ts"
type = "datetime"
constraints = { required = true }
[[schema.fields]]
name = "qty"
type = "integer"
constraints = { minimum = 1 }
[[schema.fields]]
name = "price"
type = "number"
decimal = [10, 2]
[load]
version_column = "ts"
max_rejected_ratio = 0.5
"#;

pub const HEADER: &str = "id,ts,qty,price\n";

/// A folder with a config, the `sales` contract and an empty lake.
pub struct Lake {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Lake {
    pub fn new(extra_config: &str) -> Lake {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("schemas")).unwrap();
        std::fs::write(root.join("schemas/sales.toml"), CONTRACT).unwrap();
        let config = format!(
            "[lake]\nurl = \"lake\"\n[run]\nsettle_ms = 0\nbatch_max_wait_ms = 0\npoll_interval_ms = 50\nlease_secs = 2\nretry_base_secs = 0.05\nretry_max_secs = 0.2\n{extra_config}"
        );
        std::fs::write(root.join("glueless.toml"), config).unwrap();
        Lake { _dir: dir, root }
    }

    /// Adds a copy of the `sales` contract as dataset `name` (files under `landing/<name>/`, table
    /// `fact_<name>`); a non-empty `integer_type` replaces the type of `id` (to break it).
    pub fn add_dataset(&self, name: &str, integer_type: &str) {
        let mut c = CONTRACT
            .replace("\"sales\"", &format!("\"{name}\""))
            .replace("landing/sales/", &format!("landing/{name}/"))
            .replace("fact_sales", &format!("fact_{name}"));
        if !integer_type.is_empty() {
            c = c.replace("\"integer\"", &format!("\"{integer_type}\""));
        }
        std::fs::write(self.root.join(format!("schemas/{name}.toml")), c).unwrap();
    }

    pub fn landing(&self, name: &str) -> PathBuf {
        self.root.join("lake/landing").join(name)
    }

    /// Writes a file into the landing prefix (creating folders), as a producer would.
    pub fn drop_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.landing(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn config(&self) -> String {
        self.root.join("glueless.toml").display().to_string()
    }

    pub fn glueless(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let config = self.config();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", &config]);
        glueless_with_env(&self.root, &all, env)
    }

    /// `glueless run --once --format json`, asserting its exit code is the one its report calls
    /// for: 1 when a file ended FAILED or DEAD, 3 when rows or files were rejected, else 0.
    pub fn run_once(&self, env: &[(&str, &str)]) -> serde_json::Value {
        let r = self.glueless(&["run", "--once", "--format", "json"], env);
        let v = r.json();
        // The last outcome of each file version decides (FAILED, then LOADED on retry, is LOADED).
        let mut last = std::collections::HashMap::new();
        for f in v["files"].as_array().into_iter().flatten() {
            last.insert((f["url"].to_string(), f["version"].to_string()), f);
        }
        let is = |s: &str| last.values().any(|f| f["state"] == s);
        let rows_rejected = last.values().any(|f| f["rows_rejected"].as_u64() > Some(0));
        let want = if is("FAILED") || is("DEAD") {
            1
        } else if is("REJECTED") || rows_rejected {
            3
        } else {
            0
        };
        assert_eq!(r.code, want, "exit code of run --once for {v}: {}", r.stderr);
        v
    }

    pub fn status(&self) -> serde_json::Value {
        let r = self.glueless(&["status", "--format", "json", "--limit", "100"], &[]);
        assert_eq!(r.code, 0, "status failed: {}", r.stderr);
        r.json()
    }

    pub fn warehouse(&self) -> PathBuf {
        self.root.join("warehouse.db")
    }

    /// `SELECT …` on the warehouse file, every value as text (NULL as "NULL").
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        query(&self.warehouse(), sql)
    }

    /// The fact table as `id|qty|price` strings, ordered by id.
    pub fn facts(&self) -> Vec<String> {
        self.query("SELECT id, qty, price FROM fact_sales ORDER BY id").into_iter().map(|r| r.join("|")).collect()
    }
}

pub fn query(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let c = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let mut st = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = st.column_count();
    st.query_map([], |row| {
        (0..n)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(_) => "<blob>".to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap()
}

/// Counts per state from `status --format json`.
pub fn count(status: &serde_json::Value, state: &str) -> u64 {
    status["counts"][state].as_u64().unwrap_or(0)
}

#[test]
fn files_dropped_into_the_lake_end_up_in_the_warehouse() {
    let lake = Lake::new("");
    lake.drop_file(
        "sales/2026/11/20.csv",
        &format!("{HEADER}1,2026-11-20T10:00:00Z,2,10.50\n2,2026-11-20T11:00:00Z,1,3\n3,2026-11-20T12:00:00Z,0,1.00\n"),
    );
    lake.drop_file("sales/21.csv", &format!("{HEADER}4,2026-11-21T09:00:00Z,5,0.99\n"));
    let report = lake.run_once(&[]);
    assert_eq!(report["counts"]["LOADED"], 2, "{report}");
    assert_eq!(lake.facts(), vec!["1|2|10.50", "2|1|3.00", "4|5|0.99"]);
    // The rejected row went to the quarantine, with its line and reason.
    let f =
        report["files"].as_array().unwrap().iter().find(|f| f["url"].as_str().unwrap().ends_with("20.csv")).unwrap();
    assert_eq!(
        (f["rows_read"].as_u64(), f["rows_loaded"].as_u64(), f["rows_rejected"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    let q = crate::support::jsonl(Path::new(f["quarantine"].as_str().expect("quarantine url")));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["line"], 4);
    assert!(q[0].to_string().contains("minimum"), "{}", q[0]);
    // One ledger row per file, and no staging left behind.
    assert_eq!(lake.query("SELECT count(*) FROM glueless_loads")[0][0], "2");
    let staging = lake.root.join("lake/staging");
    let left: Vec<_> = walk(&staging);
    assert!(left.is_empty(), "staging files left: {left:?}");
    let st = lake.status();
    assert_eq!(count(&st, "LOADED"), 2, "{st}");
    assert!(st["attention"].as_array().unwrap().is_empty());
}

/// `glueless task` on a local lake names its file by a key, a path (relative to the current
/// folder, or absolute) or a `file://` URL; a file outside the lake is refused (exit 2) with a
/// message naming the file and the lake.
#[test]
fn task_on_a_local_lake_takes_a_key_a_path_or_a_file_url() {
    let lake = Lake::new("");
    let row = |id: u32| format!("{HEADER}{id},2026-11-20T10:00:00Z,{id},1.50\n");
    let name = |id: u32| format!("sales/{id}.csv");
    let paths: Vec<PathBuf> = (1..=4).map(|id| lake.drop_file(&name(id), &row(id))).collect();
    let args = [
        "landing/sales/1.csv".to_string(),
        "lake/landing/sales/2.csv".to_string(),
        paths[2].display().to_string(),
        format!("file://{}", paths[3].display()),
    ];
    for (arg, path) in args.iter().zip(&paths) {
        let r = lake.glueless(&["task", "--url", arg, "--format", "json"], &[]);
        assert_eq!(r.code, 0, "task --url {arg}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!((v["state"].as_str(), v["file"]["rows_loaded"].as_u64()), (Some("LOADED"), Some(1)), "{arg}: {v}");
        assert_eq!(v["file"]["url"], path.display().to_string(), "{arg}: the state store names the file by its path");
    }
    assert_eq!(lake.facts(), vec!["1|1|1.50", "2|2|1.50", "3|3|1.50", "4|4|1.50"]);
    assert_eq!(count(&lake.status(), "LOADED"), 4);

    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("5.csv");
    std::fs::write(&outside, row(5)).unwrap();
    let lake_dir = lake.root.join("lake").display().to_string();
    for arg in [outside.display().to_string(), format!("file://{}", outside.display())] {
        let r = lake.glueless(&["task", "--url", &arg, "--format", "json"], &[]);
        assert_eq!(r.code, 2, "task --url {arg}: {}\n{}", r.stdout, r.stderr);
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        let says = format!("{} is not in the lake {lake_dir} ", outside.display());
        assert!(message.contains(&says), "{message}");
    }
    assert_eq!(lake.status()["counts"], serde_json::json!({"LOADED": 4}), "nothing outside the lake was registered");
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn demo_runs_and_checks_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let r = crate::support::glueless(dir.path(), &["demo", "--dir", d.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert!(v["checks"].as_array().unwrap().len() >= 8);
    assert!(r.stderr.contains("sqlite3"), "the demo says how to query the warehouse: {}", r.stderr);
    let n = query(&d.join("warehouse.db"), "SELECT count(*) FROM fact_orders")[0][0].parse::<u64>().unwrap();
    assert_eq!(Some(n), v["fact_rows"].as_u64());

    // The numbers the README states ("two files of orders ... (16 broken rows among 2,300)"):
    // the first run's two files, and a fact table holding every good row once after the second.
    let readme = std::fs::read_to_string(crate::support::repo().join("README.md")).unwrap();
    let words = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("(16 broken rows among 2,300)"), "the README's demo paragraph changed: update this test");
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 4, "two files, then the same two again: {v}");
    let first_run = &files[..2];
    let sum = |k: &str| first_run.iter().map(|f| f[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("rows_read"), sum("rows_rejected")), (2300, 16), "README: 16 broken rows among 2,300");
    assert!(files.iter().all(|f| f["state"] == "LOADED"), "{v}");
    assert_eq!(n, 2300 - 16, "every good row lands once, re-deliveries and re-uploads add none");
}

/// `glueless run` (the service, not `--once`) in the background, with `--format json`.
pub struct Service<'a> {
    lake: &'a Lake,
    child: std::process::Child,
}

impl Lake {
    pub fn start_service(&self, env: &[(&str, &str)]) -> Service<'_> {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_glueless"))
            .args(["run", "--format", "json", "--config", &self.config()])
            .env("GLUELESS_THREADS", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        Service { lake: self, child }
    }
}

impl Service<'_> {
    /// Waits (at most 60 s) until `status` counts `n` files LOADED.
    pub fn wait_loaded(&self, n: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while count(&self.lake.status(), "LOADED") < n {
            assert!(std::time::Instant::now() < deadline, "not LOADED in time: {}", self.lake.status());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Stops the service with SIGTERM: its exit code, its JSON report and its stderr.
    pub fn stop(self) -> (Option<i32>, serde_json::Value, String) {
        // SAFETY: kill(2) on a child process we own.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let out = self.child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("one JSON object ({e}): {stderr}"));
        (out.status.code(), v, stderr)
    }
}

#[test]
fn the_service_watches_the_lake_and_stops_cleanly_on_sigterm() {
    let lake = Lake::new("");
    lake.drop_file("sales/before.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,1,1.00\n"));
    let service = lake.start_service(&[]);
    service.wait_loaded(1); // picked up by the scan at start
    lake.drop_file("sales/after.csv", &format!("{HEADER}2,2026-11-20T10:00:00Z,2,2.00\n"));
    service.wait_loaded(2); // picked up by the watcher
    let (code, v, stderr) = service.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["counts"]["LOADED"], 2, "{v}");
    assert!(stderr.contains("LOADED") && stderr.contains("after.csv"), "per-file lines on stderr: {stderr}");
    assert_eq!(lake.facts(), vec!["1|1|1.00", "2|2|2.00"]);
}

#[test]
fn files_ready_together_share_one_load_and_batches_are_bounded() {
    let lake = Lake::new("batch_max_files = 3\n");
    for i in 0..5 {
        lake.drop_file(&format!("sales/b{i}.csv"), &format!("{HEADER}{i},2026-11-20T10:00:00Z,1,1.00\n"));
    }
    lake.run_once(&[]);
    let per_load = lake.query("SELECT load_id, count(*) FROM glueless_loads GROUP BY load_id ORDER BY 2 DESC");
    let sizes: Vec<&str> = per_load.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(sizes, vec!["3", "2"], "five files in two transactions of at most three: {per_load:?}");
}

#[test]
fn a_bad_configuration_is_refused_with_the_key_to_change() {
    let lake = Lake::new("leese_secs = 3\n");
    let r = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("glueless.toml") && msg.contains("leese_secs") && msg.contains("lease_secs"), "{msg}");
    let lake = Lake::new("");
    let r = lake.glueless(&["status"], &[("GLUELESS__WAREHOUSE__URL", "postgres://db/x")]);
    assert_eq!(r.code, 0, "status does not need the warehouse: {}", r.stderr);
    let r = lake.glueless(&["run", "--once"], &[("GLUELESS__WAREHOUSE__URL", "postgres://db/x")]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("postgres://db/x"), "{}", r.stderr);
}
