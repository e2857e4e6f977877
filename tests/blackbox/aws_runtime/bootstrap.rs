//! The `glueless-lambda` binary itself (what the zip holds as `bootstrap`), against a local
//! stand-in for the Lambda Runtime API: it starts, asks for an invocation, gets the batch SQS
//! handed out, loads the file and answers with its batch item failures.

use super::lambda::event;
use super::*;
use glueless_jobs::ports::FileState;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;

/// What the stand-in saw.
enum Seen {
    /// The first `GET …/invocation/next`.
    Ready(Instant),
    /// The body POSTed to `…/invocation/ID/response`.
    Response(String),
    Error(String),
}

/// Serves one invocation with `event`, then holds further `next` calls until the process ends.
fn runtime_api(event: String) -> (String, mpsc::Receiver<Seen>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut served = false;
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            let tx = tx.clone();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let event = event.clone();
            let first = !served;
            served = true;
            std::thread::spawn(move || {
                let mut gave = !first;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    let _ = r.read_exact(&mut body);
                    let body = String::from_utf8_lossy(&body).into_owned();
                    if line.contains("/invocation/next") {
                        let _ = tx.send(Seen::Ready(Instant::now()));
                        if gave {
                            std::thread::sleep(Duration::from_secs(3600)); // no second invocation
                            return;
                        }
                        gave = true;
                        let deadline = glueless_jobs::ports::now_ms() + 120_000;
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-1\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:glueless\r\ncontent-length: {}\r\n\r\n{event}",
                            event.len()
                        );
                    } else {
                        let seen = if line.contains("/response") {
                            Seen::Response(body)
                        } else {
                            Seen::Error(format!("{line} {body}"))
                        };
                        let _ = tx.send(seen);
                        let _ = s.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}");
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[test]
fn the_bootstrap_binary_serves_an_invocation_through_the_runtime_api() {
    rt().block_on(async {
        let stack = Stack::deploy("bootstrap", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.db");
        let version = stack.put("landing/sales/boot.csv", &sales(1, 5, 0)).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        assert_eq!(received.len(), 1);
        let ev = serde_json::to_string(&event(&stack, &received, &[])).unwrap();
        let (addr, seen) = runtime_api(ev);

        let started = Instant::now();
        // GLUELESS_TEST_LAMBDA_BIN runs another build instead, e.g. the packaged release `bootstrap`.
        let bin =
            std::env::var("GLUELESS_TEST_LAMBDA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_glueless-lambda").into());
        let mut child = std::process::Command::new(&bin)
            .envs(stack.env(contracts.path(), &format!("sqlite://{}", path_str(&db))))
            .env("AWS_LAMBDA_RUNTIME_API", &addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "glueless")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/glueless")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("glueless-lambda starts");
        let mut ready = None;
        let mut response = None;
        while response.is_none() {
            match seen.recv_timeout(Duration::from_secs(60)) {
                Ok(Seen::Ready(t)) => {
                    ready.get_or_insert(t);
                }
                Ok(Seen::Response(b)) => response = Some(b),
                Ok(Seen::Error(e)) => panic!("the function reported an error: {e}"),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let response = response.unwrap_or_else(|| panic!("no response from the function; its stderr:\n{stderr}"));
        let ready = ready.expect("asked for an invocation");
        eprintln!("{bin}: start to ready {:?}", ready - started);
        let v: serde_json::Value = serde_json::from_str(&response).expect("JSON response");
        assert_eq!(v["batchItemFailures"], serde_json::json!([]), "{v}");
        assert!(stderr.contains("ready in"), "{stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let emf: serde_json::Value = serde_json::from_str(stdout.lines().next().expect("an EMF line")).unwrap();
        assert_eq!((emf["state"].as_str(), emf["runtime"].as_str()), (Some("LOADED"), Some("lambda")));
        // In Lambda every log line is JSON, and the file's line names the file and the invocation.
        let logs = crate::logs::json_lines(&stderr);
        assert_eq!(logs.len(), stderr.lines().count(), "only JSON lines on stderr: {stderr}");
        let loaded = crate::logs::file_line(&logs, "boot.csv", "LOADED");
        assert_eq!((loaded["dataset"].as_str(), loaded["request_id"].as_str()), (Some("sales"), Some("req-1")));
        assert_eq!((&loaded["url"], &loaded["version"]), (&emf["object"], &serde_json::json!(version)), "{loaded}");
        assert!(loaded["load_id"].as_str().is_some_and(|id| !id.is_empty()), "{loaded}");
        let rec = stack.record("landing/sales/boot.csv", &version).await;
        assert_eq!((rec.state, rec.rows_loaded), (FileState::Loaded, Some(5)));
    });
}
