//! A hostile landing folder: entries that are not regular files, names no store path holds, a
//! clock in the future, a file replaced while it is processed, a lake that cannot be listed.
//! Each ends with a clear state and exit code, and never stops the good file next to it.

use super::names::s3_env;
use crate::pipeline::{HEADER, Lake, count, walk};
use crate::support::{Run, aws_endpoint, emulator_bucket, make_bucket};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use std::time::{Duration, Instant};

const GOOD: &str = "1,2026-11-20T10:00:00Z,1,1.00\n";

/// `glueless run --once --format json` in `lake`, killed (and the test failed) after 60 s.
fn run_bounded(lake: &Lake, env: &[(&str, &str)]) -> Run {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_glueless"))
        .args(["run", "--once", "--format", "json", "--config", &lake.config()])
        .current_dir(&lake.root)
        .env("GLUELESS_THREADS", "2")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("run --once did not end in 60 s: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn file<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let files = report["files"].as_array().unwrap();
    files
        .iter()
        .rev()
        .find(|f| f["url"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

fn mkfifo(p: &std::path::Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

#[test]
fn only_regular_files_inside_the_lake_are_read() {
    let lake = Lake::new("");
    lake.drop_file("sales/good.csv", &format!("{HEADER}{GOOD}"));
    let outside = lake.root.join("outside.csv");
    let secret = "4242,2026-11-20T10:00:00Z,1,9.99 SECRET-OUTSIDE-THE-LAKE";
    std::fs::write(&outside, format!("{HEADER}{secret}\n")).unwrap();
    let landing = lake.landing("sales");
    std::os::unix::fs::symlink("/etc/passwd", landing.join("passwd.csv")).unwrap();
    std::os::unix::fs::symlink(&outside, landing.join("outside.csv")).unwrap();
    mkfifo(&landing.join("fifo.csv"));

    let r = run_bounded(&lake, &[]);
    assert_eq!(r.code, 3, "files were rejected: {}", r.stderr);
    let report = r.json();
    assert_eq!(file(&report, "good.csv")["state"], "LOADED", "{report}");
    for (name, why) in
        [("passwd.csv", "symbolic link"), ("outside.csv", "symbolic link"), ("fifo.csv", "not a regular file")]
    {
        let f = file(&report, name);
        assert_eq!(f["state"], "REJECTED", "{f}");
        assert!(f["reason"].as_str().unwrap().contains(why), "{f}");
        assert_eq!(f["rows_read"], 0, "nothing of {name} was read: {f}");
    }
    assert_eq!(lake.facts(), vec!["1|1|1.00"]);
    // Nothing of the targets anywhere: output, log (alerts go to the log here), staging, quarantine.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let passwd_line = passwd.lines().next().unwrap();
    let mut outputs = vec![r.stdout.clone(), r.stderr.clone()];
    for p in walk(&lake.root.join("lake/staging")).into_iter().chain(walk(&lake.root.join("lake/rejected"))) {
        outputs.push(String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned());
    }
    for o in &outputs {
        assert!(!o.contains("SECRET-OUTSIDE") && !o.contains(passwd_line), "a target leaked: {o}");
    }
}

#[test]
fn entries_that_cannot_be_named_or_read_do_not_stop_the_others() {
    use std::os::unix::ffi::OsStrExt;
    let lake = Lake::new("");
    lake.drop_file("sales/good.csv", &format!("{HEADER}{GOOD}"));
    let landing = lake.landing("sales");
    std::fs::write(landing.join("new\nline.csv"), format!("{HEADER}{GOOD}")).unwrap();
    std::fs::write(landing.join("tab\there.csv"), format!("{HEADER}{GOOD}")).unwrap();
    std::fs::write(landing.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9.csv")), format!("{HEADER}{GOOD}")).unwrap();
    std::os::unix::fs::symlink("loop.csv", landing.join("loop.csv")).unwrap();

    let r = run_bounded(&lake, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let report = r.json();
    assert_eq!(file(&report, "good.csv")["state"], "LOADED", "{report}");
    for name in ["new\nline.csv", "tab\there.csv"] {
        let f = file(&report, name);
        assert_eq!(f["state"], "REJECTED", "{f}");
        assert!(f["reason"].as_str().unwrap().contains("control character"), "{f}");
    }
    assert_eq!(file(&report, "loop.csv")["state"], "REJECTED");
    assert!(file(&report, "loop.csv")["reason"].as_str().unwrap().contains("symbolic link"));
    // The name that is not UTF-8 cannot be recorded: one warning, however many passes ran.
    assert!(report["passes"].as_u64().unwrap() > 1, "{report}");
    assert_eq!(r.stderr.matches("not UTF-8").count(), 1, "{}", r.stderr);
    assert_eq!(report["unreadable"], 1, "{report}");
    assert_eq!(lake.facts(), vec!["1|1|1.00"]);
}

#[test]
fn a_file_from_the_future_is_taken_once_unchanged_and_run_once_ends() {
    let lake = Lake::new("");
    let p = lake.drop_file("sales/future.csv", &format!("{HEADER}{GOOD}"));
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(86_400 * 365)).unwrap();
    drop(f);
    let started = Instant::now();
    let r = run_bounded(&lake, &[("GLUELESS__RUN__SETTLE_MS", "300")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(file(&r.json(), "future.csv")["state"], "LOADED");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for a second look");
}

/// A producer that appends to a file in the landing folder, a row every 50 ms for 2 s, while
/// `glueless run` watches (woken by each write): the file is never taken before it is finished.
/// Only the finished version is ever registered, and every row is loaded. `settle_ms` is 1000
/// here, twenty writes' worth, so a busy machine that delays the producer does not make the
/// file look finished; everything else is the default.
#[test]
fn a_file_still_being_written_is_taken_only_once_finished() {
    use std::io::Write;
    let lake = Lake::new("");
    std::fs::write(lake.config(), "[lake]\nurl = \"lake\"\n[run]\nsettle_ms = 1000\n").unwrap();
    let service = lake.start_service(&[]);
    let p = lake.landing("sales/growing.csv");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(HEADER.as_bytes()).unwrap();
    for id in 0..40 {
        f.write_all(format!("{id},2026-11-20T10:00:00Z,1,1.00\n").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(f);
    service.wait_loaded(1);
    let (code, report, stderr) = service.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let status = lake.status();
    let recorded: u64 = status["counts"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(recorded, 1, "only the finished file was registered: {status}\n{report}");
    assert_eq!(lake.facts().len(), 40, "every row: {:?}", lake.facts());
}

#[test]
fn run_exits_1_when_the_lake_cannot_be_listed() {
    let lake = Lake::new("");
    let endpoint = aws_endpoint();
    let env = s3_env("s3://glueless-no-such-bucket-for-this-test", &endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = run_bounded(&lake, &env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot list"), "{}", r.stderr);
    assert!(r.json()["list_errors"].as_u64() >= Some(1));
}

fn rows(ids: std::ops::Range<u64>) -> String {
    let mut s = HEADER.to_string();
    for id in ids {
        s.push_str(&format!("{id},2026-11-20T10:00:00Z,1,1.00\n"));
    }
    s
}

/// A file replaced while it is processed: the worker dies mid-read (the `during-transform`
/// fault point), the producer uploads a new version, the next run reads the registered version
/// pinned to its ETag: it is DEAD (changed), never loaded as that record; the new version is
/// LOADED as a file of its own. `put` replaces the file; `env` selects the lake.
fn replaced_mid_processing(lake: &Lake, env: &[(&str, &str)], put: &dyn Fn(&str)) {
    put(&rows(1..4));
    let mut killed_env = env.to_vec();
    killed_env.push(("GLUELESS_FAULT", "during-transform"));
    let killed = lake.glueless(&["run", "--once"], &killed_env);
    assert_eq!(killed.code, -1, "killed mid-read: {}", killed.stderr);
    put(&rows(10..12));
    let r = run_bounded(lake, env);
    assert_eq!(r.code, 1, "a file ended DEAD: {}", r.stderr);
    let report = r.json();
    let files = report["files"].as_array().unwrap();
    let dead: Vec<_> = files.iter().filter(|f| f["state"] == "DEAD").collect();
    let loaded: Vec<_> = files.iter().filter(|f| f["state"] == "LOADED").collect();
    assert_eq!((dead.len(), loaded.len()), (1, 1), "{report}");
    assert_ne!(dead[0]["version"], loaded[0]["version"]);
    assert!(dead[0]["reason"].as_str().unwrap().contains("no longer the version registered"), "{}", dead[0]);
    assert_eq!(lake.facts(), vec!["10|1|1.00", "11|1|1.00"], "only the new version's rows");
}

#[test]
fn a_local_file_replaced_mid_processing_is_not_loaded_under_its_old_record() {
    let lake = Lake::new("");
    replaced_mid_processing(&lake, &[], &|text| {
        lake.drop_file("sales/replaced.csv", text);
    });
}

#[test]
fn an_s3_object_replaced_mid_processing_is_not_loaded_under_its_old_etag() {
    let bucket = make_bucket("replaced");
    let s3 = emulator_bucket(&aws_endpoint(), &bucket).expect("s3 client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let lake = Lake::new("");
    let endpoint = aws_endpoint();
    let env = s3_env(&format!("s3://{bucket}"), &endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    replaced_mid_processing(&lake, &env, &|text| {
        let key = ObjPath::parse("landing/sales/replaced.csv").unwrap();
        rt.block_on(s3.put(&key, text.as_bytes().to_vec().into())).unwrap();
    });
    let st = lake.status();
    assert_eq!((count(&st, "DEAD"), count(&st, "LOADED")), (1, 1), "{st}");
}
