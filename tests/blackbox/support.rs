//! Helpers: run the binary, read Parquet back, locate the repository's files.

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (tests live in `tests/`, the jobs crate in `jobs/`). Read at run time, not
/// with `env!`: CI reuses one target folder for clones at different paths, and an unchanged test
/// binary would keep the path of the clone that built it.
pub fn repo() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).parent().expect("repo root").to_path_buf()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The one JSON object that `--format json` prints on stdout.
    pub fn json(&self) -> serde_json::Value {
        let lines: Vec<&str> = self.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "exactly one JSON line on stdout, got: {}\nstderr: {}", self.stdout, self.stderr);
        serde_json::from_str(lines[0]).expect("stdout is JSON")
    }
}

/// Runs `glueless ARGS` in `dir`.
pub fn glueless(dir: &Path, args: &[&str]) -> Run {
    glueless_with_env(dir, args, &[])
}

/// Runs `glueless ARGS` in `dir` with extra environment variables.
pub fn glueless_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_glueless"))
        .args(args)
        .current_dir(dir)
        .env("GLUELESS_THREADS", "2")
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet footer")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches")
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Lines of a JSON Lines file.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Checks `text` against the golden file `tests/golden/<dir>/<name>.sql` (reviewable generated
/// SQL); `GLUELESS_BLESS=1` in the test's environment rewrites the file instead.
pub fn golden(dir: &str, name: &str, text: &str) {
    let path = repo().join("tests/golden").join(dir).join(format!("{name}.sql"));
    if std::env::var_os("GLUELESS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GLUELESS_BLESS=1 writes it)", path.display()));
    if want != text {
        let line = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        panic!(
            "the generated SQL differs from {} from line {}:\n  want: {:?}\n  got:  {:?}\nreview the change and run again with GLUELESS_BLESS=1 to accept it",
            path.display(),
            line + 1,
            want.lines().nth(line),
            text.lines().nth(line)
        );
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A fresh, empty PostgreSQL database for one test, on the server `scripts/test` starts;
/// returns its URL (`postgres://postgres@127.0.0.1:PORT/glueless_<test>_<random>`).
#[cfg(feature = "postgres")]
pub async fn postgres_database(test: &str) -> String {
    let url = std::env::var("GLUELESS_TEST_POSTGRES_URL")
        .expect("GLUELESS_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("test PostgreSQL reachable");
    let task = tokio::spawn(conn);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name: String = format!("glueless_{test}_{}_{nanos}", std::process::id())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .take(63)
        .collect();
    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
    drop(client);
    let _ = task.await;
    let (base, _) = url.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

/// The local AWS emulator that `scripts/test` starts.
pub fn aws_endpoint() -> String {
    std::env::var("GLUELESS_TEST_AWS_ENDPOINT").expect(
        "GLUELESS_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test, which starts the local AWS emulator",
    )
}

/// What every AWS SDK client of a local endpoint (the emulator, a test server) shares: region
/// us-east-1 and dummy credentials, set here rather than taken from the process environment.
/// A service client is then `aws_sdk_x::Client::new(&local_sdk_config(endpoint))`.
#[cfg(feature = "aws")]
pub fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "test")))
        .build()
}

/// A fresh bucket per test, made with a plain HTTP PUT (the emulator does not check signatures).
pub fn make_bucket(test: &str) -> String {
    use std::io::{Read, Write};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let bucket = format!("glueless-{test}-{}-{nanos}", std::process::id());
    let ep = aws_endpoint();
    let host = ep.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("emulator reachable");
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "bucket creation: {answer}");
    bucket
}

/// An object_store client for `bucket` on an emulator endpoint (path-style, dummy credentials).
pub fn emulator_bucket(endpoint: &str, bucket: &str) -> object_store::Result<object_store::aws::AmazonS3> {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_bucket_name(bucket)
        .build()
}

/// A local HTTP endpoint (a Slack-compatible webhook, an SNS subscriber): answers 200 to every
/// request and keeps the bodies. It lives until the test process ends.
pub struct HttpReceiver {
    pub port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpReceiver {
    pub fn start() -> HttpReceiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                keep.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            }
        });
        HttpReceiver { port, bodies }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits up to 10 s for `n` bodies; returns what came.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            let got = self.bodies();
            if got.len() >= n || started.elapsed() > std::time::Duration::from_secs(10) {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A loopback port nothing listens on (bound once, then released): a server that refuses.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One HTTP/1.1 message (head and a `Content-Length` body), or `None` at the end of the stream:
/// what the test proxies in front of the emulator relay.
#[cfg(any(feature = "aws", feature = "postgres"))]
pub fn http_message(r: &mut impl std::io::BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return if message.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        message.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&message).to_ascii_lowercase();
    assert!(!head.contains("transfer-encoding: chunked"), "the test proxy only relays Content-Length bodies: {head}");
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
        .unwrap_or(0);
    let start = message.len();
    message.resize(start + len, 0);
    r.read_exact(&mut message[start..])?;
    Ok(Some(message))
}

/// A PostgreSQL cluster of one test's own, which it may stop and start again (the server
/// `scripts/test` starts is shared by every test). `initdb` into a temporary folder, with the
/// binaries in `GLUELESS_TEST_PG_BIN` (set by `scripts/test`), on a free loopback port; as root
/// the cluster belongs to `postgres` (initdb refuses root), as `scripts/test` does it. Stopped
/// when dropped.
#[cfg(feature = "postgres")]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

#[cfg(feature = "postgres")]
impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = PathBuf::from(std::env::var("GLUELESS_TEST_PG_BIN").expect(
            "GLUELESS_TEST_PG_BIN is not set: run the tests with scripts/test, which finds the PostgreSQL binaries",
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let chown = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("chown runs");
            assert!(chown.success(), "chown postgres {}", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = PgCluster { dir, bin, port };
        c.pg(&format!("{}/initdb -D {} -A trust -U postgres --no-sync -E UTF8", c.bin.display(), c.data()));
        c.start_server();
        c
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    /// Runs `command` with [`sh_as_postgres`]; panics with its output and the server log when it
    /// fails.
    fn pg(&self, command: &str) {
        let out = sh_as_postgres(command);
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "{command}: {}{}\nserver log:\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let d = self.dir.path().display();
        self.pg(&format!(
            "{}/pg_ctl -D {} -l {d}/log -w start -o '-c listen_addresses=127.0.0.1 -p {} -k {d} -c fsync=off -c max_connections=100'",
            self.bin.display(),
            self.data(),
            self.port
        ));
    }

    /// Stops the server the way a crash does (`-m immediate`): every connection is dropped at
    /// once and nothing is accepted until [`PgCluster::start_server`]; committed data survives.
    pub fn stop_server(&self) {
        self.pg(&format!("{}/pg_ctl -D {} -m immediate -w stop", self.bin.display(), self.data()));
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.dir.path().join("data/postmaster.pid").exists() {
            sh_as_postgres(&format!("{}/pg_ctl -D {} -m immediate stop", self.bin.display(), self.data()));
        }
    }
}

/// `sh -c command`, as `postgres` when this process is root.
#[cfg(feature = "postgres")]
fn sh_as_postgres(command: &str) -> std::process::Output {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        Command::new("su").args(["postgres", "-s", "/bin/sh", "-c", command]).output()
    } else {
        Command::new("sh").args(["-c", command]).output()
    }
    .expect("sh runs")
}
