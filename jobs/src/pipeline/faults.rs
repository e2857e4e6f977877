//! Crash points for the exactly-once tests.
//!
//! With `GLUELESS_FAULT=<point>` in its environment, the process kills itself with SIGKILL the
//! first time it reaches `<point>` — exactly what an OOM kill or a pulled plug does there. The
//! points: `during-transform` (a file is claimed and half read), `after-commit` (the warehouse
//! transaction committed, the state store not yet updated). Unset, a point costs one load of a
//! cached value.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const ENV: &str = "GLUELESS_FAULT";

pub fn point(name: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    let armed = FAULT.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if armed.as_deref() == Some(name) {
        eprintln!("glueless: {ENV}={name}: killing this process with SIGKILL");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
