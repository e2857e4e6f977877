//! glueless-jobs: the file job around the engine, its ports, and the `glueless` command line.
//!
//! - [`cli`]: argument parsing, the commands, their reports and exit codes.

pub mod cli;
