//! The hostile-input suite (issue 11): files, names, values, contracts and configuration built
//! to break the service, and what a user must see instead: a clear exit code and reason, counts
//! that add up, every other file of the batch loaded, no secret in any output, bounded memory.
//!
//! One module per kind of attack; the big inputs are generated on the fly.

mod bounds;
mod lake;
mod names;
mod poison;
mod secrets;
