//! Starting up: a configuration mistake exits 2 and nothing runs; a service that does not
//! answer exits 1 and says that the same command can be retried (the composition root,
//! `glueless_jobs::startup`, and the one exit-code table, `glueless_jobs::cli::exit`).

use crate::pipeline::{HEADER, Lake};
use crate::support::{Run, closed_port};

/// The JSON error of a command that could not start, checked against the exit code: `kind`,
/// `retryable` and the advice follow it.
fn start_error(r: &Run, code: i32) -> String {
    assert_eq!(r.code, code, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!((v["status"].as_str(), v["exit_code"].as_i64()), (Some("error"), Some(code as i64)), "{v}");
    let retryable = code == 1;
    assert_eq!(v["error"]["kind"], if retryable { "failed" } else { "usage" }, "{v}");
    assert_eq!(v["error"]["retryable"], retryable, "{v}");
    let message = v["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(message.contains("can be retried"), retryable, "{message}");
    assert_eq!(r.stderr.contains("can be retried"), retryable, "{}", r.stderr);
    message
}

/// PostgreSQL refusing connections (nothing listens on the port): `run`, `task` and `status`
/// all start from the same root, and none of them touches the lake's file.
#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_warehouse_exits_1_and_says_it_can_be_retried() {
    let url = format!("postgres://glueless@127.0.0.1:{}/x", closed_port());
    let lake = Lake::new(&format!("[warehouse]\nurl = \"{url}?connect_timeout=2\"\n"));
    lake.drop_file("sales/a.csv", &format!("{HEADER}1,2026-11-20T10:00:00Z,2,10.50\n"));
    let env = [("GLUELESS_TASK_URL", "lake/landing/sales/a.csv")];
    for args in [&["run", "--once", "--format", "json"][..], &["task", "--format", "json"][..]] {
        let message = start_error(&lake.glueless(args, &env), 1);
        assert!(message.contains(&url) && message.contains("cannot connect"), "{args:?}: {message}");
    }
    let text = lake.glueless(&["run", "--once"], &[]);
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(text.stderr.contains("can be retried"), "{}", text.stderr);
    // Nothing was registered: the run stopped before it looked at the lake.
    assert_eq!(lake.status()["counts"], serde_json::json!({}), "status needs only the state store");
}

/// A scheme no adapter takes, in each URL the composition root reads: exit 2, naming the key.
#[test]
fn a_url_scheme_no_adapter_takes_exits_2_and_names_the_key() {
    for (section, url) in [("state", "mysql://db/state"), ("warehouse", "oracle://db/x"), ("warehouse", "fact.db")] {
        let lake = Lake::new(&format!("[{section}]\nurl = \"{url}\"\n"));
        let message = start_error(&lake.glueless(&["run", "--once", "--format", "json"], &[]), 2);
        // Shown through the redaction of URLs: an unknown scheme only up to its host.
        let shown = url.split_inclusive('/').next().unwrap();
        assert!(message.contains(&format!("[{section}] url = \"{shown}")), "{message}");
        assert!(message.contains("sqlite://"), "the message shows the form to use: {message}");
    }
}

/// DynamoDB (the state store on AWS) not answering: `status` exits 1, retryable.
#[cfg(feature = "aws")]
#[test]
fn an_unreachable_state_store_exits_1_and_says_it_can_be_retried() {
    let lake = Lake::new("[state]\nurl = \"dynamodb://glueless-state\"\n");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let message = start_error(&lake.glueless(&["status", "--format", "json"], &env), 1);
    assert!(message.contains("dynamodb://glueless-state") || message.contains("glueless-state"), "{message}");
}

/// The Lambda function's start goes through the same root and the same table: an unreachable
/// warehouse exits 1, a scheme it cannot use 2 (before it asks the runtime API for any event).
#[cfg(feature = "lambda")]
#[test]
fn the_lambda_function_exits_as_the_command_line_does_when_it_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
    let unreachable = format!("postgres://glueless@127.0.0.1:{}/x", closed_port());
    for (url, code) in [(unreachable.as_str(), 1), ("oracle://db/x", 2)] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_glueless-lambda"))
            .current_dir(dir.path())
            .env("GLUELESS__LAKE__URL", dir.path().join("lake").display().to_string())
            .env("GLUELESS__CONTRACTS__DIR", dir.path().join("schemas").display().to_string())
            .env("GLUELESS__STATE__URL", format!("sqlite://{}", dir.path().join("state.db").display()))
            .env("GLUELESS__WAREHOUSE__URL", url)
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", closed_port()))
            .output()
            .expect("glueless-lambda runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {stderr}");
        let (host, _) = url.rsplit_once('/').unwrap();
        assert!(stderr.contains("cannot start") && stderr.contains(host), "{stderr}");
        assert_eq!(stderr.contains("can be retried"), code == 1, "{stderr}");
    }
}
