//! `glueless-lambda`: the SQS-triggered Lambda function (packaged as `bootstrap`); see
//! `glueless_jobs::runtime::lambda` and docs/operations.md.

fn main() {
    if let Err(e) = glueless_jobs::telemetry::init("glueless-lambda") {
        eprintln!("glueless-lambda: {e}");
        std::process::exit(2);
    }
    std::process::exit(glueless_jobs::runtime::lambda::main());
}
