//! A progress line on stderr for long files, redrawn in place when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Files smaller than this finish before a bar is worth drawing.
const MIN_BYTES: u64 = 32 << 20;

pub struct Bar {
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Bar {
    /// A bar, if stderr is a terminal. It draws only for files of at least 32 MB; the size
    /// comes with each update from the job, which learns it when it opens the object.
    pub fn new(quiet: bool) -> Option<Bar> {
        (!quiet && std::io::stderr().is_terminal()).then(|| Bar { started: Instant::now(), last: Mutex::new(None) })
    }

    pub fn update(&self, bytes: u64, total: u64, rows: u64) {
        if total < MIN_BYTES {
            return;
        }
        let now = Instant::now();
        let mut last = self.last.lock().expect("lock");
        if last.is_some_and(|l| now.duration_since(l) < Duration::from_millis(200)) {
            return;
        }
        *last = Some(now);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let frac = if total > 0 { (bytes as f64 / total as f64).min(1.0) } else { 0.0 };
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let eta = if frac > 0.0 { secs / frac - secs } else { 0.0 };
        let _ = write!(
            std::io::stderr(),
            "\r  [{}{}] {:>3.0}%  {:.1}/{:.1} MB  {} rows  {:.0} rows/s  eta {:.0} s ",
            "=".repeat(filled),
            " ".repeat(width - filled),
            frac * 100.0,
            bytes as f64 / 1e6,
            total as f64 / 1e6,
            rows,
            rows as f64 / secs,
            eta
        );
    }

    /// Erases the bar, if it was drawn.
    pub fn clear(&self) {
        if self.last.lock().expect("lock").is_none() {
            return;
        }
        let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(100));
    }
}
