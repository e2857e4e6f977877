//! Exactly-once, proven (issue 12): a crash at every step boundary, a failure inside the
//! warehouse transaction, cut connections, and what each must leave behind: every file in its
//! right final state, the fact table holding exactly the expected rows, one ledger row per
//! loaded content, nothing left RUNNING.
//!
//! One module per kind of fault, and the seeded chaos run that mixes them (`chaos`).

mod atomicity;
#[cfg(feature = "postgres")]
mod chaos;
#[cfg(feature = "postgres")]
mod cuts;
mod fault_matrix;
#[cfg(all(feature = "postgres", feature = "lambda"))]
mod lambda_faults;
#[cfg(feature = "postgres")]
mod proxy;
