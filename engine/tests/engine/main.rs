//! The engine's one integration-test binary (`cargo test -p glueless-engine --test engine`).

mod conformance;
mod infer;
mod keys;
mod property;
