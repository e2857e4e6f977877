//! `glueless demo`: the whole pipeline on the embedded default, on sample data, with checks.
//!
//! It makes a lake in a new folder, writes the orders contract and two files of orders (with
//! some bad rows), runs the pipeline until quiet, then delivers the same event again, uploads
//! one file again unchanged and the other with changed rows (some newer, one older than the
//! warehouse has), runs again, and checks what landed: rows per file, the quarantine, the fact
//! table, the ledger. It exits 0 only if every check holds.

use super::exit::Exit;
use super::pipeline::summary_line;
use super::{CliError, Format};
use crate::pipeline::service::{self, RunOptions, Shutdown};
use crate::pipeline::{Accepted, Pipeline};
use crate::ports::{FileState, ObjectEvent};
use crate::settings::Settings;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const CONTRACT: &str = include_str!("../../../schemas/orders.toml");
const DAY1: &str = include_str!("../../../examples/orders-2026-11-20.csv");
const CONFIG: &str = "# made by `glueless demo`; see the README for every key\n\
[lake]\nurl = \"lake\"\n\n[run]\nsettle_ms = 0\nbatch_max_wait_ms = 0\npoll_interval_ms = 200\n";

struct Checks {
    list: Vec<(String, bool)>,
}

impl Checks {
    fn check(&mut self, what: impl Into<String>, ok: bool) {
        let what = what.into();
        eprintln!("  {} {what}", if ok { "ok  " } else { "FAIL" });
        self.list.push((what, ok));
    }
}

/// A second day of orders: `n` rows with ids of their own; every 150th row is bad.
fn day2(n: u64) -> String {
    let mut s = String::from("order_id,order_ts,customer_id,sku,quantity,unit_price,currency,country,status,note\n");
    for i in 0..n {
        let id = 9_000_000_000 + i;
        if i % 150 == 149 {
            s.push_str(&format!(
                "{id},2026-11-21T10:00:00Z,42,SKU-12345,0,1.00,EUR,FR,paid,quantity 0 is below the minimum\n"
            ));
        } else {
            s.push_str(&format!(
                "{id},2026-11-21T{:02}:{:02}:00Z,{},SKU-{:06},{},{}.{:02},EUR,DE,paid,\n",
                (i / 60) % 24,
                i % 60,
                1000 + i,
                i * 7 % 1_000_000,
                1 + i % 20,
                10 + i % 90,
                i % 100
            ));
        }
    }
    s
}

/// Day 1 again with a few rows changed: the first `newer` valid-looking rows get quantity 20 and a
/// later order_ts (they must win), the next one gets quantity 19 and an earlier order_ts (it must
/// lose to the row already loaded). Returns the file and the ids changed either way.
fn day1_changed(newer: usize) -> (String, Vec<i64>, i64) {
    let mut out = String::new();
    let mut changed = Vec::new();
    let mut older = 0;
    for (n, line) in DAY1.lines().enumerate() {
        let cols: Vec<&str> = line.splitn(6, ',').collect();
        let simple = n > 0 && cols.len() == 6 && cols[1].starts_with("2024-") && cols[0].parse::<i64>().is_ok();
        if simple && changed.len() < newer {
            changed.push(cols[0].parse().expect("checked"));
            out.push_str(&format!("{},2026-11-22T00:00:00Z,{},{},20,{}\n", cols[0], cols[2], cols[3], cols[5]));
        } else if simple && older == 0 && changed.len() == newer {
            older = cols[0].parse().expect("checked");
            out.push_str(&format!("{},2000-01-01T00:00:00Z,{},{},19,{}\n", cols[0], cols[2], cols[3], cols[5]));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    (out, changed, older)
}

fn fresh_dir() -> PathBuf {
    let tag: u32 = rand::random();
    std::env::temp_dir().join(format!("glueless-demo-{}-{tag:08x}", std::process::id()))
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
}

fn failed(message: String) -> CliError {
    CliError::Failed { message, retryable: false }
}

pub async fn run(dir: Option<PathBuf>, format: Format, threads: usize) -> Result<Exit, CliError> {
    let dir = dir.unwrap_or_else(fresh_dir);
    if dir.join("lake").exists() {
        return Err(CliError::Usage(format!("{} already has a lake; pass a new or empty --dir", dir.display())));
    }
    eprintln!("glueless demo: a lake in {}", dir.display());
    write(&dir.join("schemas/orders.toml"), CONTRACT)?;
    write(&dir.join("glueless.toml"), CONFIG)?;
    let landing = dir.join("lake/landing/orders");
    let day2_text = day2(300);
    write(&landing.join("2026-11-20.csv"), DAY1)?;
    write(&landing.join("2026-11-21.csv"), &day2_text)?;

    let settings = Settings::load(Some(&dir.join("glueless.toml")), std::iter::empty())
        .map_err(|e| failed(format!("the demo's own config is invalid: {e}")))?;
    // The demo writes its own settings: whatever stops it from starting is a failure, not a usage error.
    let p = Pipeline::build(settings, threads, false).await.map_err(|e| failed(e.to_string()))?;
    let shutdown = Shutdown::default();
    let entry_table = p
        .catalog()
        .get("orders")
        .map(|e| e.table.clone())
        .ok_or_else(|| failed("the orders contract did not load".into()))?;
    let mut checks = Checks { list: Vec::new() };

    eprintln!("\n1. two files of orders land; the pipeline runs until quiet");
    let first = service::run(&p, RunOptions { once: true }, &shutdown).await;
    eprintln!("{}", summary_line(&first));
    let by_name = |s: &service::RunSummary, name: &str| s.files.iter().find(|f| f.url.ends_with(name)).cloned();
    let f1 = by_name(&first, "2026-11-20.csv");
    let f2 = by_name(&first, "2026-11-21.csv");
    for (f, name) in [(&f1, "2026-11-20.csv"), (&f2, "2026-11-21.csv")] {
        let ok = f.as_ref().is_some_and(|f| {
            f.state == FileState::Loaded && f.rows_loaded + f.rows_rejected == f.rows_read && f.rows_rejected > 0
        });
        let detail = f
            .as_ref()
            .map(|f| format!("{} read = {} loaded + {} rejected", f.rows_read, f.rows_loaded, f.rows_rejected));
        checks.check(format!("{name} LOADED, {}", detail.unwrap_or_else(|| "not processed".into())), ok);
        let q = f.as_ref().and_then(|f| f.quarantine.clone());
        let quarantined =
            q.as_deref().map(|q| std::fs::read_to_string(q).map(|t| t.lines().count() as u64).unwrap_or(0));
        checks.check(
            format!("its rejected rows, each with line and reason, are in {}", q.as_deref().unwrap_or("(none)")),
            quarantined == f.as_ref().map(|f| f.rows_rejected),
        );
    }
    let loaded1: u64 = first.files.iter().map(|f| f.rows_loaded).sum();
    let rows = p.warehouse.fact_rows(&entry_table).await?;
    checks.check(format!("fact_orders has {} rows, one per valid order", rows.len()), rows.len() as u64 == loaded1);
    let before: HashMap<i64, Value> =
        rows.iter().map(|r| (r[0].as_i64().unwrap_or(-1), Value::Array(r.clone()))).collect();

    eprintln!(
        "\n2. the same event delivered again; day 2 uploaded again unchanged; day 1 re-uploaded with changed rows"
    );
    let d2 = p.lake.list_landing().await?;
    let ev: Option<ObjectEvent> = d2.into_iter().find(|e| e.key.ends_with("2026-11-21.csv"));
    let dup = match &ev {
        Some(ev) => p.accept(ev).await?,
        None => Accepted::Unroutable { reason: "day 2 is missing".into(), outcome: None },
    };
    checks.check("the duplicate event is recognised and changes nothing", dup == Accepted::Duplicate);
    // New modification time, same bytes: a new version of the key with the same content.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&landing.join("2026-11-21.csv"), &day2_text)?;
    let (changed_text, newer, older) = day1_changed(10);
    write(&landing.join("2026-11-20.csv"), &changed_text)?;
    let second = service::run(&p, RunOptions { once: true }, &shutdown).await;
    eprintln!("{}", summary_line(&second));
    let again2 = by_name(&second, "2026-11-21.csv");
    checks.check(
        "day 2's unchanged re-upload is recognised by its content and not loaded again",
        again2.is_some_and(|f| f.state == FileState::Loaded && f.rows_loaded == 0),
    );
    let again1 = by_name(&second, "2026-11-20.csv");
    checks.check("day 1's new version is LOADED", again1.as_ref().is_some_and(|f| f.state == FileState::Loaded));
    let rows = p.warehouse.fact_rows(&entry_table).await?;
    checks.check(format!("fact_orders still has {} rows (same keys)", rows.len()), rows.len() == before.len());
    let after: HashMap<i64, &Vec<Value>> = rows.iter().map(|r| (r[0].as_i64().unwrap_or(-1), r)).collect();
    let quantity = |id: &i64| after.get(id).and_then(|r| r[4].as_i64());
    checks.check(
        format!("the {} rows with a newer order_ts were updated (quantity 20)", newer.len()),
        !newer.is_empty() && newer.iter().all(|id| quantity(id) == Some(20)),
    );
    checks.check(
        format!("order {older}, re-sent with an older order_ts, kept its newer row"),
        after.get(&older).map(|r| Value::Array(r.to_vec())) == before.get(&older).cloned(),
    );
    let ledger = p.warehouse.ledger(None).await?;
    checks.check(format!("the ledger has {} loads: day 1, day 2, day 1 again", ledger.len()), ledger.len() == 3);

    let ok = checks.list.iter().all(|(_, ok)| *ok);
    let db = p.settings.path("warehouse.db");
    eprintln!(
        "\nquery it:  sqlite3 {} 'SELECT status, count(*), sum(quantity) FROM fact_orders GROUP BY status'\n           sqlite3 {} 'SELECT * FROM glueless_loads'\nstate:     glueless status --config {}\nagain:     drop CSV files into {} and run: glueless run --config {}\n\n{}",
        db.display(),
        db.display(),
        dir.join("glueless.toml").display(),
        landing.display(),
        dir.join("glueless.toml").display(),
        if ok { "demo: every check passed" } else { "demo: SOME CHECKS FAILED (see FAIL above)" }
    );
    if format == Format::Json {
        let v = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "status": if ok { "ok" } else { "failed" },
            "dir": dir,
            "warehouse": db,
            "fact_rows": rows.len(),
            "checks": checks.list.iter().map(|(w, ok)| json!({"check": w, "ok": ok})).collect::<Vec<_>>(),
            "files": first.files.iter().chain(second.files.iter()).collect::<Vec<_>>(),
        });
        println!("{v}");
    }
    Ok(if ok { Exit::Clean } else { Exit::Failed })
}
