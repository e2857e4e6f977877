//! Bounded resources on any input (issue 11, item 5): `glueless validate` and `transform` on
//! files built to exhaust memory or time. Each run must end with a clear exit code and rule,
//! counts that add up, and a peak RSS (the child's own `VmHWM`) under the budget.
//!
//! The big inputs are made on the fly and stay small on disk: gzip members concatenated (a
//! 1 MiB member of one repeated line, written N times, is N MiB of text from N KiB), or a
//! sparse file.

use crate::support::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The budget of one file job (the keys of these inputs add a few MB at most).
const BUDGET_BYTES: u64 = 256 << 20;

struct Measured {
    run: Run,
    /// The child's peak resident set, in bytes.
    peak: u64,
    took: Duration,
}

/// Runs `glueless ARGS` in `dir` and polls its own peak RSS (`VmHWM` of /proc/PID/status) until
/// it exits. Not `getrusage(RUSAGE_CHILDREN)`: tests run in parallel threads and would mix their
/// children; not `wait4`'s `ru_maxrss` either: Linux carries the spawning test process's own
/// high-water mark across `exec` into it.
fn glueless_measured(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Measured {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_glueless"))
        .args(args)
        .current_dir(dir)
        .env("GLUELESS_THREADS", "2")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let mut polls = 0u64;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| vm_hwm(&s)) {
            peak = peak.max(hwm);
            polls += 1;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(polls > 0, "the child's memory was never read");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    Measured { run, peak, took: started.elapsed() }
}

/// `VmHWM` (peak resident set) of a /proc/PID/status, in bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A contract over `fields` (TOML inline tables) with everything else default and every row
/// allowed to be rejected.
fn contract(dir: &Path, extra: &str, fields: &str) -> String {
    let p = dir.join("t.toml");
    let body = format!(
        "name = \"t\"\nmatch = \"landing/t/*\"\ntable = \"t\"\n{extra}\n[load]\nmax_rejected_ratio = 1.0\n[schema]\nfields = [{fields}]\n"
    );
    std::fs::write(&p, body).expect("write contract");
    path_str(&p).to_string()
}

/// Makes `id` the contract's primary key.
fn with_primary_key(contract: &str) {
    let text = std::fs::read_to_string(contract).unwrap().replace("[schema]\n", "[schema]\nprimaryKey = [\"id\"]\n");
    std::fs::write(contract, text).unwrap();
}

/// One gzip member of `text`.
fn gz(text: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(text).expect("compress");
    e.finish().expect("compress")
}

/// Writes `head`, then `member` `times` times, as one `.gz` of concatenated members.
fn write_gz(path: &Path, head: &[u8], member: &[u8], times: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    f.write_all(&gz(head)).expect("write");
    let m = gz(member);
    for _ in 0..times {
        f.write_all(&m).expect("write");
    }
    f.flush().expect("flush");
}

/// The report, after checking the exit code, the counts and the peak memory.
fn checked(m: &Measured, code: i32, what: &str) -> serde_json::Value {
    eprintln!("{what}: exit {}, peak RSS {} MiB, {:.1?}", m.run.code, m.peak >> 20, m.took);
    assert_eq!(m.run.code, code, "{what}: exit code; stderr: {}", m.run.stderr);
    let r = m.run.json();
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{what}: {k} in {r}"));
    assert_eq!(n("rows_read"), n("rows_valid") + n("rows_rejected"), "{what}: counts add up: {r}");
    assert!(m.peak < BUDGET_BYTES, "{what}: peak RSS {} MiB, over the {} MiB budget", m.peak >> 20, BUDGET_BYTES >> 20);
    r
}

fn validate(dir: &Path, contract: &str, file: &str, env: &[(&str, &str)]) -> Measured {
    glueless_measured(dir, &["validate", "--contract", contract, file, "--format", "json", "--quiet"], env)
}

#[test]
fn a_row_of_millions_of_extra_cells_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "id", type = "integer" }, { name = "s", type = "string" }"#);
    // 20 million delimiters in one row (20 KB compressed): one error object per cell was
    // gigabytes, and so were the field spans.
    let f = dir.path().join("wide.csv.gz");
    write_gz(&f, b"id,s\n1,a,b", &[b','; 1 << 20], 20);
    let mut tail = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    tail.write_all(&gz(b"\n2,b\n")).unwrap();
    let m = validate(dir.path(), &c, path_str(&f), &[]);
    let r = checked(&m, 3, "extra cells");
    assert_eq!((r["rows_read"].as_u64(), r["rows_valid"].as_u64()), (Some(2), Some(1)), "{r}");
    let e = &r["errors"][0];
    assert_eq!((e["rule"].as_str(), e["value"].as_str()), (Some("extra-cell"), Some("b")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("(20971521 cells) have no column"), "{e}");
    assert_eq!(r["errors"].as_array().unwrap().len(), 1, "one error for the row: {r}");
}

#[test]
fn a_sparse_padded_file_does_not_size_the_key_index() {
    // A dense first MiB of keys, then 20 GB of nothing (a sparse file: no disk): the key index
    // was sized from the first MiB's density, for a billion keys.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "id", type = "integer" }"#);
    let f = dir.path().join("padded.csv");
    let mut body = String::from("id\n");
    let mut i = 0u64;
    while body.len() < 1 << 20 {
        body.push_str(&format!("{i}\n"));
        i += 1;
    }
    std::fs::write(&f, &body).unwrap();
    std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(20 << 30).unwrap();
    with_primary_key(&c);
    let m = validate(dir.path(), &c, path_str(&f), &[]);
    let r = checked(&m, 4, "padded file");
    assert_eq!(r["file_problem"]["rule"], "malformed-file", "{r}");
    assert_eq!(r["rows_valid"].as_u64(), Some(i), "{r}");
}

/// The inverse of the key index's unseeded mixing (splitmix64's finalizer): keys that all fall
/// into the first slots of any table when nothing secret goes into the mixing.
fn colliding_key(j: u64) -> i64 {
    fn inverse(a: u64) -> u64 {
        let mut x = a;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x
    }
    fn unshift(z: u64, s: u32) -> u64 {
        let mut x = z;
        for _ in 0..64 / s + 1 {
            x = z ^ (x >> s);
        }
        x
    }
    let mut z = unshift(j, 31);
    z = unshift(z.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
    z = unshift(z.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30);
    z.wrapping_sub(0x9E37_79B9_7F4A_7C15) as i64
}

#[test]
fn chosen_primary_keys_do_not_make_validation_quadratic() {
    // 150k such keys took 11.8 s in a release build (0.04 s for ordinary keys); this debug
    // build takes about a second with the seeded index and minutes without.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "id", type = "integer" }"#);
    with_primary_key(&c);
    let mut body = String::from("id\n");
    for j in 1..=150_000u64 {
        body.push_str(&format!("{}\n", colliding_key(j)));
    }
    let f = dir.path().join("keys.csv");
    std::fs::write(&f, body).unwrap();
    let m = validate(dir.path(), &c, path_str(&f), &[]);
    let r = checked(&m, 0, "chosen keys");
    assert_eq!(r["rows_valid"].as_u64(), Some(150_000), "{r}");
    assert!(m.took < Duration::from_secs(30), "chosen keys took {:?}", m.took);
}

#[test]
fn skipped_lines_obey_the_record_limit() {
    // `skip_lines = 1` over a first line of 400 MiB without a line break (400 KB stored): the
    // whole line was held in memory while looking for its end.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "[dialect]\nskip_lines = 1", r#"{ name = "s", type = "string" }"#);
    let f = dir.path().join("title.csv.gz");
    write_gz(&f, b"title ", &vec![b'x'; 1 << 20], 400);
    let m = validate(dir.path(), &c, path_str(&f), &[]);
    let r = checked(&m, 4, "long skipped line");
    assert_eq!(r["file_problem"]["rule"], "malformed-file", "{r}");
    assert!(r["file_problem"]["message"].as_str().unwrap().contains("dialect.skip_lines"), "{r}");
}

#[test]
fn a_gz_of_newlines_is_rejected_once_its_quarantine_passes_the_bound() {
    // 5 MB of blank lines from about 5 KB: every blank line was a 130-byte quarantine entry
    // (673 MB). Default limits: at most 8 x the bytes read + 64 MiB of quarantine.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "s", type = "string" }"#);
    let f = dir.path().join("newlines.csv.gz");
    write_gz(&f, b"s\n", &vec![b'\n'; 1 << 20], 5);
    assert!(std::fs::metadata(&f).unwrap().len() < 30_000);
    let m = validate(dir.path(), &c, path_str(&f), &[]);
    let r = checked(&m, 4, "newlines");
    assert_eq!(r["file_problem"]["rule"], "quarantine-size", "{r}");
    let rejected = r["rows_rejected"].as_u64().unwrap();
    assert!(rejected > 100_000 && rejected < 5 << 20, "stopped part way: {r}");
}

#[test]
fn the_quarantine_written_stays_within_its_bound_and_no_parquet_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "s", type = "string" }"#);
    let f = dir.path().join("newlines.csv.gz");
    write_gz(&f, b"s\nkept\n", &vec![b'\n'; 1 << 20], 2);
    let args = [
        "transform",
        "--contract",
        &c,
        "--input",
        path_str(&f),
        "--output",
        "out/t.parquet",
        "--format",
        "json",
        "--quiet",
    ];
    let m = glueless_measured(dir.path(), &args, &[("GLUELESS__LIMITS__QUARANTINE_FLOOR_MB", "1")]);
    let r = checked(&m, 4, "quarantine on disk");
    assert_eq!(r["file_problem"]["rule"], "quarantine-size", "{r}");
    assert!(!dir.path().join("out/t.parquet").exists(), "the Parquet of a rejected file is removed");
    let q = dir.path().join("out/t.rejects.jsonl");
    let bytes = std::fs::metadata(&q).unwrap().len();
    // 8 x (at most the 2 MiB read) + 1 MiB, plus the last slice of rows that passed it.
    assert!(bytes < 18 << 20, "quarantine of {bytes} bytes");
    assert_eq!(jsonl(&q).len() as u64, r["rows_rejected"].as_u64().unwrap(), "every rejected row is in it");
}

#[test]
fn a_decompression_bomb_is_rejected_at_its_bound() {
    // Valid rows that inflate about 1000 times; with a 1 MiB floor the bound is 200 x the
    // stored size + 1 MiB, far below the 100 MiB inside.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "s", type = "string" }"#);
    let f = dir.path().join("bomb.csv.gz");
    let mut row = vec![b'a'; 63];
    row.push(b'\n');
    write_gz(&f, b"s\n", &row.repeat(1 << 14), 100);
    let stored = std::fs::metadata(&f).unwrap().len();
    let m = validate(dir.path(), &c, path_str(&f), &[("GLUELESS__LIMITS__DECOMPRESSED_FLOOR_MB", "1")]);
    let r = checked(&m, 4, "bomb");
    assert_eq!(r["file_problem"]["rule"], "decompressed-size", "{r}");
    assert!(r["file_problem"]["message"].as_str().unwrap().contains("decompressed_ratio"), "{r}");
    // Stopped at the bound (plus the chunk that passed it), not at the end.
    let rows = r["rows_read"].as_u64().unwrap();
    assert!(rows * 64 <= 200 * stored + (3 << 20), "{rows} rows read from {stored} bytes");
}

#[test]
fn long_text_is_handed_on_in_batches_bounded_by_bytes() {
    // 300 rows of 1 MiB of text (300 KB stored): 64 Ki rows a batch held all 300 MiB at once,
    // and past 2 GiB the 32-bit string offsets overflowed (a panic, exit 101). A batch now goes
    // once it holds [limits] batch_mb (16 MiB) of text, so memory stays flat.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "s", type = "string" }"#);
    let f = dir.path().join("long.csv.gz");
    let mut row = vec![b'x'; 1 << 20];
    row.push(b'\n');
    write_gz(&f, b"s\n", &row, 300);
    let m = validate(dir.path(), &c, path_str(&f), &[]);
    let r = checked(&m, 0, "long text");
    assert_eq!(r["rows_valid"].as_u64(), Some(300), "{r}");
}

#[test]
fn the_transform_runs_under_a_memory_pool() {
    // An aggregate over the whole file cannot spill: past the pool (memory_mb / 2 = 8 MiB) the
    // file fails with a message that says what to do, instead of taking the machine's memory.
    let dir = tempfile::tempdir().unwrap();
    let c = contract(dir.path(), "", r#"{ name = "s", type = "string" }"#);
    let text = std::fs::read_to_string(&c)
        .unwrap()
        .replace("[load]\n", "[load]\ntransform = \"SELECT array_agg(s) AS everything FROM input\"\n");
    std::fs::write(&c, text).unwrap();
    let f = dir.path().join("many.csv.gz");
    let mut member = Vec::new();
    for i in 0..20_000 {
        member.extend_from_slice(format!("row number {i} with some text to hold on to\n").as_bytes());
    }
    write_gz(&f, b"s\n", &member, 40);
    let args =
        ["transform", "--contract", &c, "--input", path_str(&f), "--output", "out/t.parquet", "--format", "json"];
    let m = glueless_measured(dir.path(), &args, &[("GLUELESS__LIMITS__MEMORY_MB", "16")]);
    assert_eq!(m.run.code, 1, "stdout: {}\nstderr: {}", m.run.stdout, m.run.stderr);
    assert!(m.run.stderr.contains("[limits] memory_mb"), "{}", m.run.stderr);
    assert!(m.peak < BUDGET_BYTES, "peak RSS {} MiB", m.peak >> 20);
}

#[test]
fn the_pipeline_keeps_to_the_limits_of_glueless_toml() {
    // `[limits]` reaches the file job of `run`: a file of blank lines is REJECTED at the
    // quarantine bound, with the reason; the good file of the same batch is LOADED.
    use crate::pipeline::{HEADER, Lake, count};
    let lake = Lake::new("[limits]\nquarantine_floor_mb = 1\n");
    lake.drop_file("sales/blank.csv", &format!("{HEADER}{}", "\n".repeat(200_000)));
    lake.drop_file("sales/good.csv", &format!("{HEADER}1,2026-01-01T00:00:00Z,1,1.00\n"));
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert!(run.code != 101 && run.code != -1, "no crash: {}", run.stderr);
    let st = lake.status();
    assert_eq!((count(&st, "LOADED"), count(&st, "REJECTED")), (1, 1), "{st}");
    let blank = st["attention"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"]["url"].as_str().unwrap().ends_with("blank.csv"))
        .unwrap_or_else(|| panic!("blank.csv needs attention: {st}"));
    assert!(blank["last_error"].as_str().unwrap().contains("[limits] quarantine_ratio"), "{blank}");
    assert_eq!(lake.facts(), vec!["1|1|1.00"]);
}
