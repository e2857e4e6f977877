//! The seeded chaos run (issue 12, item 4): three `glueless run` services (the long-running
//! local service) on one folder lake and one PostgreSQL warehouse, fed a few hundred deliveries
//! while a service is SIGKILLed (and started again) every 0.3–1.5 s, every other start arms a
//! crash point (`GLUELESS_FAULT`, each point of the file job in turn: the service kills itself
//! there), and the PostgreSQL server is stopped like a crash (`pg_ctl -m immediate`: every
//! connection dropped, connections refused for 2 s) and started again, once, while loads are
//! under way. State in SQLite, or in DynamoDB on the emulator.
//!
//! **What is delivered** ([`model::Plan`], drawn from the seed), in rounds of [`ROUND`]: new
//! files (some rows update keys other files hold), duplicates (a content delivered again under
//! another name), unchanged re-uploads and changed re-uploads (the same name written again),
//! out-of-order versions (a content whose rows carry older `version_column` values than
//! another one's, delivered a round after it), poison files (REJECTED as a whole: all rows but
//! one bad, or the required `ts` column missing), and files with a bad row (quarantined, the
//! rest loaded). Files are written to a dot-name and renamed, as producers should.
//!
//! **Why the expected end does not depend on timing.** Every row's version comes from one
//! counter, so two different rows never tie on key and version: the winner per key is the
//! highest version whatever order the loads ran in. A changed re-upload carries newer versions
//! for every valid key of the content it replaces. A name is written again only in a later
//! round than its last write, and the run waits between rounds until every version delivered
//! is LOADED or REJECTED: a version replaced before it was read would be DEAD by design ("not
//! loaded as this version"), and each version's outcome is then fixed by its content alone.
//!
//! **During the run**, right after each death at a crash point (before the lease lets another
//! service take the files over), the fact rows are read, then the ledger: every fact row must
//! be a valid row of a file in the ledger (fact rows never commit without their ledger row).
//!
//! **What is checked at the end**, after the services are stopped with SIGTERM and a final
//! `run --once` drains, against the model computed from the written rows only:
//! - every version is LOADED or REJECTED (as its content calls for), none RECEIVED, RUNNING,
//!   FAILED or DEAD (and none DEAD at any time during the run);
//! - the fact table is, row for row, per key the valid row with the highest version among the
//!   contents that are not rejected as a whole;
//! - the ledger has one row per load of a content under a name (an unchanged re-upload is not
//!   a load: the ledger compares a URL's content with its latest ledger row; the same bytes
//!   under another name are a load of that name), and as many distinct fingerprints as distinct
//!   contents loaded;
//! - every version's quarantine holds exactly its bad rows (raw lines), per name.
//!
//! `GLUELESS_CHAOS_SEED` replays a run's deliveries (the seed is printed at the start and on
//! failure; the kills' timing depends on the machine), `GLUELESS_CHAOS_FILES` (default
//! [`FILES`]) and `GLUELESS_CHAOS_SECS` (the run goes on, round after round, for at least that
//! long) make it bigger and longer.

mod model;

use super::atomicity::postgres::{fact_rows, facts, ledger, ledger_names, on};
use crate::pipeline::{Lake, count, walk};
use crate::support::{PgCluster, jsonl};
use model::{Plan, Rng, Write};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deliveries of a CI run, per state store.
const FILES: u64 = 300;
/// Deliveries per round.
const ROUND: usize = 20;
const WORKERS: usize = 3;
/// How long PostgreSQL refuses connections.
const PG_DOWN: Duration = Duration::from_secs(2);
/// Longest wait for a round to settle.
const SETTLE: Duration = Duration::from_secs(180);

/// Short leases and retries, so that a killed worker's files are taken over in 2 s and the
/// loads that failed while PostgreSQL was down are retried within a second; attempts to spare
/// (each claim a killed worker held counts as one).
const RUN: &str = "[run]\nsettle_ms = 0\npoll_interval_ms = 100\nbatch_max_wait_ms = 100\nbatch_max_files = 8\nlease_secs = 2\nretry_base_secs = 0.1\nretry_max_secs = 1\nmax_attempts = 50\n";

#[derive(Clone, Copy, Debug)]
enum State {
    Sqlite,
    #[cfg(feature = "aws")]
    DynamoDb,
}

struct Size {
    seed: u64,
    files: u64,
    secs: u64,
}

fn size() -> Size {
    let var = |k: &str| {
        std::env::var(k).ok().map(|v| v.trim().parse::<u64>().unwrap_or_else(|_| panic!("{k}={v}: not a number")))
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Size {
        seed: var("GLUELESS_CHAOS_SEED").unwrap_or(now.as_nanos() as u64 ^ u64::from(std::process::id())),
        files: var("GLUELESS_CHAOS_FILES").unwrap_or(FILES),
        secs: var("GLUELESS_CHAOS_SECS").unwrap_or(0),
    }
}

/// On a failure (a panic unwinding through it): the seed to replay, and the end of the last
/// services' logs.
struct OnFailure {
    what: String,
    seed: u64,
    logs: PathBuf,
}

impl Drop for OnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut logs: Vec<PathBuf> =
            walk(&self.logs).into_iter().filter(|p| p.to_string_lossy().ends_with(".err")).collect();
        logs.sort();
        for p in logs.iter().rev().take(6).rev() {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            eprintln!("--- {} (last lines)", p.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        eprintln!(
            "chaos {}: FAILED with seed {}; replay: GLUELESS_CHAOS_SEED={} scripts/test --test blackbox -- reliability::chaos",
            self.what, self.seed, self.seed
        );
    }
}

/// The crash points a `glueless run` passes (`before-sqs-delete` is the AWS dispatcher's).
fn points() -> Vec<&'static str> {
    glueless_jobs::pipeline::faults::POINTS.into_iter().filter(|p| *p != "before-sqs-delete").collect()
}

/// What the database held right after a service died at a crash point: the fact rows, then
/// (read after them) the file names in the ledger.
struct Snapshot {
    point: String,
    facts: Vec<String>,
    ledger: Vec<String>,
}

/// [`Snapshot`] of the warehouse at `url`; `None` when it does not answer (being restarted, or
/// no load has created the tables yet).
fn snapshot(url: &str, point: &str) -> Option<Snapshot> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(conn);
        let facts = fact_rows(&client).await.ok()?;
        let ledger = ledger_names(&client).await.ok()?;
        Some(Snapshot { point: point.to_string(), facts, ledger })
    })
}

/// The three services, their logs (`logs/worker-NNN.err`, one per start) and what happened to
/// them. Every other start arms a crash point (`GLUELESS_FAULT`, the points in turn): that
/// service kills itself with SIGKILL the first time it gets there.
struct Workers {
    lake_root: PathBuf,
    config: String,
    env: Vec<(String, String)>,
    warehouse: String,
    /// Each running service and the number of its log.
    running: Vec<(Child, usize)>,
    started: usize,
    kills: usize,
    /// Services that ended without being told to (a start while PostgreSQL was down, say).
    exits: Vec<String>,
    /// Crash points reached, and how often.
    fired: BTreeMap<String, usize>,
    snapshots: Vec<Snapshot>,
}

impl Workers {
    fn start(lake: &Lake, env: &[(String, String)], warehouse: &str) -> Workers {
        std::fs::create_dir_all(lake.root.join("logs")).unwrap();
        let mut w = Workers {
            lake_root: lake.root.clone(),
            config: lake.config(),
            env: env.to_vec(),
            warehouse: warehouse.to_string(),
            running: Vec::new(),
            started: 0,
            kills: 0,
            exits: Vec::new(),
            fired: BTreeMap::new(),
            snapshots: Vec::new(),
        };
        for _ in 0..WORKERS {
            let c = w.spawn();
            w.running.push(c);
        }
        w
    }

    fn spawn(&mut self) -> (Child, usize) {
        self.started += 1;
        let log = |ext: &str| std::fs::File::create(self.log(self.started, ext));
        let mut fault: Vec<(&str, String)> = Vec::new();
        if self.started.is_multiple_of(2) {
            let points = points();
            fault.push(("GLUELESS_FAULT", points[(self.started / 2) % points.len()].to_string()));
            fault.push(("GLUELESS_FAULT_MARKER", self.log(self.started, "fault").display().to_string()));
        }
        let child = Command::new(env!("CARGO_BIN_EXE_glueless"))
            .args(["run", "--format", "json", "--config", &self.config])
            .current_dir(&self.lake_root)
            .env("GLUELESS_THREADS", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(fault)
            .stdout(Stdio::from(log("out").unwrap()))
            .stderr(Stdio::from(log("err").unwrap()))
            .spawn()
            .expect("spawn glueless run");
        (child, self.started)
    }

    fn log(&self, n: usize, ext: &str) -> PathBuf {
        self.lake_root.join(format!("logs/worker-{n:03}.{ext}"))
    }

    /// Records a service that ended without being told to: at its crash point (then a
    /// [`Snapshot`] first, before another service takes its files over), or otherwise, with the
    /// last line of its log. `false` for a crash point.
    fn died(&mut self, n: usize, status: std::process::ExitStatus) -> bool {
        if let Ok(point) = std::fs::read_to_string(self.log(n, "fault")) {
            self.snapshots.extend(snapshot(&self.warehouse, &point));
            *self.fired.entry(point).or_default() += 1;
            return false;
        }
        let err = std::fs::read_to_string(self.log(n, "err")).unwrap_or_default();
        self.exits.push(format!("service {n} ended on its own ({status}): {}", err.lines().last().unwrap_or("")));
        true
    }

    /// Starts again the services that ended on their own. One that died at its crash point:
    /// first a [`Snapshot`] of the warehouse, before anyone takes its files over.
    fn revive(&mut self) {
        for i in 0..self.running.len() {
            if let Ok(Some(status)) = self.running[i].0.try_wait() {
                self.died(self.running[i].1, status);
                self.running[i] = self.spawn();
            }
        }
    }

    /// SIGKILL service `i` and start a new one in its place.
    fn kill(&mut self, i: usize) {
        let child = &mut self.running[i].0;
        // SAFETY: kill(2) on a child process we own and have not reaped.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        self.kills += 1;
        self.running[i] = self.spawn();
    }

    /// SIGTERM every service: each finishes the files in hand and exits with its report
    /// (`interrupted`; exit 1 when a file it worked on ended FAILED in its run, even if another
    /// service loaded it later).
    fn stop(&mut self) {
        // A service handles SIGTERM once it is up (its first lines logged, the handler in place
        // a moment later); one that was just started would die of it like of a SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(30);
        let logs: Vec<PathBuf> = self.running.iter().map(|(_, n)| self.log(*n, "err")).collect();
        for ((c, _), log) in self.running.iter_mut().zip(logs) {
            while c.try_wait().unwrap().is_none()
                && !std::fs::read_to_string(&log).unwrap_or_default().contains("watching")
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut stopped = Vec::new();
        for (mut c, n) in std::mem::take(&mut self.running) {
            match c.try_wait().unwrap() {
                Some(status) => {
                    self.died(n, status);
                }
                None => {
                    // SAFETY: kill(2) on a child process we own and have not reaped.
                    unsafe {
                        libc::kill(c.id() as i32, libc::SIGTERM);
                    }
                    stopped.push((c, n));
                }
            }
        }
        for (mut c, n) in stopped {
            let status = c.wait().unwrap();
            if std::fs::exists(self.log(n, "fault")).unwrap() {
                self.died(n, status); // got to its crash point while finishing
                continue;
            }
            let out = std::fs::read_to_string(self.log(n, "out")).unwrap();
            let err = std::fs::read_to_string(self.log(n, "err")).unwrap();
            assert!([Some(0), Some(1), Some(3)].contains(&status.code()), "service {n} on SIGTERM: {status}: {err}");
            let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON report");
            assert_eq!(report["interrupted"], true, "service {n}: {report}");
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (c, _) in &mut self.running {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sets the flag when dropped, also on a panic: the kill loop stops.
struct Raise<'a>(&'a AtomicBool);

impl Drop for Raise<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Writes `text` as `landing/sales/<name>`: to a dot-name first, then renamed (atomic).
fn deliver(lake: &Lake, w: &Write, text: &str) {
    let dir = lake.landing("sales");
    std::fs::create_dir_all(&dir).unwrap();
    let part = dir.join(format!(".{}.part", w.name));
    std::fs::write(&part, text).unwrap();
    std::fs::rename(&part, dir.join(&w.name)).unwrap();
}

fn status(lake: &Lake, env: &[(String, String)], limit: usize) -> serde_json::Value {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = lake.glueless(&["status", "--format", "json", "--limit", &limit.to_string()], &env);
    assert_eq!(r.code, 0, "status failed: {}", r.stderr);
    r.json()
}

/// Waits until the state store holds `versions` files, each LOADED or REJECTED; fails at once
/// on a DEAD file.
fn settle(lake: &Lake, env: &[(String, String)], versions: u64) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let st = status(lake, env, 1);
        if count(&st, "DEAD") > 0 {
            let all = status(lake, env, 10_000);
            let dead: Vec<_> = all["attention"].as_array().unwrap().iter().filter(|r| r["state"] == "DEAD").collect();
            panic!("a file went DEAD: {dead:?}");
        }
        let total: u64 = st["counts"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        if total == versions && count(&st, "LOADED") + count(&st, "REJECTED") == total {
            return;
        }
        assert!(Instant::now() < deadline, "{versions} versions delivered, not settled after {SETTLE:?}: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every quarantine under `lake/rejected`, by file name: each one's raw lines, sorted.
fn quarantines(lake: &Lake) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for p in walk(&lake.root.join("lake/rejected")) {
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        let name = file.split_once(".csv").map(|(n, _)| format!("{n}.csv")).unwrap_or(file);
        let mut raw: Vec<String> = jsonl(&p).iter().map(|q| q["raw"].as_str().expect("raw").to_string()).collect();
        if !raw.is_empty() {
            raw.sort();
            out.entry(name).or_default().push(raw);
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn chaos(state: State) {
    let size = size();
    let what = format!("{state:?} state");
    eprintln!(
        "chaos {what}: seed {} (replay with GLUELESS_CHAOS_SEED={}), {} files, at least {} s",
        size.seed, size.seed, size.files, size.secs
    );
    let started = Instant::now();
    let pg = PgCluster::start();
    let lake = Lake::new("");
    let state_url = match state {
        State::Sqlite => "sqlite://glueless-state.db".to_string(),
        #[cfg(feature = "aws")]
        State::DynamoDb => dynamodb_table(),
    };
    let config =
        format!("[lake]\nurl = \"lake\"\n[state]\nurl = \"{state_url}\"\n[warehouse]\nurl = \"{}\"\n{RUN}", pg.url());
    std::fs::write(lake.root.join("glueless.toml"), config).unwrap();
    let mut env: Vec<(String, String)> = Vec::new();
    if !matches!(state, State::Sqlite) {
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), crate::support::aws_endpoint()));
    }
    let _on_failure = OnFailure { what: what.clone(), seed: size.seed, logs: lake.root.join("logs") };

    let mut plan = Plan::new(size.seed);
    let mut timing = Rng::new(size.seed.rotate_left(17));
    let workers = Arc::new(Mutex::new(Workers::start(&lake, &env, &pg.url())));
    let done = &AtomicBool::new(false);
    let pg_round = (size.files as usize).div_ceil(ROUND).div_ceil(2).max(1);
    let mut rounds = 0;
    let mut restarted = false;
    std::thread::scope(|s| {
        let stop = Raise(done);
        let killer = workers.clone();
        let kill_seed = timing.next_u64();
        s.spawn(move || {
            // Every 0.1 s: services that died (at their crash point, say) are started again;
            // every 0.3-1.5 s one is SIGKILLed.
            let mut rng = Rng::new(kill_seed);
            let mut next_kill = Instant::now() + Duration::from_millis(rng.range(300, 1500));
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let mut w = killer.lock().unwrap();
                if done.load(Ordering::SeqCst) {
                    break;
                }
                w.revive();
                if Instant::now() >= next_kill {
                    w.kill(rng.range(0, WORKERS as u64 - 1) as usize);
                    next_kill = Instant::now() + Duration::from_millis(rng.range(300, 1500));
                }
            }
        });

        while (plan.writes.len() as u64) < size.files || started.elapsed().as_secs() < size.secs {
            rounds += 1;
            let writes = plan.round(ROUND);
            let half = writes.len() / 2;
            let mut down_since = None;
            for (i, w) in writes.into_iter().enumerate() {
                if rounds == pg_round && i == half {
                    // Loads of the first half are under way: the server goes away under them.
                    down_since = Some(Instant::now());
                    pg.stop_server();
                    let refused = std::net::TcpStream::connect(("127.0.0.1", pg.port)).is_err();
                    assert!(refused, "PostgreSQL refuses connections while stopped");
                }
                deliver(&lake, &w, &plan.contents[w.content].text);
                plan.delivered(w);
                std::thread::sleep(Duration::from_millis(timing.range(0, 40)));
            }
            if let Some(t) = down_since {
                std::thread::sleep(PG_DOWN.saturating_sub(t.elapsed()));
                pg.start_server();
                restarted = true;
            }
            settle(&lake, &env, plan.writes.len() as u64);
        }
        for w in plan.flush() {
            deliver(&lake, &w, &plan.contents[w.content].text);
            plan.delivered(w);
        }
        settle(&lake, &env, plan.writes.len() as u64);
        drop(stop);
    });
    assert!(restarted, "PostgreSQL was restarted once (round {pg_round} of {rounds})");
    let (kills, exits, fired, snapshots) = {
        let mut w = workers.lock().unwrap();
        w.stop();
        (w.kills, std::mem::take(&mut w.exits), std::mem::take(&mut w.fired), std::mem::take(&mut w.snapshots))
    };
    assert!(kills > 0, "workers were killed");
    assert!(!fired.is_empty(), "services died at crash points");

    // Right after each death at a crash point, every fact row came from a file in the ledger:
    // fact rows never commit without their ledger row.
    let sources = plan.sources();
    for snap in &snapshots {
        let orphans: Vec<&String> = snap
            .facts
            .iter()
            .filter(|f| !sources.get(*f).is_some_and(|names| names.iter().any(|n| snap.ledger.iter().any(|l| l == n))))
            .collect();
        assert!(
            orphans.is_empty(),
            "right after a service died at `{}`: {} fact rows of no file in the ledger, e.g. {:?}",
            snap.point,
            orphans.len(),
            &orphans[..orphans.len().min(5)]
        );
    }

    // A last pass, with nothing else running: there must be nothing left to do.
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let drain = lake.glueless(&["run", "--once", "--format", "json"], &env_ref);
    assert!([0, 3].contains(&drain.code), "the final run --once: {}", drain.stderr);

    // The states.
    let (loaded, rejected) = plan.states();
    let st = status(&lake, &env, 1);
    let counts = ["RECEIVED", "RUNNING", "FAILED", "DEAD", "LOADED", "REJECTED"].map(|s| count(&st, s));
    assert_eq!(counts, [0, 0, 0, 0, loaded, rejected], "states (RECEIVED RUNNING FAILED DEAD LOADED REJECTED): {st}");

    // The fact table.
    let url = pg.url();
    let got = facts(&url);
    let want = plan.facts();
    let first_diff = got.iter().zip(&want).position(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && first_diff.is_none(),
        "the fact table ({} rows) is not the model's ({} rows); first difference at {first_diff:?}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        first_diff.map(|i| &got[i]),
        first_diff.map(|i| &want[i]),
    );

    // The ledger.
    let mut per_name: BTreeMap<String, usize> = BTreeMap::new();
    for n in ledger(&url) {
        *per_name.entry(n).or_default() += 1;
    }
    let want_ledger: BTreeMap<String, usize> = plan.ledger().into_iter().collect();
    let names: std::collections::BTreeSet<&String> = want_ledger.keys().chain(per_name.keys()).collect();
    let diff: Vec<_> = names
        .into_iter()
        .filter(|n| per_name.get(*n) != want_ledger.get(*n))
        .map(|n| (n, per_name.get(n), want_ledger.get(n)))
        .collect();
    assert!(diff.is_empty(), "ledger rows per file (name, got, want): {diff:?}");
    let (distinct, rows) = on(&url, async |c| {
        let r = c.query_one("SELECT count(DISTINCT fingerprint), count(*) FROM glueless_loads", &[]).await.unwrap();
        (r.get::<_, i64>(0) as usize, r.get::<_, i64>(1) as usize)
    });
    assert_eq!(rows, want_ledger.values().sum::<usize>());
    assert_eq!(distinct, plan.distinct_loaded(), "one fingerprint per distinct content loaded");

    // The quarantines.
    let got_q = quarantines(&lake);
    let want_q = plan.quarantines();
    let names: std::collections::BTreeSet<&String> = want_q.keys().chain(got_q.keys()).collect();
    let diff: Vec<_> = names.into_iter().filter(|n| got_q.get(*n) != want_q.get(*n)).collect();
    assert!(diff.is_empty(), "quarantines that differ from the files' bad rows: {diff:?}");
    let bad: usize = want_q.values().flatten().map(Vec::len).sum();

    eprintln!(
        "chaos {what}: seed {}: {} deliveries in {rounds} rounds ({}); {} fact rows, {rows} ledger rows, {bad} rows quarantined; {kills} SIGKILLs, crash points reached {fired:?} ({} snapshots checked), {} service exits on their own, PostgreSQL down {PG_DOWN:?} in round {pg_round}; {:.1} s",
        size.seed,
        plan.writes.len(),
        plan.mix(),
        want.len(),
        snapshots.len(),
        exits.len(),
        started.elapsed().as_secs_f64()
    );
    for e in exits.iter().take(3) {
        eprintln!("chaos {what}: {e}");
    }
    if exits.len() > 3 {
        eprintln!("chaos {what}: and {} more service exits on their own", exits.len() - 3);
    }
}

#[test]
fn sqlite_state_chaos_ends_as_the_model_says() {
    chaos(State::Sqlite);
}

/// A fresh DynamoDB table on the emulator; its state URL.
#[cfg(feature = "aws")]
fn dynamodb_table() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let table = format!("glueless-chaos-{}-{nanos}", std::process::id());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&crate::support::local_sdk_config(&crate::support::aws_endpoint()));
        glueless_jobs::adapters::DynamoDbStateStore::with_client(client, table.clone())
            .ensure_table()
            .await
            .expect("create the table");
    });
    format!("dynamodb://{table}")
}

#[cfg(feature = "aws")]
#[test]
fn dynamodb_state_chaos_ends_as_the_model_says() {
    chaos(State::DynamoDb);
}
