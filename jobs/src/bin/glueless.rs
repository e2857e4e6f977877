//! `glueless`: see `glueless --help`, and README.md.

fn main() {
    if let Err(e) = glueless_jobs::telemetry::init("glueless") {
        eprintln!("glueless: {e}");
        std::process::exit(2);
    }
    std::process::exit(glueless_jobs::cli::main());
}
