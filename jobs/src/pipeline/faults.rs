//! Crash points for the exactly-once tests.
//!
//! With `GLUELESS_FAULT=<point>` in its environment, the process kills itself with SIGKILL the
//! first time it reaches `<point>`: exactly what an OOM kill or a pulled plug does there. Just
//! before, it prints `glueless: GLUELESS_FAULT=<point>: killing this process with SIGKILL` on
//! stderr and, when `GLUELESS_FAULT_MARKER` names a file, writes the point's name into it, so a
//! test can tell "died there" from "died somewhere else". Unset, a point costs one load of a
//! cached value.
//!
//! | point | where | what a crash there tests |
//! |---|---|---|
//! | `after-claim` | [`Pipeline::process`], each file claimed RUNNING, nothing read | a claim whose owner died lapses after its lease and the file is taken up again |
//! | `during-transform` | the transform's progress callback, the file half read | a half-written staging Parquet and quarantine are rewritten, not loaded |
//! | `after-staging` | the file's staging Parquet written, before the warehouse | a staged file that was never loaded is transformed and loaded again, once |
//! | `after-quarantine` | the file's quarantine (rows > 0) written, before its state is recorded | rejected rows are not counted or quarantined twice; a REJECTED file ends REJECTED |
//! | `before-ledger` | inside the warehouse transaction, after the MERGE/upsert, before the ledger rows (Redshift: the commit batch sent, its answer not awaited) | the fact rows and the ledger row commit together or not at all |
//! | `before-schema-ledger` | `ensure_table` (SQLite, PostgreSQL), a new column added by `ALTER TABLE`, its `glueless_schema_changes` row not yet written | the column and its ledger row commit together or not at all |
//! | `after-commit` | the warehouse transaction committed, the state store not yet updated | the ledger turns the reload into "already loaded": no second ledger row, no duplicate fact |
//! | `between-state-updates` | a multi-file load committed, the first file recorded LOADED, the next not yet | a batch half-recorded ends with every file LOADED, each loaded once |
//! | `during-renewal` | the lease renewer, right after a claim was renewed | a worker that dies while renewing loses its claims after the lease |
//! | `before-sqs-delete` | the dispatcher ([`crate::runtime::dispatch`]), the files of a message decided, the message not yet deleted | the message comes back; its file is seen as done (or taken up again), never loaded twice |
//!
//! [`Pipeline::process`]: super::Pipeline::process

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const ENV: &str = "GLUELESS_FAULT";

/// The environment variable naming a file the point's name is written to before the kill.
pub const MARKER_ENV: &str = "GLUELESS_FAULT_MARKER";

/// Every point, in the order a file job passes them.
pub const POINTS: [&str; 9] = [
    "after-claim",
    "during-transform",
    "after-staging",
    "after-quarantine",
    "before-ledger",
    "after-commit",
    "between-state-updates",
    "during-renewal",
    "before-sqs-delete",
];

/// Points only a contract change reaches (the fault matrix, which runs one plain load per
/// point, takes [`POINTS`]; `tests/blackbox/evolution.rs` takes these).
pub const EVOLUTION_POINTS: [&str; 1] = ["before-schema-ledger"];

/// Kills this process with SIGKILL when `name` is the armed point.
pub fn point(name: &str) {
    debug_assert!(
        POINTS.contains(&name) || EVOLUTION_POINTS.contains(&name),
        "fault point `{name}` is not in faults::POINTS"
    );
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    let armed = FAULT.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if armed.as_deref() == Some(name) {
        if let Some(marker) = std::env::var_os(MARKER_ENV).filter(|v| !v.is_empty()) {
            // Best effort: the stderr line below is the other evidence.
            let _ = std::fs::write(marker, name);
        }
        eprintln!("glueless: {ENV}={name}: killing this process with SIGKILL");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
