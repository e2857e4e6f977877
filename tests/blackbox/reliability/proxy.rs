//! A TCP proxy between glueless and PostgreSQL that cuts one connection at a chosen moment of
//! the wire protocol, then passes every later connection through untouched (so the retry can
//! succeed).
//!
//! It reads the client's side: after the startup message (no type byte), every message is a
//! type byte and a length that counts itself. `Q` (a simple query) and `P` (Parse) carry the
//! SQL text, `d` is a row of `COPY … FROM STDIN`. Only the commit cut reads the server's side,
//! for the `CommandComplete` of `COMMIT` it then withholds.

use crate::support::http_message;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Where the connection is cut.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cut {
    /// After the first `CopyData` was passed on: the server is mid-`COPY`.
    DuringCopy,
    /// Right after the `MERGE` was passed on, before its answer: the server runs it, then
    /// finds the client gone.
    DuringMerge,
    /// The `COMMIT` of a load (one that wrote its ledger rows) was passed on and the server
    /// answered it, but the answer is dropped with the connection: the client cannot tell
    /// whether it committed (it did).
    AfterCommitSent,
}

pub struct PgProxy {
    pub port: u16,
    fired: Arc<AtomicBool>,
}

/// `CommandComplete` ('C', length 11, "COMMIT\0"): the server's answer to a `COMMIT`.
const COMMIT_DONE: &[u8] = b"C\0\0\0\x0bCOMMIT\0";

impl PgProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream` (`host:port`).
    pub fn start(upstream: &str, cut: Cut) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let fired = Arc::new(AtomicBool::new(false));
        let (upstream, f) = (upstream.to_string(), fired.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else { return };
                let f = f.clone();
                std::thread::spawn(move || relay(client, server, cut, f));
            }
        });
        PgProxy { port, fired }
    }

    /// Whether the cut happened (so a test knows the moment was reached).
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// `url` with its `host:port` replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = auth.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}/{path}", self.port)
    }
}

/// The `host:port` of a PostgreSQL URL.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").expect("a URL").1;
    let auth = rest.split('/').next().unwrap();
    auth.rsplit('@').next().unwrap().to_string()
}

fn cut_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// One connection: the client's side read message by message on this thread, the server's
/// side copied on another.
fn relay(mut client: TcpStream, mut server: TcpStream, cut: Cut, fired: Arc<AtomicBool>) {
    // Set when the commit cut is armed: the server's bytes are held back from then on.
    let hold = Arc::new(Mutex::new(None::<Vec<u8>>));
    {
        let (mut from, mut to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        let hold = hold.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut h = hold.lock().unwrap();
                if let Some(held) = h.as_mut() {
                    held.extend_from_slice(&buf[..n]);
                    if held.windows(COMMIT_DONE.len()).any(|w| w == COMMIT_DONE) {
                        // Committed on the server; the client never hears it.
                        cut_both(&from, &to);
                        break;
                    }
                } else if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            cut_both(&from, &to);
        });
    }
    let mut startup = true;
    let mut wrote_ledger = false;
    loop {
        let mut head = [0u8; 5];
        let (kind, body) = if startup {
            // Startup, SSLRequest or CancelRequest: a length, then the body.
            if client.read_exact(&mut head[..4]).is_err() {
                break;
            }
            let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
            let mut body = vec![0u8; len.saturating_sub(4)];
            if client.read_exact(&mut body).is_err() {
                break;
            }
            // An SSLRequest (code 80877103) is followed by another untyped message.
            startup = body.get(..4) == Some(&80877103u32.to_be_bytes()[..]);
            if server.write_all(&head[..4]).and_then(|_| server.write_all(&body)).is_err() {
                break;
            }
            continue;
        } else {
            if client.read_exact(&mut head).is_err() {
                break;
            }
            let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
            let mut body = vec![0u8; len.saturating_sub(4)];
            if client.read_exact(&mut body).is_err() {
                break;
            }
            (head[0], body)
        };
        let text = String::from_utf8_lossy(&body);
        let sql = matches!(kind, b'Q' | b'P');
        wrote_ledger |= sql && text.contains("INSERT INTO glueless_loads");
        let is_commit = kind == b'Q' && text.trim_end_matches('\0').trim().eq_ignore_ascii_case("COMMIT");
        let now = !fired.load(Ordering::SeqCst)
            && match cut {
                Cut::DuringCopy => kind == b'd',
                Cut::DuringMerge => sql && text.contains("MERGE INTO"),
                Cut::AfterCommitSent => is_commit && wrote_ledger,
            };
        if now && cut == Cut::AfterCommitSent {
            *hold.lock().unwrap() = Some(Vec::new());
        }
        if server.write_all(&head).and_then(|_| server.write_all(&body)).is_err() {
            break;
        }
        if now && !fired.swap(true, Ordering::SeqCst) {
            if cut == Cut::AfterCommitSent {
                // The server side cuts once the COMMIT is answered; keep passing nothing else.
                continue;
            }
            // Give the server the message before the connection goes.
            std::thread::sleep(std::time::Duration::from_millis(50));
            cut_both(&client, &server);
            break;
        }
        if is_commit {
            wrote_ledger = false;
        }
    }
    cut_both(&client, &server);
}

/// What an [`HttpProxy`] does to a request its rule picks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HttpCut {
    /// Passes it on, lets the emulator answer, and closes the client's connection instead of
    /// answering: the request took effect, the client cannot tell.
    AnswerLost,
    /// Passes it on and relays the answer's head and the first half of its body, then closes
    /// the connection: a download cut mid-body.
    MidBody,
    /// Closes the client's connection without passing it on: the request never took effect.
    RequestLost,
}

/// An HTTP proxy in front of the AWS emulator that relays requests one by one and applies its
/// [`HttpCut`] to the first `times` requests its rule picks; every other request passes.
pub struct HttpProxy {
    pub endpoint: String,
    cuts: Arc<AtomicUsize>,
    picked: Arc<Mutex<Vec<String>>>,
}

/// Which requests to cut, how, how many times; shared by the proxy's connections.
struct Rule {
    pick: fn(&str) -> bool,
    cut: HttpCut,
    times: usize,
    cuts: Arc<AtomicUsize>,
    picked: Arc<Mutex<Vec<String>>>,
}

impl HttpProxy {
    pub fn start(upstream: &str, pick: fn(&str) -> bool, cut: HttpCut, times: usize) -> HttpProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (cuts, picked) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let rule = Arc::new(Rule { pick, cut, times, cuts: cuts.clone(), picked: picked.clone() });
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rule) = (upstream.clone(), rule.clone());
                std::thread::spawn(move || {
                    let _ = relay_http(client, &upstream, &rule);
                });
            }
        });
        HttpProxy { endpoint, cuts, picked }
    }

    pub fn fired(&self) -> bool {
        self.cuts() > 0
    }

    /// How many requests were cut.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    /// The heads of the requests the rule picked (cut or passed), in order.
    pub fn picked(&self) -> Vec<String> {
        self.picked.lock().unwrap().clone()
    }
}

fn relay_http(client: TcpStream, upstream: &str, rule: &Rule) -> std::io::Result<()> {
    let mut requests = std::io::BufReader::new(client.try_clone()?);
    let mut answers = client;
    while let Some(request) = http_message(&mut requests)? {
        let text = String::from_utf8_lossy(&request);
        let picked = (rule.pick)(&text);
        if picked {
            let head = text.split("\r\n\r\n").next().unwrap_or_default().to_string();
            rule.picked.lock().unwrap().push(head);
        }
        // Counts this request as a cut while fewer than `times` were.
        let cut = picked
            && rule
                .cuts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < rule.times).then_some(n + 1))
                .is_ok();
        if cut && rule.cut == HttpCut::RequestLost {
            let _ = answers.shutdown(Shutdown::Both);
            return Ok(());
        }
        let mut emulator = TcpStream::connect(upstream)?;
        emulator.write_all(&request)?;
        let Some(response) = http_message(&mut std::io::BufReader::new(emulator))? else { return Ok(()) };
        if cut {
            if rule.cut == HttpCut::MidBody {
                let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
                let _ = answers.write_all(&response[..body_at + (response.len() - body_at) / 2]);
                let _ = answers.flush();
            }
            let _ = answers.shutdown(Shutdown::Both);
            return Ok(());
        }
        answers.write_all(&response)?;
    }
    Ok(())
}
