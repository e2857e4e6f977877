//! Dataset contracts: the file format (`load`) and its validated in-memory form (`model`).

mod load;
mod model;

pub use load::{ContractError, load_path, load_str};
pub use model::*;
