//! The `glueless-lambda` binary (what the zip holds as `bootstrap`) run as a child process
//! against a local stand-in for the Lambda Runtime API: one process per invocation, as a fresh
//! execution environment gets it. The bootstrap test checks what it answers; the Lambda fault
//! matrix (`reliability::lambda_faults`) lets it die by SIGKILL mid-invocation and hands the
//! same batch to the next one.

use crate::support::http_message;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// How long one invocation may take before the test gives up on it.
const INVOCATION_LIMIT: Duration = Duration::from_secs(120);

/// The binary under test: this build's `glueless-lambda`, or `GLUELESS_TEST_LAMBDA_BIN` (another
/// build, e.g. the packaged release `bootstrap`).
pub fn binary() -> String {
    std::env::var("GLUELESS_TEST_LAMBDA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_glueless-lambda").into())
}

/// What one process did with its invocation.
pub struct Invocation {
    /// When the process was started.
    pub started: Instant,
    /// When it first asked for an invocation (`GET …/invocation/next`): ready.
    pub ready: Option<Instant>,
    /// The body it POSTed to `…/invocation/ID/response`.
    pub response: Option<String>,
    /// What it POSTed to `…/error` (an invocation or start-up error).
    pub errors: Vec<String>,
    /// How it ended when it ended by itself before answering (a crash, an exit at start);
    /// `None` when it answered (the test then stopped it, as Lambda freezes it) or timed out.
    pub died: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Invocation {
    /// The response as JSON; panics, with the process's stderr, when there is none.
    pub fn json(&self) -> serde_json::Value {
        let body = self.response.as_deref().unwrap_or_else(|| {
            panic!(
                "no response from the function (ended: {:?}, errors: {:?}); its stderr:\n{}",
                self.died, self.errors, self.stderr
            )
        });
        serde_json::from_str(body).unwrap_or_else(|e| panic!("the response is not JSON ({e}): {body}"))
    }
}

/// Starts the function with `env` (and the variables Lambda sets), hands it `event` as its one
/// invocation (deadline in 120 s), and returns when it answered (then stops it) or ended by
/// itself.
pub fn invoke(event: &str, env: &[(String, String)]) -> Invocation {
    let api = RuntimeApi::start(event.to_string());
    let started = Instant::now();
    let mut child = Command::new(binary())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "glueless")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/glueless")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("glueless-lambda starts");
    // Read both pipes as the process writes, so a chatty process never blocks on a full pipe.
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let mut inv = Invocation {
        started,
        ready: None,
        response: None,
        errors: Vec::new(),
        died: None,
        stdout: String::new(),
        stderr: String::new(),
    };
    let mut ended = None;
    while inv.response.is_none() && inv.errors.is_empty() && ended.is_none() && started.elapsed() < INVOCATION_LIMIT {
        match api.seen.recv_timeout(Duration::from_millis(50)) {
            Ok(Seen::Ready(t)) => {
                inv.ready.get_or_insert(t);
            }
            Ok(Seen::Response(body)) => inv.response = Some(body),
            Ok(Seen::Error(e)) => inv.errors.push(e),
            Err(_) => ended = child.try_wait().expect("wait for the function"),
        }
    }
    stop(&mut child, ended.is_none());
    inv.died = ended;
    drop(api);
    inv.stdout = stdout.join().unwrap_or_default();
    inv.stderr = stderr.join().unwrap_or_default();
    inv
}

/// Ends the process (when `kill`: it answered or hung) and reaps it.
fn stop(child: &mut Child, kill: bool) {
    if kill {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// What the stand-in saw.
enum Seen {
    /// A `GET …/invocation/next`.
    Ready(Instant),
    /// The body POSTed to `…/invocation/ID/response`.
    Response(String),
    /// A POST to `…/error`, with its body.
    Error(String),
}

/// The stand-in: serves one invocation, then holds further `next` calls until the process ends.
/// Dropping it stops its listener.
struct RuntimeApi {
    addr: String,
    seen: mpsc::Receiver<Seen>,
    stopped: Arc<AtomicBool>,
}

impl RuntimeApi {
    fn start(event: String) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runtime API");
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, seen) = mpsc::channel();
        let stopped = Arc::new(AtomicBool::new(false));
        let given = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (tx, event, given) = (tx.clone(), event.clone(), given.clone());
                std::thread::spawn(move || serve(stream, &event, &given, &tx));
            }
        });
        RuntimeApi { addr, seen, stopped }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the listener up, so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One connection of the function's runtime client.
fn serve(stream: TcpStream, event: &str, given: &AtomicBool, tx: &mpsc::Sender<Seen>) {
    let Ok(mut answers) = stream.try_clone() else { return };
    let mut requests = BufReader::new(stream);
    while let Ok(Some(request)) = http_message(&mut requests) {
        let request = String::from_utf8_lossy(&request).into_owned();
        let line = request.lines().next().unwrap_or_default().to_string();
        let body = request.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        if line.contains("/invocation/next") {
            let _ = tx.send(Seen::Ready(Instant::now()));
            if given.swap(true, Ordering::SeqCst) {
                // No second invocation: hold the call until the process goes away.
                let _ = requests.read(&mut [0u8; 1]);
                return;
            }
            let deadline = glueless_jobs::ports::now_ms() + 120_000;
            let _ = write!(
                answers,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-1\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:glueless\r\ncontent-length: {}\r\n\r\n{event}",
                event.len()
            );
        } else {
            let _ = tx.send(if line.contains("/response") {
                Seen::Response(body)
            } else {
                Seen::Error(format!("{line} {body}"))
            });
            let _ = answers.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}");
        }
    }
}
