//! `glueless`: see `glueless --help`, and README.md.

fn main() {
    std::process::exit(glueless_jobs::cli::main());
}
