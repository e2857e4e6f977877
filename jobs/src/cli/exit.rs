//! Exit codes: the one place where what a command ended with becomes the process's exit code
//! (the Lambda function's start uses it too). The JSON reports carry the same number as
//! `exit_code`.
//!
//! | exit | `validate`, `transform` | `run` | `task` | any command |
//! | --- | --- | --- | --- | --- |
//! | 0 | every row valid | every file LOADED with no rejected row | loaded, or nothing to do | done |
//! | 3 | some rows rejected, within `max_rejected_ratio` | rows or files rejected (or a landing entry skipped), nothing worse | loaded with rejected rows | |
//! | 4 | the file rejected | | the file rejected | |
//! | 1 | the input cannot be read | a file FAILED or DEAD, or the landing prefix could not be listed | the file FAILED or DEAD | a failure; a service that did not answer (`retryable` in the JSON error: the same command can work later) |
//! | 2 | | | | the arguments, a contract or the configuration are wrong: nothing ran |
//!
//! 130 is not decided here: a second SIGINT or SIGTERM ends `run` at once (see
//! `pipeline::service::on_signals`).

use super::CliError;
use crate::pipeline::service::RunVerdict;
use crate::ports::FileState;
use crate::runtime::task::TaskEnd;
use glueless_engine::Status;

/// The table above, as `glueless --help` shows it.
pub const HELP: &str = "Exit codes:
  0  done: every row valid (validate, transform), every file LOADED clean (run), nothing to do
  3  some rows rejected within max_rejected_ratio; for run also files rejected, nothing worse
  4  the file rejected as a whole (validate, transform, task); plan: a table would be refused
  1  a failure: a file FAILED or DEAD, an input that cannot be read, a service that did not
     answer (then the message, and `retryable` in the JSON error, say it can be retried)
  2  the arguments, a contract or the configuration are wrong: nothing ran
  130  run stopped by a second SIGINT or SIGTERM";

/// What a command ended with, as far as its exit code tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: all done, nothing rejected (or nothing to do).
    Clean,
    /// 1: something failed; see the error or the files' states.
    Failed,
    /// 2: the arguments, a contract or the configuration are wrong.
    Usage,
    /// 3: some rows (for `run`, also files) were rejected, and nothing worse happened.
    Rejected,
    /// 4: the one file of the command was rejected as a whole.
    FileRejected,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Clean => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Rejected => 3,
            Exit::FileRejected => 4,
        }
    }

    /// `validate` and `transform`: the file job's verdict.
    pub fn of_report(status: Status) -> Exit {
        match status {
            Status::Valid => Exit::Clean,
            Status::RowsRejected => Exit::Rejected,
            Status::FileRejected => Exit::FileRejected,
        }
    }

    /// `run`: how the files it finished ended.
    pub fn of_run(verdict: RunVerdict) -> Exit {
        match verdict {
            RunVerdict::Clean => Exit::Clean,
            RunVerdict::Rejected => Exit::Rejected,
            RunVerdict::Failed => Exit::Failed,
        }
    }

    /// `task`: the state its one file is in.
    pub fn of_task(end: &TaskEnd) -> Exit {
        match end {
            TaskEnd::Processed(o) => match o.state {
                FileState::Loaded if o.rows_rejected > 0 => Exit::Rejected,
                FileState::Loaded => Exit::Clean,
                FileState::Rejected => Exit::FileRejected,
                _ => Exit::Failed,
            },
            TaskEnd::AlreadyDecided(r) => match r.state {
                FileState::Rejected => Exit::FileRejected,
                FileState::Dead | FileState::Failed => Exit::Failed,
                _ => Exit::Clean,
            },
            TaskEnd::Taken(_) => Exit::Clean,
        }
    }

    /// A command that could not do its work.
    pub fn of_error(e: &CliError) -> Exit {
        if e.is_usage() { Exit::Usage } else { Exit::Failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are a contract: scripts and schedulers test them.
    #[test]
    fn every_outcome_has_its_documented_code() {
        let codes: Vec<i32> =
            [Exit::Clean, Exit::Failed, Exit::Usage, Exit::Rejected, Exit::FileRejected].map(Exit::code).to_vec();
        assert_eq!(codes, vec![0, 1, 2, 3, 4]);
        assert_eq!(Exit::of_report(Status::RowsRejected), Exit::Rejected);
        assert_eq!(Exit::of_run(RunVerdict::Rejected), Exit::Rejected, "a REJECTED file in a run is a 3, not a 4");
        assert_eq!(Exit::of_error(&CliError::Usage("x".into())), Exit::Usage);
        assert_eq!(Exit::of_error(&CliError::Failed { message: "x".into(), retryable: true }), Exit::Failed);
    }

    /// The report's `status` is part of the JSON contract, whatever the enum is called in Rust.
    #[test]
    fn the_report_status_keeps_its_json_names() {
        let names: Vec<serde_json::Value> = [Status::Valid, Status::RowsRejected, Status::FileRejected]
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(names, ["valid", "rows_rejected", "file_rejected"]);
        assert!(
            [Status::Valid, Status::RowsRejected, Status::FileRejected]
                .iter()
                .all(|s| names.contains(&s.as_str().into()))
        );
    }
}
