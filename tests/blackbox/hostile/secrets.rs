//! Secrets, injection and oversized messages (issue 11, items 8, 9, 10 and 5's message caps):
//! every output of a run is searched for the secret; alerts reach a local webhook receiver and
//! the log inert; names no warehouse takes are contract errors; a header of a million columns
//! yields messages of a few KB everywhere.

use crate::pipeline::{HEADER, Lake};
use crate::support::{HttpReceiver, Run, closed_port, glueless};

const SECRET: &str = "Sup3rS3cretPa55";

/// A Slack-compatible webhook on a loopback port whose URL holds a secret, as Slack's do.
struct Receiver(HttpReceiver);

impl Receiver {
    fn start() -> Receiver {
        Receiver(HttpReceiver::start())
    }

    /// The webhook URL, with a secret in its path as Slack's have.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/services/T0/B0/{SECRET}", self.0.port)
    }

    fn bodies(&self) -> Vec<String> {
        self.0.bodies()
    }
}

/// A loopback port where nothing listens.
/// Everything a user or an operator can see after a run: the run's stdout and stderr, `status`
/// as text and JSON, and the raw bytes of the state store and the warehouse files.
fn everything_after(lake: &Lake, run: &Run) -> String {
    let mut all = format!("{}\n{}\n", run.stdout, run.stderr);
    for args in [&["status", "--limit", "100"][..], &["status", "--format", "json", "--limit", "100"][..]] {
        let r = lake.glueless(args, &[]);
        all.push_str(&format!("{}\n{}\n", r.stdout, r.stderr));
    }
    for f in ["glueless-state.db", "glueless-state.db-wal", "warehouse.db", "warehouse.db-wal"] {
        if let Ok(bytes) = std::fs::read(lake.root.join(f)) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

fn assert_no_secret(what: &str, text: &str) {
    if let Some(i) = text.find(SECRET) {
        let from = text[..i].char_indices().rev().nth(200).map_or(0, |(j, _)| j);
        panic!("{what}: the secret shows: …{}…", &text[from..(i + SECRET.len()).min(text.len())]);
    }
}

/// Issue 11: a mistyped scheme printed the URL with its password; an encoded `password`
/// parameter was used but not redacted.
#[test]
fn no_secret_in_any_output_of_a_misconfigured_warehouse() {
    let port = closed_port();
    let arn = format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{SECRET}");
    // A configuration mistake exits 2; a server that does not answer exits 1 (it can be retried).
    for (case, url, shown, code) in [
        (
            "bad scheme",
            format!("postgress://me:{SECRET}@127.0.0.1:{port}/x?p%61ssword={SECRET}"),
            "postgress://me@127.0.0.1",
            2,
        ),
        (
            "unreachable host",
            format!("postgres://me:{SECRET}@127.0.0.1:{port}/x?connect_timeout=2&p%61ssword={SECRET}"),
            "postgres://me@127.0.0.1",
            1,
        ),
        (
            "encoded password parameter",
            format!("postgres://me@127.0.0.1:{port}/x?p%61ssword={SECRET}&sslmode=disable"),
            "p%61ssword=…",
            1,
        ),
        (
            "secret ARN",
            format!("redshift-data://cluster/c1/dev?secret_arn={arn}&bogus=1"),
            "redshift-data://cluster/c1/dev",
            2,
        ),
    ] {
        let lake = Lake::new(&format!(
            "[warehouse]\nurl = \"{url}\"\n[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/services/T0/B0/{SECRET}\"\n"
        ));
        lake.drop_file("sales/a.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,10.50\n"));
        for args in [&["run", "--once"][..], &["run", "--once", "--format", "json"][..]] {
            let run = lake.glueless(args, &[]);
            assert_eq!(run.code, code, "{case}: the warehouse cannot be opened: {}", run.stderr);
            assert!(run.stderr.contains(shown), "{case}: the message names the warehouse: {}", run.stderr);
            assert_no_secret(case, &everything_after(&lake, &run));
        }
    }
    // A config file the TOML parser cannot read is quoted back in the error: redacted too.
    let lake = Lake::new(&format!("[warehouse]\nurl = \"postgres://me:{SECRET}@db/x?p%61ssword={SECRET}\n"));
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("postgres://me@db/x?p%61ssword=…"), "{}", run.stderr);
    assert_no_secret("unreadable config", &format!("{}{}", run.stdout, run.stderr));
}

/// A webhook that fails is named in the log without its token.
#[test]
fn a_failing_webhook_is_reported_without_its_token() {
    let lake =
        Lake::new(&format!("[alerts]\nwebhook_url = \"http://127.0.0.1:{}/services/T0/B0/{SECRET}\"\n", closed_port()));
    lake.drop_file("sales/bad.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,x,1\n2,2026-11-20T10:00:00Z,y,1\n"));
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert_eq!(run.json()["counts"]["REJECTED"], 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot deliver the alert through webhook http://127.0.0.1:"), "{}", run.stderr);
    assert_no_secret("failing webhook", &everything_after(&lake, &run));
}

/// A warehouse that refuses a load: its error is stored, reported and alerted, and the
/// password given in the URL (user-info and an encoded parameter) shows nowhere.
#[cfg(feature = "postgres")]
#[test]
fn a_warehouse_error_is_stored_and_alerted_without_the_password() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(crate::support::postgres_database("secrets_refused"));
    // A view where the fact table should be: every load into it fails.
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        c.batch_execute("CREATE VIEW fact_sales AS SELECT 1 AS id").await.unwrap();
        drop(c);
        let _ = task.await;
    });
    // The test server trusts loopback connections: the password is sent where asked, ignored.
    let (scheme_user, rest) = db.split_once('@').unwrap();
    let url = format!("{scheme_user}:{SECRET}@{rest}?p%61ssword={SECRET}");
    let hook = Receiver::start();
    let lake = Lake::new(&format!(
        "max_attempts = 1\n[warehouse]\nurl = \"{url}\"\n[alerts]\nwebhook_url = \"{}\"\n",
        hook.url()
    ));
    lake.drop_file("sales/a.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,10.50\n"));
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    let report = run.json();
    let file = &report["files"][0];
    assert!(matches!(file["state"].as_str(), Some("DEAD" | "REJECTED")), "{report}");
    assert!(file["reason"].as_str().unwrap().contains("fact_sales"), "{report}");
    assert!(run.stderr.contains("p%61ssword=…"), "the run names its warehouse: {}", run.stderr);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "one alert: {bodies:?}");
    let mut all = everything_after(&lake, &run);
    all.push_str(&bodies.join("\n"));
    assert_no_secret("refused load", &all);
}

/// Issue 11: keys and cells went into Slack unescaped, the replay hint could be broken out of
/// with a quote in the key, and escape bytes reached the terminal.
#[test]
fn hostile_keys_and_cells_reach_slack_and_the_log_inert() {
    let key = "x<!channel>&'; touch pwned '.csv";
    let rows = format!(
        "{HEADER}1,2026-11-20T10:00:00Z,2,10.50\n2,2026-11-20T10:00:00Z,\u{1b}[31m,1\n3,2026-11-20T10:00:00Z,<http://evil|click>,1\n"
    );
    let hook = Receiver::start();
    let lake = Lake::new(&format!("[alerts]\nwebhook_url = \"{}\"\n", hook.url()));
    // Both files are REJECTED for their rows: the hostile key is read like any other name.
    lake.drop_file(&format!("sales/{key}"), &rows);
    lake.drop_file("sales/cells.csv", &rows);
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "two alerts: {bodies:?}\n{}", run.stderr);
    let mut hinted = false;
    for body in &bodies {
        let alert: serde_json::Value = serde_json::from_str(body).unwrap();
        let text = alert["text"].as_str().unwrap();
        assert!(!text.contains(['<', '>', '\u{1b}']), "no mention, link or escape byte: {text}");
        // Cell values are personal data until the config says otherwise.
        assert!(!body.contains("evil") && !body.contains("[31m"), "{body}");
        assert_eq!(alert["glueless"]["state"], "REJECTED", "{body}");
        let object = alert["glueless"]["object"].as_str().unwrap();
        if !object.contains("channel") {
            assert!(text.contains("include_values = true"), "{text}");
            continue;
        }
        assert!(text.contains("x&lt;!channel&gt;&amp;'"), "{text}");
        // Pasting the hint runs `glueless replay` on that file and nothing else.
        let hint = text.lines().find_map(|l| l.strip_prefix("to retry: ")).expect("a replay hint").trim_matches('`');
        let hint = hint.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
        let script = format!("glueless() {{ printf '%s\\n' \"$@\"; }}\n{hint}");
        let out = std::process::Command::new("sh").arg("-c").arg(&script).current_dir(&lake.root).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("replay\n--url\n{object}\n"), "{hint}");
        assert!(!lake.root.join("pwned").exists(), "the key ran a command: {hint}");
        // And the hint works: the file goes back to RECEIVED.
        let r = lake.glueless(&["replay", "--url", object, "--format", "json"], &[]);
        assert_eq!(r.json()["replayed"].as_array().unwrap().len(), 1, "{}", r.stderr);
        hinted = true;
    }
    assert!(hinted, "an alert for the hostile key: {bodies:?}");

    // With include_values the values come back, still inert; here alerts go to the log.
    let lake = Lake::new("[alerts]\ninclude_values = true\n");
    lake.drop_file("sales/a.csv", &rows);
    let run = lake.glueless(&["run", "--once"], &[]);
    assert!(run.stderr.contains("ALERT"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}') && run.stderr.contains("\\u{1b}[31m"), "{}", run.stderr);
    assert!(run.stderr.contains("<http://evil|click>"), "the log is not Slack: {}", run.stderr);
    // The human summary of `validate` too.
    let file = lake.root.join("cells.csv");
    std::fs::write(&file, &rows).unwrap();
    let v = glueless(&lake.root, &["validate", "--contract", "schemas/sales.toml", file.to_str().unwrap()]);
    assert_eq!(v.code, 4, "{}", v.stderr);
    assert!(!v.stderr.contains('\u{1b}') && v.stderr.contains("\\u{1b}[31m"), "{}", v.stderr);
}

/// The per-file line and `status` show a key's escape bytes escaped.
#[test]
fn a_key_with_escape_bytes_is_shown_inert() {
    let lake = Lake::new("");
    lake.drop_file("sales/\u{1b}[2Jwipe\u{7}.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,x,1\n"));
    let run = lake.glueless(&["run", "--once"], &[]);
    let status = lake.glueless(&["status"], &[]);
    assert!(run.stderr.contains("\\u{1b}[2Jwipe\\u{7}.csv"), "the file is named, escaped: {}", run.stderr);
    for out in [&run.stderr, &status.stderr] {
        assert!(!out.contains(['\u{1b}', '\u{7}']), "{out}");
    }
}

/// Issue 11: a header of a million columns made an 11 MB message in the report, the state
/// store and the webhook.
#[test]
fn a_million_column_header_makes_small_messages_everywhere() {
    let hook = Receiver::start();
    let lake = Lake::new(&format!("[alerts]\nwebhook_url = \"{}\"\n", hook.url()));
    let mut header = HEADER.trim_end().to_string();
    for i in 1..=1_000_000 {
        header.push_str(&format!(",c{i}"));
    }
    let file = lake.drop_file("sales/wide.csv", &format!("{header}\n"));
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    let report = run.json();
    assert_eq!(report["counts"]["REJECTED"], 1, "{}", &run.stderr[..run.stderr.len().min(2000)]);
    let small = |what: &str, s: &str, max: usize| {
        assert!(s.len() < max, "{what}: {} bytes: {}…", s.len(), &s[..300.min(s.len())]);
        assert!(s.contains("and 999") && s.contains("more"), "{what} says how many more: {s}");
    };
    small("the report's reason", report["files"][0]["reason"].as_str().unwrap(), 4096);
    small("the run's stdout", &run.stdout, 8192);
    small("the run's stderr", &run.stderr, 16 * 1024);
    let st = lake.status();
    small("the stored last_error", st["attention"][0]["last_error"].as_str().unwrap(), 4096);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    small("the alert", &bodies[0], 16 * 1024);
    let v = glueless(
        &lake.root,
        &["validate", "--contract", "schemas/sales.toml", "--format", "json", file.to_str().unwrap()],
    );
    assert_eq!(v.code, 4, "{}", v.stderr);
    small("the validate report", v.json()["file_problem"]["message"].as_str().unwrap(), 4096);
    small("the validate stdout", &v.stdout, 8192);
}

/// A cell of a megabyte is quoted by its start in the report and in an alert that shows values.
#[test]
fn a_huge_cell_is_quoted_short() {
    let hook = Receiver::start();
    let lake = Lake::new(&format!("[alerts]\ninclude_values = true\nwebhook_url = \"{}\"\n", hook.url()));
    let rows = format!("{HEADER}1,2026-11-20T10:00:00Z,{},1\n", "9x".repeat(500_000));
    let file = lake.drop_file("sales/huge.csv", &rows);
    let v = glueless(
        &lake.root,
        &["validate", "--contract", "schemas/sales.toml", "--format", "json", file.to_str().unwrap()],
    );
    assert_eq!(v.code, 4, "{}", &v.stderr[..v.stderr.len().min(2000)]);
    let report = v.json();
    let e = &report["errors"][0];
    for (what, text) in [("value", &e["value"]), ("message", &e["message"])] {
        let text = text.as_str().unwrap();
        assert!(text.len() < 4096 && text.ends_with("more bytes"), "{what}: {} bytes", text.len());
    }
    assert!(v.stdout.len() < 16 * 1024 && v.stderr.len() < 16 * 1024, "{} {}", v.stdout.len(), v.stderr.len());
    let run = lake.glueless(&["run", "--once", "--format", "json"], &[]);
    assert_eq!(run.json()["counts"]["REJECTED"], 1, "{}", &run.stderr[..run.stderr.len().min(2000)]);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].len() < 16 * 1024 && bodies[0].contains("9x9x"), "{} bytes", bodies[0].len());
}

/// Issue 11: a NUL or an escape byte in a field name is a contract error (exit 2) naming the
/// file and the key, not a failed load.
#[test]
fn a_control_character_in_a_field_name_is_a_contract_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), "a\n1\n").unwrap();
    for name in ["a\\u0000b", "a\\u001b[31m"] {
        std::fs::write(dir.path().join("c.toml"), format!("name = \"t\"\n[[schema.fields]]\nname = \"{name}\"\n"))
            .unwrap();
        let r = glueless(dir.path(), &["validate", "--contract", "c.toml", "data.csv", "--format", "json"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("c.toml") && msg.contains("schema.fields[0].name") && msg.contains("U+00"), "{msg}");
        assert!(!r.stderr.contains(['\0', '\u{1b}']), "{}", r.stderr);
    }
}
